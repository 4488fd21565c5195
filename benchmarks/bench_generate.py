"""Generation speed: the compiled, cached decode loop against the no-cache eager loop.

Prints, for batch 1 and batch 16 (16-token prompt, 64 new tokens, greedy, fp32, random weights):
the first call (trace + XLA compile + run), median / min / max over several runs, tokens/s, and the
ratio to the batch-1 memory-bandwidth limit (every weight read once per token). Two references run
in the same process: a "weight-read floor" (an XLA loop doing only the matrix-vector products of
one decode step, i.e. the measured bandwidth limit right now) and the no-cache eager loop (a full
forward pass per token, as HF's TF GPT-1 does).

Then speculative decoding, batch 1, in the same run: plain greedy, prompt lookup
(``prompt_lookup_num_tokens``) and assisted decoding (``assistant_model``: a smaller model of the
same vocabulary) on (a) an input-grounded prompt (a passage given twice, so a continuation can copy
from it) and (b) open text (no repeated passage); tokens/s, the acceptance rate, tokens per pass of
the target over its weights and the ratio to plain greedy, each checked token for token against
plain greedy. With random weights the acceptance rates say how often the model repeats what it has
seen, not how well a trained model would; ``--checkpoint`` (a folder ``tfgpt train`` wrote) uses a
trained model's weights instead.

    python benchmarks/bench_generate.py --size gpt1     # 12 x 768, vocab 40478 (116.5 M parameters)
    python benchmarks/bench_generate.py --size small    # a quick smoke run

``--stream-chunks 1,4,8`` adds batch-1 rows for streamed generation (``streamer=``, decoded in
compiled chunks of k steps with the KV cache kept between them), interleaved with the single program
so both see the same load, each checked token for token against it (``--only-stream``: just these).
``--only-processors`` runs plain greedy against typical logits-processor sets (``PROCESSOR_SETS``),
batch 1 and 16, interleaved run by run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

SIZES = {
    "gpt1": dict(vocab_size=40478, n_positions=512, n_embd=768, n_layer=12, n_head=12),
    "small": dict(vocab_size=5000, n_positions=256, n_embd=256, n_layer=4, n_head=4),
}
# The assistant of the assisted-decoding rows: the same vocabulary, a fraction of the work per token.
ASSISTANTS = {
    "gpt1": dict(n_embd=256, n_layer=2, n_head=4),
    "small": dict(n_embd=64, n_layer=1, n_head=2),
}


def add_generation_args(ap):
    """The options every generation benchmark takes: model size, prompt, new tokens, batches, runs."""
    ap.add_argument("--size", choices=sorted(SIZES), default="gpt1")
    ap.add_argument("--prompt-len", type=int, default=16)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--batches", default="1,16", help="comma-separated batch sizes")
    ap.add_argument("--runs", type=int, default=5)


def timed(fn, runs):
    """Wall and CPU seconds of ``runs`` calls."""
    walls, cpus = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return walls, cpus


def weight_read_floor(model, steps, batch=1):
    """An XLA loop of ``steps`` decode steps' weight matmuls only (``batch`` rows, no attention over
    the cache, no sampling): at batch 1 its speed is the memory-bandwidth limit of the real decode
    loop, at batch 16 what the same skinny matmuls reach, measured under the same machine load."""
    import tensorflow as tf

    t = model.transformer
    emb = t.tokens_embed.embeddings

    @tf.function(jit_compile=True)
    def floor(x):
        def body(i, x):
            h = x
            for b in t.h:
                a = tf.matmul(h, b.attn.c_attn.kernel) + b.attn.c_attn.bias
                a = tf.matmul(a[:, : h.shape[1]], b.attn.c_proj.kernel) + b.attn.c_proj.bias
                f = tf.nn.relu(tf.matmul(a, b.mlp.c_fc.kernel) + b.mlp.c_fc.bias)
                h = h + tf.matmul(f, b.mlp.c_proj.kernel) + b.mlp.c_proj.bias
            tok = tf.argmax(tf.matmul(h, emb, transpose_b=True), -1, output_type=tf.int32)
            return i + 1, x + tf.cast(tok, x.dtype)[:, None] * 1e-9

        return tf.while_loop(lambda i, x: i < steps, body, (0, x))[1]

    x = tf.fill([batch, model.config.n_embd], 0.01)
    floor(x)
    return lambda: floor(x).numpy()


class NullStreamer:
    """Takes the tokens and drops them: the streamed rows measure the chunking, not a consumer."""

    def put(self, value):
        pass

    def end(self):
        pass


def stream_rows(model, args, rng):
    """Batch 1: the single program against streamed chunks of each k, interleaved run by run."""
    from tfgpt import generation

    chunks = [int(k) for k in args.stream_chunks.split(",") if k]
    if not chunks:
        return
    cfg = model.config
    prompts = [rng.integers(0, cfg.vocab_size, (1, args.prompt_len)) for _ in range(args.runs + 1)]
    plain = lambda p: model.generate(p, max_new_tokens=args.new_tokens).numpy()  # noqa: E731
    streamed = lambda p, k: model.generate(p, max_new_tokens=args.new_tokens, streamer=NullStreamer(),  # noqa: E731
                                           stream_chunk_size=k).numpy()
    for k in chunks:  # compile, and check the tokens
        assert np.array_equal(streamed(prompts[0], k), plain(prompts[0])), f"chunks of {k} changed the tokens"
    traces = generation.trace_count()
    walls = {None: []} | {k: [] for k in chunks}
    for p in prompts[1:]:
        walls[None] += timed(lambda: plain(p), 1)[0]
        for k in chunks:
            walls[k] += timed(lambda: streamed(p, k), 1)[0]
    assert generation.trace_count() == traces, "a streamed call retraced"
    base = statistics.median(walls[None])
    print(f"\nstreaming, batch 1, {args.prompt_len}-token prompt + {args.new_tokens} new, greedy "
          f"(median / min s; tokens/s; time relative to the single program in the same runs):")
    for k, w in walls.items():
        med = statistics.median(w)
        name = "single program" if k is None else f"streamed, chunks of {k}"
        print(f"  {name:<26} {med:>8.3f} {min(w):>8.3f} {args.new_tokens / med:>9.1f} tokens/s "
              f"{med / base:>6.3f}x")


# Processor sets for processor_rows: the options HF users pass most, against plain greedy in the same runs.
PROCESSOR_SETS = {
    "greedy + repetition_penalty 1.2 (basic program)": dict(repetition_penalty=1.2),
    "greedy + no_repeat_ngram 3 + rep. penalty 1.2": dict(no_repeat_ngram_size=3, repetition_penalty=1.2),
    "sample top_k 50 top_p 0.9 temp 0.8 (basic)": dict(do_sample=True, top_k=50, top_p=0.9, temperature=0.8, seed=0),
    "the same + no_repeat_ngram 3 + min_new_tokens 8": dict(do_sample=True, top_k=50, top_p=0.9, temperature=0.8,
                                                           seed=0, no_repeat_ngram_size=3, min_new_tokens=8,
                                                           eos_token_id=0),
}


def processor_rows(model, args, rng):
    """Batch 1 and 16: plain greedy against typical processor sets, interleaved run by run."""
    from tfgpt import generation

    cfg = model.config
    for batch in [int(b) for b in args.batches.split(",") if b]:
        prompts = [rng.integers(0, cfg.vocab_size, (batch, args.prompt_len)) for _ in range(args.runs + 1)]
        variants = {"plain greedy": {}} | PROCESSOR_SETS
        calls = {name: (lambda p, kw=kw: model.generate(p, max_new_tokens=args.new_tokens, **kw).numpy())
                 for name, kw in variants.items()}
        for call in calls.values():  # compile
            call(prompts[0])
        traces = generation.trace_count()
        walls = {name: [] for name in calls}
        for p in prompts[1:]:
            for name, call in calls.items():
                walls[name] += timed(lambda: call(p), 1)[0]
        assert generation.trace_count() == traces, "a same-bucket call retraced"
        base = statistics.median(walls["plain greedy"])
        print(f"\nprocessors, batch {batch}, {args.prompt_len}-token prompt + {args.new_tokens} new "
              f"(median / min s; tokens/s; time relative to plain greedy in the same runs):")
        for name, w in walls.items():
            med = statistics.median(w)
            print(f"  {name:<50} {med:>8.3f} {min(w):>8.3f} {batch * args.new_tokens / med:>9.1f} tokens/s "
                  f"{med / base:>6.3f}x")


def generate_no_cache(model, input_ids, max_new_tokens):
    """Greedy decoding that re-runs the full forward pass over the growing sequence per token (eager)."""
    import tensorflow as tf

    ids = tf.convert_to_tensor(np.asarray(input_ids), tf.int32)
    for _ in range(max_new_tokens):
        logits = model(ids, training=False, return_dict=True)["logits"]
        nxt = tf.argmax(logits[:, -1, :], axis=-1, output_type=tf.int32)[:, None]
        ids = tf.concat([ids, nxt], axis=1)
    return ids


def speculative_rows(model, args, rng):
    """Plain greedy, prompt lookup and assisted decoding, batch 1, on a grounded and an open prompt."""
    import tfgpt

    cfg = model.config
    keys = ("vocab_size", "n_positions", "resid_pdrop", "embd_pdrop", "attn_pdrop")
    small = dict(ASSISTANTS.get(args.size, ASSISTANTS["small"]), **{k: getattr(cfg, k) for k in keys})
    assistant = tfgpt.TFOpenAIGPTLMHeadModel(tfgpt.OpenAIGPTConfig(**small))
    new = args.speculative_new_tokens
    passage = rng.integers(0, cfg.vocab_size, 32)
    open_ids = rng.integers(0, cfg.vocab_size, (1, 64))
    cases = [("grounded", model, np.tile(passage, 2)[None]), ("open", model, open_ids)]
    if not args.checkpoint and not args.no_varied:
        # Random weights at the usual scale (0.02) repeat one token, which any draft predicts; at
        # scale 1.0 they emit varied tokens that neither drafter predicts: the cost of failed drafts.
        varied = tfgpt.TFOpenAIGPTLMHeadModel(
            tfgpt.OpenAIGPTConfig.from_dict({**cfg.to_dict(), "initializer_range": 1.0}))
        cases.append(("varied", varied, open_ids))
    variants = {
        "plain greedy": {},
        f"prompt lookup K={args.lookup_tokens}": dict(prompt_lookup_num_tokens=args.lookup_tokens),
        f"assisted K={args.assistant_tokens} ({small['n_layer']} x {small['n_embd']})": dict(
            assistant_model=assistant, num_assistant_tokens=args.assistant_tokens),
    }
    print(f"\nspeculative decoding, batch 1, 64-token prompts, {new} new tokens, {args.runs} runs "
          f"({'random weights' if not args.checkpoint else args.checkpoint})")
    print(f"{'prompt':<9} {'variant':<34} {'first call s':>12} {'median s':>9} {'tokens/s':>9} "
          f"{'accepted':>9} {'tok/pass':>9} {'x greedy':>9} {'same':>5}")
    for prompt_name, target, ids in cases:
        base = None
        reference = None
        for name, kwargs in variants.items():
            t0 = time.perf_counter()
            out = target.generate(ids, max_new_tokens=new, **kwargs).numpy()
            first = time.perf_counter() - t0
            walls, _ = timed(lambda: target.generate(ids, max_new_tokens=new, **kwargs).numpy(), args.runs)
            tps = new / statistics.median(walls)
            if reference is None:
                reference, base = out, tps
            stats = getattr(target, "last_speculative_stats", None) if kwargs else None
            accepted = f"{stats.acceptance_rate:.2f}" if stats else ""
            per_pass = f"{stats.tokens_per_pass:.2f}" if stats else "1.00"
            same = "yes" if np.array_equal(out, reference) else "NO"
            print(f"{prompt_name:<9} {name:<34} {first:>12.2f} {statistics.median(walls):>9.3f} {tps:>9.1f} "
                  f"{accepted:>9} {per_pass:>9} {tps / base:>9.2f} {same:>5}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_generation_args(ap)
    ap.add_argument("--bandwidth-gbs", type=float, default=16.0,
                    help="nominal streaming read bandwidth for the batch-1 limit (this machine: ~15-20 GB/s)")
    ap.add_argument("--eager-new-tokens", type=int, default=8,
                    help="tokens for the no-cache eager contrast (it is slow)")
    ap.add_argument("--speculative-new-tokens", type=int, default=64,
                    help="new tokens of the speculative rows (their prompts are 64 tokens)")
    ap.add_argument("--lookup-tokens", type=int, default=10, help="prompt_lookup_num_tokens (HF's default 10)")
    ap.add_argument("--assistant-tokens", type=int, default=10, help="num_assistant_tokens")
    ap.add_argument("--checkpoint", default=None,
                    help="a saved TFOpenAIGPTLMHeadModel folder to use instead of random weights")
    ap.add_argument("--skip-plain", action="store_true", help="only the speculative rows")
    ap.add_argument("--stream-chunks", default="1,4,8,16",
                    help="comma-separated chunk sizes of the streamed batch-1 rows ('' to skip)")
    ap.add_argument("--only-stream", action="store_true", help="only the streamed rows")
    ap.add_argument("--only-processors", action="store_true",
                    help="only the rows of typical logits-processor sets against plain greedy")
    ap.add_argument("--no-varied", action="store_true",
                    help="skip the varied-weights rows (at GPT-1 size scale-1.0 weights repeat tokens too)")
    args = ap.parse_args(argv)

    import tensorflow as tf

    import tfgpt
    from tfgpt import generation

    cfg = tfgpt.OpenAIGPTConfig(**SIZES[args.size], resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    if args.checkpoint:
        model = tfgpt.TFOpenAIGPTLMHeadModel.from_pretrained(args.checkpoint)
        cfg = model.config
    else:
        model = tfgpt.TFOpenAIGPTLMHeadModel(cfg)
    n_params = sum(int(np.prod(v.shape)) for v in model.weights)
    weight_bytes = 4 * n_params
    limit = args.bandwidth_gbs * 1e9 / weight_bytes  # batch-1 tokens/s if every weight is read once
    rng = np.random.default_rng(0)
    print(f"size={args.size}: {n_params / 1e6:.1f} M parameters ({weight_bytes / 1e6:.0f} MB fp32), "
          f"prompt {args.prompt_len}, {args.new_tokens} new tokens, greedy, {args.runs} runs; "
          f"nominal batch-1 bandwidth limit {limit:.1f} tokens/s at {args.bandwidth_gbs:g} GB/s")

    if args.only_processors:
        processor_rows(model, args, rng)
        return
    stream_rows(model, args, rng)
    if args.only_stream:
        return
    rows = []  # name, first (wall, cpu) or None, walls, cpus, tokens per call, batch 1?
    for batch in [] if args.skip_plain else [int(b) for b in args.batches.split(",")]:
        prompts = iter([rng.integers(0, cfg.vocab_size, (batch, args.prompt_len))
                        for _ in range(args.runs + 1)])
        t0, c0 = time.perf_counter(), time.process_time()
        out = model.generate(next(prompts), max_new_tokens=args.new_tokens)
        first = (time.perf_counter() - t0, time.process_time() - c0)
        assert out.shape == (batch, args.prompt_len + args.new_tokens), out.shape
        traces = generation.trace_count()
        run = lambda: model.generate(next(prompts), max_new_tokens=args.new_tokens).numpy()  # noqa: E731
        floor = weight_read_floor(model, args.new_tokens - 1, batch)
        walls, cpus, fwalls, fcpus = [], [], [], []
        for _ in range(args.runs):  # interleaved with the floor, so that both see the same machine load
            w, c = timed(run, 1)
            walls += w
            cpus += c
            w, c = timed(floor, 1)
            fwalls += w
            fcpus += c
        assert generation.trace_count() == traces, "a same-bucket call retraced"
        rows.append((f"cached XLA, batch {batch}", first, walls, cpus, batch * args.new_tokens, batch == 1))
        rows.append((f"weight-read floor (matmuls only), batch {batch}", None, fwalls, fcpus,
                     batch * (args.new_tokens - 1), batch == 1))

    # Contrast: the no-cache eager loop (one full forward pass over the growing sequence per token).
    if not args.skip_plain:
        p = rng.integers(0, cfg.vocab_size, (1, args.prompt_len))
        generate_no_cache(model, p, 1)  # warm up eager kernels
        walls, cpus = timed(lambda: generate_no_cache(model, p, args.eager_new_tokens),
                            max(1, min(3, args.runs)))
        rows.append((f"no cache, eager, batch 1 ({args.eager_new_tokens} new)", None, walls, cpus,
                     args.eager_new_tokens, True))

    if rows:
        print(f"\n{'variant':<42} {'first call s':>18} {'median s':>9} {'min s':>8} {'max s':>8} "
              f"{'tokens/s':>9} {'/ limit':>8} {'cpu/wall':>8}")
    speed = {}
    for name, first, walls, cpus, tokens, batch1 in rows:
        med = statistics.median(walls)
        tps = tokens / med
        speed[name] = tokens / min(walls)
        first_s = "" if first is None else f"{first[0]:.2f} ({first[1]:.1f} cpu)"
        ratio = f"{tps / limit:.2f}" if batch1 else ""
        print(f"{name:<42} {first_s:>18} {med:>9.3f} {min(walls):>8.3f} {max(walls):>8.3f} {tps:>9.1f} "
              f"{ratio:>8} {statistics.median(cpus) / med:>8.2f}")
    b1 = speed.get("cached XLA, batch 1")
    fl = speed.get("weight-read floor (matmuls only), batch 1")
    if b1 and fl:
        print(f"\nmeasured now: the weight-read floor streams {fl * weight_bytes / 1e9:.1f} GB/s "
              f"({fl:.1f} tokens/s at best); batch-1 generation reaches {b1 / fl:.2f} of it "
              f"(best runs, prefill included)")
    for batch in [] if args.skip_plain else [int(b) for b in args.batches.split(",") if int(b) > 1]:
        gen, fl = speed[f"cached XLA, batch {batch}"], speed[f"weight-read floor (matmuls only), batch {batch}"]
        gflops = fl * 2 * n_params / 1e9
        print(f"batch {batch}: its weight matmuls alone run at {fl:.1f} tokens/s ({gflops:.0f} GFLOP/s, "
              f"{fl * weight_bytes / 1e9 / batch:.1f} GB/s of weights); generation reaches {gen / fl:.2f} "
              f"of them (best runs, prefill included)")
    speculative_rows(model, args, rng)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(TF {tf.__version__}, {os.cpu_count()} cores, load average {load:.1f} at the end; cpu/wall "
          f"below 1 means the process waited for a core: the machine is shared, so compare ratios "
          f"within one run and rerun when it is quiet)")


if __name__ == "__main__":
    main()
