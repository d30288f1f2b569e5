"""Adaptive keep trained LTP-style: thresholds calibrated on each dense model, then 1 epoch with the soft mask.

    OMP_NUM_THREADS=1 python benchmarks/adaptive_training.py runs/accuracy/results.sqlite --seed 0 \
        --work runs/adaptive-training --csv runs/adaptive-training/seed0.csv          # one process per seed
    python benchmarks/adaptive_training.py --from benchmarks/adaptive_training.csv --out benchmarks/adaptive_training.md

For a seed of the accuracy study (``pyramid-bert sweep --preset accuracy``): the seed's dense rt-polarity model,
Attention-select with per-layer keep thresholds calibrated on 512 training sentences so that the mean kept share of
layer j is Eq. 5's ``r_j`` (``--target``, default (0.25, 3), the study's "2X" schedule); scored training-free, then
adapted for 1 epoch on the whole training split (lr 5e-5, batch 32, the study's budget) with LTP's soft mask (each
token weighed by ``sigmoid((score - threshold) / T)``, ``--temperature``), and scored again with hard pruning.
Both rows get the FLOPs model's speedup from the widths they really ran at (length-sorted test batches of 32, and
per example). The table puts the study's trained rows at the same target beside them (dense, Att@2X, CS+r@2X).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from transformers import AutoTokenizer

from pyramid_bert import data, load_pyramid_model
from pyramid_bert.io import atomic_write_text, read_csv_rows, write_csv_atomic
from pyramid_bert.measure.adaptive import calibrate_thresholds, realised_counts, realised_speedup
from pyramid_bert.report.stats import format_difference, holm, mean_ci, paired_difference
from pyramid_bert.schedule import sequence_ratios
from pyramid_bert.sweep.store import finished_by_seed
from pyramid_bert.training.batching import make_batches
from pyramid_bert.training.config import FinetuneConfig
from pyramid_bert.training.loop import finetune
from pyramid_bert.training.scoring import score_split, tokenize_for_model

FIELDS = ["seed", "config", "dev", "test", "flops_sorted", "flops_per_example", "thresholds"]
#: The accuracy study's trained rows shown beside the adaptive ones (their speedups are measured, not the FLOPs model's).
STUDY_ROWS = ("Att@2X", "CS+r@2X")


def scored(model, tokenizer, task, seed: int, config: str, thresholds: list[float]) -> dict:
    """One CSV row: ``model`` (pyramidized, eval mode) scored on dev and test, its realised FLOPs speedups."""
    test = tokenize_for_model(model, tokenizer, task, "test")
    batches = make_batches({k: v for k, v in test.items() if k != "labels"}, 32, "sorted")
    speed = realised_speedup(model, realised_counts(model, batches))
    dev_score, test_score = (score_split(model, tokenizer, task, split)["metric"] for split in ("dev", "test"))
    return {"seed": seed, "config": config, "dev": dev_score, "test": test_score, "flops_sorted": speed["batched"],
            "flops_per_example": speed["per_example"], "thresholds": " ".join(f"{t:.4g}" for t in thresholds)}  # fmt: skip


def measure_seed(store: Path, seed: int, target: tuple[float, int], temperature: float, work: Path) -> list[dict]:
    """The training-free and the soft-mask-trained rows of one seed, and the study's rows at the same target."""
    task = data.load_task("rt-polarity")
    folder = finished_by_seed(store, task="rt-polarity")[seed].result["checkpoint"]
    tokenizer, model = AutoTokenizer.from_pretrained(folder), load_pyramid_model(folder).eval()
    train = tokenize_for_model(model, tokenizer, task, "train")
    sample = torch.randperm(len(train["labels"]), generator=torch.Generator().manual_seed(seed))[:512]
    calibration = make_batches({k: v[sample] for k, v in train.items() if k != "labels"}, 64, "sorted")
    ratios = sequence_ratios(model.config.num_hidden_layers, *target)
    thresholds = calibrate_thresholds(model, ratios, calibration)
    rows = [scored(model, tokenizer, task, seed, "threshold, training-free", thresholds)]
    config = FinetuneConfig(task="rt-polarity", model=folder, method="attention", keep_thresholds=thresholds,
                            soft_threshold_temperature=temperature, epochs=1.0, lr=5e-5, batch_size=32, seed=seed,
                            out=str(work / f"seed{seed}"))  # fmt: skip
    trained = load_pyramid_model(finetune(config, progress=False, evaluate_dev=False)).eval()
    rows.append(scored(trained, tokenizer, task, seed, f"threshold, soft mask T={temperature:g}, 1 epoch", thresholds))
    for name in (None, *STUDY_ROWS):
        result = finished_by_seed(store, task="rt-polarity", variant=name)[seed].result
        rows.append({"seed": seed, "config": name or "dense", "dev": result["dev_metric"], "test": result["test_metric"],
                     "flops_sorted": "", "flops_per_example": "", "thresholds": ""})  # fmt: skip
    return rows


def table(rows: list[dict]) -> str:
    """Per configuration: test mean [interval], paired difference to dense and to Att@2X (Holm over the table), and
    the FLOPs model's realised speedups (adaptive rows)."""
    configs = list(dict.fromkeys(row["config"] for row in rows))
    test = {c: {int(r["seed"]): 100 * float(r["test"]) for r in rows if r["config"] == c} for c in configs}
    others = [c for c in configs if c != "dense"]
    pairs = [(c, ref) for c in others for ref in ("dense", STUDY_ROWS[0]) if c != ref]
    diffs = dict(zip(pairs, holm([paired_difference(test[a], test[b]) for a, b in pairs]), strict=True))
    lines = ["| configuration | test | vs dense | vs Att@2X (trained, lengths) | FLOPs speedup, sorted batches of 32 | "
             "per example |", "|---|---|---|---|---|---|"]  # fmt: skip
    for config in configs:
        summary = mean_ci(list(test[config].values()))
        flops = [[float(r[key]) for r in rows if r["config"] == config and r[key] not in ("", None)]
                 for key in ("flops_sorted", "flops_per_example")]  # fmt: skip
        speed = [f"{sum(values) / len(values):.2f}X" if values else "-" for values in flops]
        interval = "" if summary.low is None else f" [{summary.low:.1f}, {summary.high:.1f}]"
        lines.append(f"| {config} | {summary.mean:.1f}{interval} | "
                     f"{format_difference(diffs.get((config, 'dense')))} | "
                     f"{format_difference(diffs.get((config, STUDY_ROWS[0])))} | {speed[0]} | {speed[1]} |")  # fmt: skip
    seeds = sorted({int(row["seed"]) for row in rows})
    return "\n".join(lines) + (
        f"\n\nrt-polarity, seeds {seeds}, accuracy x 100 on the whole test split, mean [95% t interval]; differences "
        f"paired over seeds with raw intervals, * = significant after Holm's correction over the table's {len(pairs)}."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("store", nargs="?", type=Path, help="the accuracy study's results.sqlite")
    source.add_argument("--from", dest="from_csv", nargs="+", help="rebuild the table from these CSVs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", default="0.25,3", help="Eq. 5's p,prune_upto of the mean kept shares")
    parser.add_argument("--temperature", type=float, default=0.1, help="the soft mask's temperature T")
    parser.add_argument("--work", type=Path, default=Path("runs/adaptive-training"))
    parser.add_argument("--csv", help="write the seed's rows here")
    parser.add_argument("--out", help="write the table here (it is printed either way)")
    args = parser.parse_args()
    if args.from_csv:
        rows = read_csv_rows(*args.from_csv)
    else:
        torch.set_num_threads(1)
        p, prune_upto = args.target.split(",")
        rows = measure_seed(args.store, args.seed, (float(p), int(prune_upto)), args.temperature, args.work)
        if args.csv:
            write_csv_atomic(args.csv, [{field: row[field] for field in FIELDS} for row in rows])
    text = table(rows)
    if args.out:
        atomic_write_text(args.out, text + "\n")
    print(text)


if __name__ == "__main__":
    main()
