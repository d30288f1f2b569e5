"""Seconds per training step: LengthDrop (stored schedule + one random draw, 2 forwards and backwards) against a
plain keep-ratio pyramid step and a dense step, with the trainer's own step function, interleaved.

Run (1 thread, the built-in minilm-l6, rt-polarity, batch 32, dynamic padding)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/length_drop_step.py --steps 12

Each configuration trains on the same batches in the same order (same seed); the median over the timed steps is
reported, the first ``--warmup`` steps of each are dropped. ``--csv FILE`` keeps every timed step;
``--from FILE`` rebuilds the table from it without timing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from transformers.utils import logging as hf_logging

from pyramid_bert import data
from pyramid_bert.io import read_csv_rows, write_csv_atomic
from pyramid_bert.training import loop
from pyramid_bert.training.config import FinetuneConfig

CS_PLUS = {"distance": "cosine", "duplicity_attention": True, "merge": True}


def time_steps(steps: int, warmup: int, batch_size: int) -> list[dict]:
    """Every timed step of each configuration, interleaved: rows of (configuration, step, seconds)."""
    hf_logging.set_verbosity_error()
    task = data.load_task("rt-polarity")
    common = dict(task="rt-polarity", model="minilm-l6", epochs=1, batch_size=batch_size,
                  max_train_examples=batch_size * (steps + warmup), lr=1e-4)  # fmt: skip
    ratios = dict(method="coreset", schedule="ratio", p=0.25, prune_upto=2, selection=CS_PLUS)
    configs = {
        "dense": dict(method="dense"),
        "pyramid CS+ keep ratios p=0.25 u=2": ratios,
        "LengthDrop, bound 1 (that schedule + one random draw)": {**ratios, "length_drop": 1.0},
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = {name: loop._prepare_run(FinetuneConfig.from_dict({**common, **c, "out": f"{tmp}/{i}"}), task)
                for i, (name, c) in enumerate(configs.items())}  # fmt: skip
        for step in range(warmup + steps):
            for name, run in runs.items():  # interleaved: the machine's load falls on every configuration alike
                run.model.train()
                started = time.perf_counter()
                loop._one_step(run, step)
                if step >= warmup:
                    rows.append({"config": name, "step": step, "seconds": time.perf_counter() - started})
    return rows


def table(rows: list[dict]) -> str:
    """Markdown: per configuration the median ms per step, steps per second and the ratio to dense."""
    seconds: dict[str, list[float]] = {}
    for row in rows:
        seconds.setdefault(row["config"], []).append(float(row["seconds"]))
    dense = statistics.median(seconds["dense"])
    steps = len(seconds["dense"])
    lines = [f"| step | ms/step (median of {steps}) | steps/s | vs dense |", "|---|---|---|---|"]
    for name, values in seconds.items():
        median = statistics.median(values)
        lines.append(f"| {name} | {median * 1000:.0f} | {1 / median:.2f} | {median / dense:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--csv", help="keep every timed step here")
    parser.add_argument("--from", dest="from_csv", help="rebuild the table from this CSV without timing")
    args = parser.parse_args()
    if args.from_csv:
        rows = read_csv_rows(args.from_csv)
    else:
        torch.set_num_threads(args.threads)
        rows = time_steps(args.steps, args.warmup, args.batch_size)
        if args.csv:
            write_csv_atomic(args.csv, rows)
    print(table(rows))


if __name__ == "__main__":
    main()
