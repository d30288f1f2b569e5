"""LengthDrop: one model run at several schedules, against dense and a model trained at each (the accuracy study).

    OMP_NUM_THREADS=1 python benchmarks/length_drop_accuracy.py runs/accuracy/results.sqlite --task rt-polarity \
        --trained CS+r --csv benchmarks/accuracy_study/length_drop.csv --out benchmarks/accuracy_study/length_drop.md
    python benchmarks/length_drop_accuracy.py --from benchmarks/accuracy_study/length_drop.csv --out FILE.md

For each seed of the store, the LengthDrop model (variant ``LD@3X``: CS+ trained at the "3X" keep ratios with
LengthDrop, :mod:`pyramid_bert.length_drop`) is scored on the whole dev and test splits at each group's keep ratios
(:data:`pyramid_bert.sweep.presets.ACCURACY_RATIOS`), changed in place (:func:`pyramid_bert.patch.reschedule.
set_keep_ratios`); dense and the CS+ model trained at that group's ratios (variant ``TRAINED@GROUP``) come from the
store. Scoring LengthDrop at its own schedule must give the store's score (checked). The table compares, paired over
seeds, with Holm's correction over its differences; the schedule, and so the speed, of LengthDrop at a group is the
trained model's (the same method, options and ratios: see the study's measured speedups).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import AutoTokenizer

from pyramid_bert import data, load_pyramid_model
from pyramid_bert.io import atomic_write_text, read_csv_rows, write_csv_atomic
from pyramid_bert.patch.reschedule import set_keep_ratios
from pyramid_bert.report.stats import format_difference, holm, mean_ci, paired_difference
from pyramid_bert.schedule import sequence_ratios
from pyramid_bert.sweep.presets import ACCURACY_RATIOS
from pyramid_bert.sweep.store import TrialRecord, finished_by_seed
from pyramid_bert.training.scoring import score_split

FIELDS = ["seed", "group", "config", "dev", "test"]
LENGTH_DROP = "LD@3X"


def measure(store: Path, task_name: str, trained: str) -> list[dict]:
    """The rows of the CSV: per seed and group, dense, the trained model and LengthDrop at that group's ratios."""
    task = data.load_task(task_name)
    dense = finished_by_seed(store, task=task_name)
    fixed = {group: finished_by_seed(store, task=task_name, variant=f"{trained}@{group}") for group in ACCURACY_RATIOS}
    rows = []
    for seed, record in sorted(finished_by_seed(store, task=task_name, variant=LENGTH_DROP).items()):
        checkpoint, stored_test = record.result["checkpoint"], record.result["test_metric"]
        model, tokenizer = load_pyramid_model(checkpoint).eval(), AutoTokenizer.from_pretrained(checkpoint)
        layers = model.config.num_hidden_layers
        for group, (_, (p, prune_upto)) in ACCURACY_RATIOS.items():
            set_keep_ratios(model, sequence_ratios(layers, p, prune_upto))
            dev, test = (score_split(model, tokenizer, task, split)["metric"] for split in ("dev", "test"))
            if group == LENGTH_DROP.split("@")[1] and abs(test - stored_test) > 1e-9:
                raise SystemExit(f"seed {seed}: LengthDrop at its own schedule scores {test}, the store {stored_test}")
            rows += [stored_row(dense[seed], group, "dense"), stored_row(fixed[group][seed], group, f"{trained}@{group}"),
                     {"seed": seed, "group": group, "config": LENGTH_DROP, "dev": dev, "test": test}]  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def stored_row(record: TrialRecord, group: str, config: str) -> dict:
    """A CSV row of a trial the store scored: its seed, dev and test metric under ``group`` and ``config``."""
    return {"seed": record.spec.seed, "group": group, "config": config, "dev": record.result["dev_metric"],
            "test": record.result["test_metric"]}  # fmt: skip


def table(rows: list[dict]) -> str:
    """Per group: each configuration's test mean and interval; LengthDrop - dense, LengthDrop - trained, trained -
    dense, paired over seeds, Holm over the table's differences."""
    groups = list(dict.fromkeys(row["group"] for row in rows))
    scores = {(row["group"], row["config"]): {} for row in rows}
    for row in rows:
        scores[row["group"], row["config"]][int(row["seed"])] = 100 * float(row["test"])
    cells, raw = [], []
    for group in groups:
        trained = next(config for g, config in scores if g == group and config not in ("dense", LENGTH_DROP))
        dense, fixed, drop = (scores[group, name] for name in ("dense", trained, LENGTH_DROP))
        cells.append((group, trained, [dense, fixed, drop]))
        raw += [paired_difference(drop, dense), paired_difference(drop, fixed), paired_difference(fixed, dense)]
    adjusted = holm(raw)
    lines = ["| group (keep ratios) | dense | trained at it | LengthDrop (trained at 3X) | LengthDrop - dense | "
             "LengthDrop - trained | trained - dense |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for index, (group, trained, columns) in enumerate(cells):
        label = ACCURACY_RATIOS[group][0]
        means = [_mean(values) for values in columns]
        diffs = [format_difference(d) for d in adjusted[3 * index : 3 * index + 3]]
        lines.append(f"| {group} ({label}) | {means[0]} | {trained}: {means[1]} | {means[2]} | " + " | ".join(diffs) + " |")
    seeds = sorted({int(row["seed"]) for row in rows})
    return "\n".join(lines) + (
        f"\n\nTest accuracy x 100 on the whole split, mean [95% t interval] over seeds {seeds}; differences paired over "
        f"seeds with raw intervals; * = significant after Holm's correction over the table's {len(raw)} differences."
    )


def _mean(values: dict[int, float]) -> str:
    summary = mean_ci(list(values.values()))
    return f"{summary.mean:.1f}" if summary.low is None else f"{summary.mean:.1f} [{summary.low:.1f}, {summary.high:.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("store", nargs="?", type=Path, help="the study's results.sqlite")
    source.add_argument("--from", dest="from_csv", help="rebuild the table from this CSV without measuring")
    parser.add_argument("--task", default="rt-polarity")
    parser.add_argument("--trained", default="CS+r", help="the variant trained at each group: NAME@GROUP")
    parser.add_argument("--csv", help="write the measured rows here")
    parser.add_argument("--out", help="write the table here (it is printed either way)")
    args = parser.parse_args()
    if args.from_csv:
        rows = read_csv_rows(args.from_csv)
    else:
        torch.set_num_threads(1)
        rows = measure(args.store, args.task, args.trained)
        if args.csv:
            write_csv_atomic(args.csv, [{field: row[field] for field in FIELDS} for row in rows])
    text = table(rows)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    print(text)


if __name__ == "__main__":
    main()
