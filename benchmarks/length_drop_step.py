"""Seconds per training step: LengthDrop (stored schedule + one random draw, 2 forwards and backwards) against a
plain keep-ratio pyramid step and a dense step, with the trainer's own step function, interleaved.

Run (1 thread, the built-in minilm-l6, rt-polarity, batch 32, dynamic padding)::

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/length_drop_step.py --steps 12

Each configuration trains on the same batches in the same order (same seed); the median over the timed steps is
reported, the first ``--warmup`` steps of each are dropped.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from transformers.utils import logging as hf_logging

from pyramid_bert import data
from pyramid_bert.training import loop
from pyramid_bert.training.config import FinetuneConfig

CS_PLUS = {"distance": "cosine", "duplicity_attention": True, "merge": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hf_logging.set_verbosity_error()
    task = data.load_task("rt-polarity")
    common = dict(task="rt-polarity", model="minilm-l6", epochs=1, batch_size=args.batch_size,
                  max_train_examples=args.batch_size * (args.steps + args.warmup), lr=1e-4)  # fmt: skip
    ratios = dict(method="coreset", schedule="ratio", p=0.25, prune_upto=2, selection=CS_PLUS)
    configs = {
        "dense": dict(method="dense"),
        "pyramid CS+ p=0.25 u=2": ratios,
        "LengthDrop (bound 1)": {**ratios, "length_drop": 1.0},
    }
    with tempfile.TemporaryDirectory() as tmp:
        runs = {name: loop._prepare_run(FinetuneConfig.from_dict({**common, **c, "out": f"{tmp}/{i}"}), task)
                for i, (name, c) in enumerate(configs.items())}  # fmt: skip
        seconds: dict[str, list[float]] = {name: [] for name in runs}
        for step in range(args.warmup + args.steps):
            for name, run in runs.items():  # interleaved: the machine's load falls on every configuration alike
                run.model.train()
                started = time.perf_counter()
                loop._one_step(run, step)
                if step >= args.warmup:
                    seconds[name].append(time.perf_counter() - started)
    dense = statistics.median(seconds["dense"])
    print(f"threads {torch.get_num_threads()}, batch {args.batch_size}, {args.steps} timed steps each (median)")
    for name, values in seconds.items():
        median = statistics.median(values)
        print(f"  {name:<24} {median * 1000:7.0f} ms/step  {1 / median:5.2f} steps/s  {median / dense:4.2f}x dense")


if __name__ == "__main__":
    main()
