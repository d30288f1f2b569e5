"""Adaptive keep (thresholds) against keep ratios at the same mean keep ratio, training-free, over dense seeds.

Run (after the accuracy study's dense trials, ``pyramid-bert sweep --preset accuracy --out runs/accuracy``):

    OMP_NUM_THREADS=1 python benchmarks/adaptive_accuracy.py runs/accuracy/results.sqlite \
        --csv benchmarks/adaptive_accuracy.csv --out benchmarks/adaptive_accuracy.md

For each seed's dense rt-polarity model and each Eq. 5 target (keep ratios r_j), Attention-select is applied at
inference only in two ways with the same mean keep ratio per layer: ``ratio`` (each example keeps ceil(r_j * n)
tokens) and ``threshold`` (per-layer thresholds calibrated on 512 training sentences so that the mean kept share is
r_j; each example keeps the tokens whose attention is above it: more for some, fewer for others). Scored on the whole
dev and test splits; the FLOPs model's speedup from the widths each batch really ran at (length-sorted batches of
128) and per example. Rebuild the table from the CSV: ``--from-csv benchmarks/adaptive_accuracy.csv``.
"""

from __future__ import annotations

import argparse

import torch
from transformers import AutoTokenizer

from pyramid_bert import data, load_pyramid_model, pyramidize, unpyramidize
from pyramid_bert.io import atomic_write_text, read_csv_rows, write_csv_atomic
from pyramid_bert.measure.adaptive import calibrate_thresholds, realised_counts, realised_speedup
from pyramid_bert.report.stats import format_difference, holm, mean_ci, paired_difference
from pyramid_bert.schedule import sequence_ratios
from pyramid_bert.sweep.store import finished_by_seed
from pyramid_bert.training.batching import make_batches
from pyramid_bert.training.scoring import score_split, tokenize_for_model

TARGETS = ((0.25, 3), (0.25, 1), (0.1, 3))
FIELDS = ["seed", "target", "kind", "dev", "test", "flops_sorted", "flops_per_example"]


def measure_seed(seed: int, folder: str, task: data.TaskData) -> list[dict]:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = load_pyramid_model(folder).eval()
    layers = model.config.num_hidden_layers
    train = tokenize_for_model(model, tokenizer, task, "train")
    sample = torch.randperm(len(train["labels"]), generator=torch.Generator().manual_seed(seed))[:512]
    calibration = make_batches({k: v[sample] for k, v in train.items() if k != "labels"}, 64, "sorted")
    test = tokenize_for_model(model, tokenizer, task, "test")
    timed = make_batches({k: v for k, v in test.items() if k != "labels"}, 128, "sorted")
    rows = []
    for p, upto in TARGETS:
        ratios = sequence_ratios(layers, p, upto)
        for kind in ("ratio", "threshold"):
            unpyramidize(model)
            if kind == "ratio":
                pyramidize(model, method="attention", keep_ratios=ratios)
            else:
                calibrate_thresholds(model, ratios, calibration)
            speed = realised_speedup(model, realised_counts(model, timed))
            scores = [score_split(model, tokenizer, task, split)["metric"] for split in ("dev", "test")]
            rows.append({"seed": seed, "target": f"p={p} u={upto}", "kind": kind, "dev": scores[0], "test": scores[1],
                         "flops_sorted": speed["batched"], "flops_per_example": speed["per_example"]})  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def table(rows: list[dict]) -> str:
    """Markdown: per target, mean test accuracy of each kind and the paired difference threshold - ratio (Holm over
    the targets), the dev difference, and the FLOPs model's speedups from the realised widths."""
    lines = ["| target | ratio: test | threshold: test | threshold - ratio, test [95% CI] | dev difference | "
             "FLOPs speedup sorted (ratio / threshold) | per example (ratio / threshold) |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    targets = list(dict.fromkeys(row["target"] for row in rows))
    cells, test_diffs, dev_diffs = [], [], []
    for target in targets:
        by_kind = {kind: {int(r["seed"]): r for r in rows if r["target"] == target and r["kind"] == kind}
                   for kind in ("ratio", "threshold")}  # fmt: skip
        metric = {kind: {s: 100 * float(r["test"]) for s, r in by_kind[kind].items()} for kind in by_kind}
        dev = {kind: {s: 100 * float(r["dev"]) for s, r in by_kind[kind].items()} for kind in by_kind}
        test_diffs.append(paired_difference(metric["threshold"], metric["ratio"]))
        mean = {(kind, key): sum(float(r[key]) for r in by_kind[kind].values()) / len(by_kind[kind])
                for kind in by_kind for key in ("flops_sorted", "flops_per_example")}  # fmt: skip
        dev_diffs.append(paired_difference(dev["threshold"], dev["ratio"]))
        cells.append((target, mean_ci(list(metric["ratio"].values())).mean, mean_ci(list(metric["threshold"].values())).mean,
                      mean))  # fmt: skip
    for (target, ratio, threshold, mean), diff, dev_diff in zip(cells, holm(test_diffs), holm(dev_diffs), strict=True):
        lines.append(
            f"| {target} | {ratio:.1f} | {threshold:.1f} | {format_difference(diff)} | {format_difference(dev_diff)} | "
            f"{mean['ratio', 'flops_sorted']:.2f}X / {mean['threshold', 'flops_sorted']:.2f}X | "
            f"{mean['ratio', 'flops_per_example']:.2f}X / {mean['threshold', 'flops_per_example']:.2f}X |"
        )
    seeds = sorted({int(row["seed"]) for row in rows})
    return "\n".join(lines) + (
        f"\n\nSeeds {seeds}; accuracy x 100 on the whole rt-polarity splits; intervals: t over seeds, raw; * = "
        f"significant after Holm's correction within the column ({len(targets)} differences).\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store", nargs="?", help="the accuracy study's results.sqlite")
    parser.add_argument("--csv", default="benchmarks/adaptive_accuracy.csv")
    parser.add_argument("--out", default="benchmarks/adaptive_accuracy.md")
    parser.add_argument("--from-csv", help="rebuild the table from this CSV without measuring")
    args = parser.parse_args()
    if args.from_csv:
        rows = read_csv_rows(args.from_csv)
    else:
        torch.set_num_threads(1)
        task = data.load_task("rt-polarity")
        dense = finished_by_seed(args.store, task="rt-polarity")
        rows = [row for seed, record in sorted(dense.items()) for row in measure_seed(seed, record.result["checkpoint"], task)]
        write_csv_atomic(args.csv, [{field: row[field] for field in FIELDS} for row in rows])
    atomic_write_text(args.out, "# Adaptive keep vs keep ratios, training-free (benchmarks/adaptive_accuracy.py)\n\n"
                      + table(rows))  # fmt: skip
    print(table(rows))


if __name__ == "__main__":
    main()
