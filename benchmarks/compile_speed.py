"""Eager and compiled speed of the pyramid model against the dense one, batch 1 and 32, in one process.

The built-in geometry (minilm-l6, random weights: speed does not depend on them), rt-polarity test sentences
(a seeded sample), length-sorted and padded per batch (batch 1: each sentence alone, unpadded), keep ratios
0.5, 0.25, 0.25, 0.25, 0.25, 0.25 (Eq. 5, p 0.25, prune_upto 2), coreset m = 1. Every model is timed over the
whole sample per repeat; all models take turns (interleaved repeats); speedups are medians of paired ratios.

    OMP_NUM_THREADS=1 flock /tmp/pyramid-timing.lock python benchmarks/compile_speed.py --batch-size 1
    OMP_NUM_THREADS=1 flock /tmp/pyramid-timing.lock python benchmarks/compile_speed.py --batch-size 32
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from pyramid_bert import pyramidize
from pyramid_bert.compiling import compile_model
from pyramid_bert.measure.bench import geometry_model, task_encodings
from pyramid_bert.measure.timing import speedup_stats, time_interleaved
from pyramid_bert.selection import compiled_rounds
from pyramid_bert.training.batching import make_batches

RATIOS = [0.5, 0.25, 0.25, 0.25, 0.25, 0.25]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--modes", default="default", help="comma-separated torch.compile modes to time")
    parser.add_argument("--no-compile", action="store_true", help="eager models only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    encodings = task_encodings("rt-polarity", None, args.examples)
    batches = [b.inputs for b in make_batches(encodings, args.batch_size, "sorted")]
    dense = geometry_model("minilm-l6", int(encodings["input_ids"].shape[1]))
    pyramid = pyramidize(copy.deepcopy(dense), keep_ratios=RATIOS, method="coreset", m=1)
    models = {"dense eager": dense, "pyramid eager": pyramid}
    if not args.no_compile:
        for mode in args.modes.split(","):
            models[f"dense compiled ({mode})"] = compile_model(copy.deepcopy(dense), mode=mode)
            models[f"pyramid compiled ({mode})"] = compile_model(copy.deepcopy(pyramid), mode=mode)
    calls = {name: _pass(model, batches) for name, model in models.items()}
    calls["pyramid eager, torch rounds"] = _pass(pyramid, batches, numba=False)
    started = time.perf_counter()
    for name, call in calls.items():  # warm-up: compiles every shape the timed passes meet
        call()
        print(f"# warmed {name} ({time.perf_counter() - started:.0f} s)", flush=True)
    times = time_interleaved(calls, warmup=0, repeats=args.repeats)
    print(f"# batch {args.batch_size}, {len(encodings['input_ids'])} sentences, {len(batches)} batches, 1 thread, "
          f"{args.repeats} interleaved repeats; dynamo: {dict(torch._dynamo.utils.counters['stats'])}")
    print("| model | ms per pass | vs dense eager | vs dense compiled (same mode) |")
    print("|---|---|---|---|")
    for name, stats in times.items():
        base = speedup_stats(times["dense eager"], stats)
        mode = name.split("(")[-1].rstrip(")") if "compiled" in name else None
        same = speedup_stats(times[f"dense compiled ({mode})"], stats) if mode else None
        same_text = f"{same.median:.2f} [{same.q25:.2f}, {same.q75:.2f}]" if same else "-"
        print(f"| {name} | {1e3 * stats.median:.0f} | {base.median:.2f} [{base.q25:.2f}, {base.q75:.2f}] | {same_text} |")


def _pass(model, batches, numba: bool = True):
    def run() -> None:
        with torch.inference_mode(), compiled_rounds(numba):
            for inputs in batches:
                model(**inputs)

    return run


if __name__ == "__main__":
    main()
