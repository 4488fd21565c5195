"""``tfgpt generate``: continue a prompt with a ``--checkpoint`` and print the text (or the ids)."""

from __future__ import annotations

from tfgpt.cli.options import (add_checkpoint, add_tokenizer, load_model, load_tokenizer,
                               non_negative_int, positive_float, positive_int, unit_interval)


def register(subparsers):
    """Add ``tfgpt generate --checkpoint DIR "prompt" [options]``."""
    p = subparsers.add_parser(
        "generate", help="generate text from a prompt",
        description="Continue a prompt with a GPT-1 checkpoint (config.json + weights) and print the text.")
    p.add_argument("prompt", nargs="?", help="prompt text (needs a tokenizer)")
    add_checkpoint(p)
    add_tokenizer(p, help="tokenizer folder (vocab.json + merges.txt); default: the checkpoint folder")
    p.add_argument("--ids", help="prompt as token ids, comma or space separated (instead of text)")
    p.add_argument("--max-new-tokens", type=positive_int, default=50)
    p.add_argument("--do-sample", action="store_true", help="sample instead of greedy search")
    p.add_argument("--temperature", type=positive_float, default=1.0)
    p.add_argument("--top-k", type=non_negative_int, default=0)
    p.add_argument("--top-p", type=unit_interval, default=1.0)
    p.add_argument("--num-beams", type=positive_int, default=1)
    p.add_argument("--num-return-sequences", type=positive_int, default=1)
    p.add_argument("--repetition-penalty", type=positive_float, default=1.0)
    p.add_argument("--eos-token-id", type=non_negative_int, action="append",
                   help="stop a row at this id (repeatable)")
    p.add_argument("--seed", type=non_negative_int, help="seed for sampling (reproducible results)")
    p.set_defaults(func=generate_command)
    return p


def generate_command(args) -> int:
    import sys

    from tfgpt.generation import generate

    if (args.prompt is None) == (args.ids is None):
        raise ValueError("give either a prompt text or --ids")
    if args.ids is not None:
        try:
            prompt = [int(t) for t in args.ids.replace(",", " ").split()]
        except ValueError:
            raise ValueError(f"--ids must be integers, got {args.ids!r}") from None
        if not prompt:
            raise ValueError("--ids is empty")
    model = load_model(args.checkpoint, "lm")
    tok = None
    if args.prompt is not None or args.tokenizer:
        tok = load_tokenizer(args.tokenizer, args.checkpoint)
    if args.ids is None:
        prompt = list(tok.encode(args.prompt))
        if not prompt:
            raise ValueError(f"the prompt {args.prompt!r} holds no tokens")
    print("generating (the first call compiles) ...", file=sys.stderr, flush=True)
    out = generate(model, [prompt], max_new_tokens=args.max_new_tokens, do_sample=args.do_sample,
                   temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                   num_beams=args.num_beams, num_return_sequences=args.num_return_sequences,
                   repetition_penalty=args.repetition_penalty, eos_token_id=args.eos_token_id,
                   seed=args.seed)
    for row in out.numpy().tolist():
        print(tok.decode(row) if tok is not None else " ".join(str(t) for t in row))
    return 0
