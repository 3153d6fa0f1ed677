"""Per-token decode time: with the KV cache, and the naive way (recompute the whole sequence).

With a cache, one decode step costs the weights once plus attention over the cached keys, so its
time should barely grow with the context; the naive step re-runs every position. The target: a
cached step at context 1024 costs within 2x of one at context 16.

    python benchmarks/decode.py [--device cpu|cuda] [--threads 1] [--contexts 16,256,1024]

"Context c" means a cache prefilled with c tokens, then `--steps` tokens decoded one at a time
(per-token time = their total / steps), median over `--repeats` runs after `--warmup` runs.
"""

import argparse
import statistics
import time

import torch

from nanochat.engine import KVCache
from nanochat.gpt import GPT, GPTConfig


def synchronize(device):
    if device == "cuda":
        torch.cuda.synchronize()


def median_time(run, device, warmup, repeats):
    times = []
    for i in range(warmup + repeats):
        elapsed = run()
        if i >= warmup:
            times.append(elapsed)
    return statistics.median(times)


@torch.inference_mode()
def cached_step_time(model, context, steps, device):
    """Seconds per token: prefill `context` tokens (untimed), then decode `steps` tokens one by one."""
    c = model.config
    cache = KVCache(1, c.n_kv_head, context + steps, c.n_embd // c.n_head, c.n_layer)
    ids = torch.randint(0, c.vocab_size, (1, context), device=device)
    token = model(ids, kv_cache=cache)[:, -1:].argmax(-1)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        token = model(token, kv_cache=cache)[:, -1:].argmax(-1)
    synchronize(device)
    return (time.perf_counter() - start) / steps


@torch.inference_mode()
def naive_step_time(model, context, device):
    """Seconds per token without a cache: one forward pass over all `context` tokens."""
    ids = torch.randint(0, model.config.vocab_size, (1, context), device=device)
    synchronize(device)
    start = time.perf_counter()
    model(ids)[:, -1:].argmax(-1)
    synchronize(device)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (fixed for comparable runs)")
    parser.add_argument("--contexts", default="16,256,1024")
    parser.add_argument("--steps", type=int, default=16, help="decode steps timed per cached run")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    contexts = [int(c) for c in args.contexts.split(",")]
    config = GPTConfig(
        sequence_len=max(1024, max(contexts) + args.steps),
        vocab_size=1024,
        n_layer=4,
        n_head=4,
        n_kv_head=2,
        n_embd=128,
    )
    model = GPT(config)
    model.init_weights()
    model = model.to(args.device).eval()

    print(
        f"device={args.device} threads={args.threads} torch={torch.__version__} "
        f"model: n_layer={config.n_layer} n_embd={config.n_embd} n_head={config.n_head} "
        f"n_kv_head={config.n_kv_head} vocab={config.vocab_size}"
    )
    print(f"median of {args.repeats} runs after {args.warmup} warmup runs; cached: {args.steps} steps per run\n")
    print(f"{'context':>8} {'cached ms/token':>16} {'naive ms/token':>15} {'cached/naive':>13}")
    cached = {}
    for context in contexts:
        cached[context] = median_time(
            lambda context=context: cached_step_time(model, context, args.steps, args.device),
            args.device,
            args.warmup,
            args.repeats,
        )
        naive = median_time(
            lambda context=context: naive_step_time(model, context, args.device),
            args.device,
            args.warmup,
            args.repeats,
        )
        print(f"{context:>8} {cached[context] * 1e3:>16.3f} {naive * 1e3:>15.3f} {cached[context] / naive:>13.3f}")

    lo, hi = min(contexts), max(contexts)
    ratio = cached[hi] / cached[lo]
    verdict = "within" if ratio <= 2 else "NOT within"
    print(f"\ncached@{hi} / cached@{lo} = {ratio:.2f} ({verdict} the 2x target)")


if __name__ == "__main__":
    main()
