"""Test accuracy at fp32 and int8, dense and pyramid, over seeds; and how often int8 changes the kept tokens.

    OMP_NUM_THREADS=1 python benchmarks/precision_accuracy.py RUNS_DIR [--out benchmarks/precision_accuracy.md]
    python benchmarks/precision_accuracy.py --from benchmarks/precision_accuracy.csv --out T.md   # rebuild the tables

RUNS_DIR holds, per seed s, ``dense-s{s}`` (a dense fine-tune) and pyramid configurations adapted from it, named
``<config>-s{s}`` (the configurations: ``--configs``, default pyr2x, csp2x, pyr3x). Every model is scored on the
whole test split of its task at each precision (``evaluate_checkpoint(..., precision=...)``), and for each pyramid
configuration the tokens kept at every layer by the fp32 and the int8 model are compared on the same sentences
(share of test sentences whose kept set differs somewhere; mean Jaccard overlap of the kept sets). Means with 95%
Student-t intervals over the seeds; paired differences over the same seeds (``pyramid_bert.report.stats``).
Writes the Markdown table and, beside it (same name, ``.csv``), the per-seed numbers it is built from (both
atomically), and prints the table; ``--from CSV`` rebuilds the table from such a file alone.
"""

from __future__ import annotations

import argparse
import csv
import io
from pathlib import Path

import torch

from pyramid_bert import kept_input_positions, load_pyramid_model
from pyramid_bert.io import atomic_write_text, read_csv_rows
from pyramid_bert.measure.evaluate import evaluate_checkpoint
from pyramid_bert.measure.latency import single_sentences
from pyramid_bert.report.stats import format_difference, mean_ci, paired_difference

PRECISIONS = ("fp32", "int8")


def kept_sets(model, sentences) -> list[list[frozenset[int]]]:
    """Per sentence, per selecting layer: the input positions kept (batch 1, unpadded)."""
    result = []
    with torch.inference_mode():
        for inputs in sentences:
            model(**inputs)
            layers = kept_input_positions(model)
            result.append([frozenset(positions[0][real[0]].tolist()) for positions, real in layers])
    return result


def selection_agreement(folder: Path, encodings) -> dict[str, float]:
    """fp32 vs int8 kept tokens of the pyramid at ``folder`` over the test sentences."""
    sentences = single_sentences(encodings)
    fp32 = kept_sets(load_pyramid_model(str(folder), precision="fp32").eval(), sentences)
    int8 = kept_sets(load_pyramid_model(str(folder), precision="int8").eval(), sentences)
    differs = [a != b for a, b in zip(fp32, int8, strict=True)]
    jaccard = [len(x & y) / len(x | y) for a, b in zip(fp32, int8, strict=True) for x, y in zip(a, b, strict=True)]
    return {"differs": sum(differs) / len(differs), "jaccard": sum(jaccard) / len(jaccard), "sentences": len(differs)}


def test_encodings(folder: Path):
    from transformers import AutoTokenizer

    from pyramid_bert.data import load_task, tokenize_split

    task = load_task("rt-polarity", seed=0)
    return tokenize_split(AutoTokenizer.from_pretrained(folder), task, "test")


CSV_FIELDS = ("model", "seed", "precision", "accuracy", "examples", "kept_differs", "kept_jaccard")


def measure(runs: Path, names: list[str], seeds: list[int]) -> list[dict]:
    """Per model and seed: test accuracy at each precision; for pyramid models, fp32-vs-int8 kept-token agreement
    (on the int8 row)."""
    rows = []
    for seed in seeds:
        for name in names:
            folder = runs / f"{name}-s{seed}"
            for precision in PRECISIONS:
                result = evaluate_checkpoint(folder, split="test", measure_speed=False, write_json=False,
                                             precision=precision, device="cpu")  # fmt: skip
                rows.append({"model": name, "seed": seed, "precision": precision, "accuracy": result.metric,
                             "examples": result.examples, "kept_differs": "", "kept_jaccard": ""})  # fmt: skip
                print(name, seed, precision, f"{result.metric:.4f}", result.examples, flush=True)
            if name != "dense":
                agreement = selection_agreement(folder, test_encodings(folder))
                rows[-1].update(kept_differs=agreement["differs"], kept_jaccard=agreement["jaccard"])
                print(name, seed, agreement, flush=True)
    return rows


def read_rows(path: Path) -> list[dict]:
    """The rows of a per-seed CSV written by this script, numbers parsed."""
    rows = []
    for row in read_csv_rows(path):
        row["seed"], row["examples"], row["accuracy"] = int(row["seed"]), int(row["examples"]), float(row["accuracy"])
        rows.append(row)
    return rows


def rows_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("runs", type=Path, nargs="?", help="folder of checkpoints")
    source.add_argument("--from", dest="source", type=Path, help="rebuild the tables from this per-seed CSV")
    parser.add_argument("--configs", default="pyr2x,csp2x,pyr3x")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="benchmarks/precision_accuracy.md")
    args = parser.parse_args()
    if args.source is not None:
        rows = read_rows(args.source)
    else:
        rows = measure(args.runs, ["dense", *args.configs.split(",")], [int(s) for s in args.seeds.split(",")])
        atomic_write_text(Path(args.out).with_suffix(".csv"), rows_csv(rows))
    table = format_tables(rows)
    atomic_write_text(args.out, table)
    print(table)


def format_tables(rows: list[dict]) -> str:
    """The accuracy table and the kept-token agreement table of ``rows`` (see :func:`measure`)."""
    names = list(dict.fromkeys(row["model"] for row in rows))
    seeds = sorted({row["seed"] for row in rows})
    examples = rows[0]["examples"]
    accuracy: dict[tuple[str, str], dict[int, float]] = {}
    agreement: dict[str, list[dict[str, float]]] = {}
    for row in rows:
        accuracy.setdefault((row["model"], row["precision"]), {})[row["seed"]] = row["accuracy"]
        if row["kept_differs"] not in ("", None):
            agreement.setdefault(row["model"], []).append(
                {"differs": float(row["kept_differs"]), "jaccard": float(row["kept_jaccard"])})
    dense = accuracy["dense", "fp32"]
    lines = [
        f"Test accuracy x 100 on the whole rt-polarity test split ({examples} sentences), seeds {seeds}: mean [95% t "
        "interval]; differences paired over the seeds (`*`: significant at 95%).\n",
        "| model | precision | accuracy | vs fp32 dense | int8 vs fp32 of the same model |",
        "|---|---|---|---|---|",
    ]
    for name in names:
        for precision in PRECISIONS:
            values = accuracy[name, precision]
            summary = mean_ci(list(values.values()))
            own = "" if precision == "fp32" else format_difference(paired_difference(values, accuracy[name, "fp32"]), scale=100)
            versus = "" if (name, precision) == ("dense", "fp32") else format_difference(paired_difference(values, dense), scale=100)
            lines.append(f"| {name} | {precision} | {100 * summary.mean:.1f} [{100 * summary.low:.1f}, "
                         f"{100 * summary.high:.1f}] | {versus} | {own} |")  # fmt: skip
    lines += [
        "",
        "Kept tokens, fp32 vs int8 (the same pyramid model, one unpadded sentence at a time):\n",
        "| model | sentences whose kept tokens differ at some layer (mean over seeds) | mean Jaccard overlap of kept sets |",
        "|---|---|---|",
    ]
    for name, runs in agreement.items():
        differs = sum(run["differs"] for run in runs) / len(runs)
        jaccard = sum(run["jaccard"] for run in runs) / len(runs)
        lines.append(f"| {name} | {100 * differs:.1f}% | {jaccard:.3f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
