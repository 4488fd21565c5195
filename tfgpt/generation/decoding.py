"""The ``tfgpt generate`` subcommand (``register_cli``, collected by ``tfgpt.cli``).

The generation code itself is in the modules beside this one; see ``tfgpt.generation``.
"""

from __future__ import annotations

import sys

from tfgpt.generation.api import generate


# --- command line ------------------------------------------------------------------------------------

def register_cli(subparsers):
    """Add ``tfgpt generate --model DIR "prompt" [options]``."""
    p = subparsers.add_parser(
        "generate", help="generate text from a prompt",
        description="Continue a prompt with a GPT-1 model folder (config.json + weights) and print the text.")
    p.add_argument("prompt", nargs="?", help="prompt text (needs a tokenizer)")
    p.add_argument("--model", required=True, help="model folder or hub id")
    p.add_argument("--tokenizer", help="tokenizer folder (vocab.json + merges.txt); default: the model folder")
    p.add_argument("--ids", help="prompt as token ids, comma or space separated (instead of text)")
    p.add_argument("--max-new-tokens", type=int, default=50)
    p.add_argument("--do-sample", action="store_true", help="sample instead of greedy search")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--num-beams", type=int, default=1)
    p.add_argument("--num-return-sequences", type=int, default=1)
    p.add_argument("--repetition-penalty", type=float, default=1.0)
    p.add_argument("--eos-token-id", type=int, action="append", help="stop a row at this id (repeatable)")
    p.add_argument("--seed", type=int, help="seed for sampling (reproducible results)")
    p.set_defaults(func=_cli_generate)
    return p


def _cli_generate(args):
    import tfgpt

    if (args.prompt is None) == (args.ids is None):
        raise ValueError("give either a prompt text or --ids")
    tok = None
    if args.prompt is not None or args.tokenizer:
        tok_dir = args.tokenizer or args.model
        try:
            tok = tfgpt.OpenAIGPTTokenizer.from_pretrained(tok_dir)
        except (OSError, ValueError, ImportError, AttributeError) as e:
            if args.prompt is not None:
                raise ValueError(f"cannot load a tokenizer from {tok_dir} ({e}); pass --tokenizer DIR "
                                 f"or a prompt as --ids") from e
    if args.ids is not None:
        try:
            prompt = [int(t) for t in args.ids.replace(",", " ").split()]
        except ValueError:
            raise ValueError(f"--ids must be integers, got {args.ids!r}") from None
    else:
        prompt = list(tok.encode(args.prompt))
    if not prompt:
        raise ValueError("the prompt is empty")
    print(f"loading {args.model} ...", file=sys.stderr, flush=True)
    model = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(args.model)
    print("generating (the first call compiles) ...", file=sys.stderr, flush=True)
    out = generate(model, [prompt], max_new_tokens=args.max_new_tokens, do_sample=args.do_sample,
                   temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                   num_beams=args.num_beams, num_return_sequences=args.num_return_sequences,
                   repetition_penalty=args.repetition_penalty, eos_token_id=args.eos_token_id,
                   seed=args.seed)
    for row in out.numpy().tolist():
        print(tok.decode(row) if tok is not None else " ".join(str(t) for t in row))
    return 0
