"""Eager and compiled speed of the pyramid model against the dense one, batch 1 and 32, in one process.

The built-in geometry (minilm-l6, random weights: speed does not depend on them), rt-polarity test sentences
(a seeded sample), length-sorted and padded per batch (batch 1: each sentence alone, unpadded), keep ratios
0.5, 0.25, 0.25, 0.25, 0.25, 0.25 (Eq. 5, p 0.25, prune_upto 2), coreset m = 1; First-k-select on the same
schedule (its selection is a sort of a bool mask) shows what the schedule allows once selection costs ~nothing.
Every model is timed over the whole sample per repeat; all models take turns (interleaved repeats); speedups are
medians of paired ratios, inter-quartile range in brackets.

    OMP_NUM_THREADS=1 flock /tmp/pyramid-timing.lock python benchmarks/compile_speed.py --batch-size 1
    OMP_NUM_THREADS=1 flock /tmp/pyramid-timing.lock python benchmarks/compile_speed.py --batch-size 32
    OMP_NUM_THREADS=1 flock /tmp/pyramid-timing.lock python benchmarks/compile_speed.py --floor   # what bounds batch 1

``--csv FILE`` keeps every timed pass (model, repeat, seconds); ``--from FILE`` rebuilds the table from it.
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
from torch.profiler import ProfilerActivity, profile

from pyramid_bert import pyramidize
from pyramid_bert.compiling import compile_model
from pyramid_bert.io import read_csv_rows, write_csv_atomic
from pyramid_bert.measure.bench import geometry_model, selection_timer, task_encodings
from pyramid_bert.measure.timing import TimingStats, speedup_stats, time_interleaved
from pyramid_bert.selection import compiled_rounds
from pyramid_bert.training.batching import make_batches

RATIOS = [0.5, 0.25, 0.25, 0.25, 0.25, 0.25]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--modes", default="default", help="comma-separated torch.compile modes to time ('freezing': inductor's option)"
    )
    parser.add_argument("--no-compile", action="store_true", help="eager models only")
    parser.add_argument("--floor", action="store_true", help="batch 1's bound: linears by tokens, profiles, shares")
    parser.add_argument("--csv", help="keep every timed pass here")
    parser.add_argument("--from", dest="from_csv", help="rebuild the table from this CSV without timing")
    args = parser.parse_args()
    if args.from_csv:
        rows = read_csv_rows(args.from_csv)
        times: dict[str, TimingStats] = {}
        for row in rows:
            times.setdefault(row["model"], TimingStats()).samples.append(float(row["seconds"]))
        return print(table(times))
    torch.set_num_threads(1)
    encodings = task_encodings("rt-polarity", None, args.examples)
    batches = [b.inputs for b in make_batches(encodings, args.batch_size, "sorted")]
    dense = geometry_model("minilm-l6", int(encodings["input_ids"].shape[1]))
    if args.floor:
        return floor(dense, [b.inputs for b in make_batches(encodings, 1, "sorted")])
    pyramid = pyramidize(copy.deepcopy(dense), keep_ratios=RATIOS, method="coreset", m=1)
    first_k = pyramidize(copy.deepcopy(dense), keep_ratios=RATIOS, method="first_k")
    models = {"dense eager": dense, "pyramid eager": pyramid, "first-k eager": first_k}
    if not args.no_compile:
        for mode in args.modes.split(","):
            for name, model in (("dense", dense), ("pyramid", pyramid), ("first-k", first_k)):
                if mode == "freezing":
                    compiled = copy.deepcopy(model)
                    compiled.compile(dynamic=True, options={"freezing": True})
                else:
                    compiled = compile_model(copy.deepcopy(model), mode=mode)
                models[f"{name} compiled ({mode})"] = compiled
    calls = {name: _pass(model, batches) for name, model in models.items()}
    calls["pyramid eager, torch rounds"] = _pass(pyramid, batches, numba=False)
    started = time.perf_counter()
    for name, call in calls.items():  # warm-up: compiles every shape the timed passes meet
        call()
        print(f"# warmed {name} ({time.perf_counter() - started:.0f} s)", flush=True)
    times = time_interleaved(calls, warmup=0, repeats=args.repeats)
    print(f"# batch {args.batch_size}, {len(encodings['input_ids'])} sentences, {len(batches)} batches, 1 thread, "
          f"{args.repeats} interleaved repeats; dynamo: {dict(torch._dynamo.utils.counters['stats'])}")
    if args.csv:
        write_csv_atomic(args.csv, [{"model": name, "repeat": i, "seconds": seconds}
                                    for name, stats in times.items() for i, seconds in enumerate(stats.samples)])  # fmt: skip
    print(table(times))


def table(times: dict[str, TimingStats]) -> str:
    """Markdown: each model's median pass and its paired speedups over dense eager and dense compiled (same mode)."""
    lines = ["| model | ms per pass | vs dense eager | vs dense compiled (same mode) |", "|---|---|---|---|"]
    for name, stats in times.items():
        base = speedup_stats(times["dense eager"], stats)
        mode = name.split("(")[-1].rstrip(")") if "compiled" in name else None
        same = speedup_stats(times[f"dense compiled ({mode})"], stats) if mode else None
        same_text = f"{same.median:.2f} [{same.q25:.2f}, {same.q75:.2f}]" if same else "-"
        lines.append(f"| {name} | {1e3 * stats.median:.0f} | {base.median:.2f} [{base.q25:.2f}, {base.q75:.2f}] | {same_text} |")
    return "\n".join(lines)


def floor(dense, sentences) -> None:
    """What bounds batch 1: the FFN linears of 6 layers by token count, the compiled forwards' profiles (share of
    time in matrix products), and the eager share of the forward spent in selection."""
    layers = [(torch.nn.Linear(384, 1536), torch.nn.Linear(1536, 384)) for _ in range(6)]
    calls = {tokens: _linears(layers, torch.randn(1, tokens, 384)) for tokens in (1, 2, 4, 7, 13, 26, 52)}
    for tokens, stats in time_interleaved(calls, warmup=1, repeats=7).items():
        print(f"FFN linears of 6 layers, {tokens:2d} tokens: {stats.median / 20 * 1e3:.3f} ms")
    pyramid = pyramidize(copy.deepcopy(dense), keep_ratios=RATIOS, method="coreset", m=1)
    _pass(pyramid, sentences)()  # warm-up
    with torch.inference_mode(), selection_timer(pyramid) as spent:
        started = time.perf_counter()
        _pass(pyramid, sentences)()
        print(f"eager pyramid: {sum(spent) / (time.perf_counter() - started):.1%} of the forward in selection")
    for name, model in (("dense", dense), ("pyramid", pyramid)):
        compiled = compile_model(copy.deepcopy(model))
        _pass(compiled, sentences)()  # compiles
        with profile(activities=[ProfilerActivity.CPU]) as profiled:
            _pass(compiled, sentences)()
        rows = {row.key: row for row in profiled.key_averages()}
        total = sum(row.self_cpu_time_total for row in rows.values())
        addmm = rows["aten::addmm"]
        print(f"compiled {name}: {total / len(sentences) / 1e3:.2f} ms per sentence (profiled), addmm "
              f"{addmm.self_cpu_time_total / total:.0%} ({addmm.self_cpu_time_total / addmm.count:.0f} us per call)")
        print(profiled.key_averages().table(sort_by="self_cpu_time_total", row_limit=8))


def _linears(layers, x):
    def run() -> None:
        with torch.inference_mode():
            for _ in range(20):
                for up, down in layers:
                    down(up(x))

    return run


def _pass(model, batches, numba: bool = True):
    def run() -> None:
        with torch.inference_mode(), compiled_rounds(numba):
            for inputs in batches:
                model(**inputs)

    return run


if __name__ == "__main__":
    main()
