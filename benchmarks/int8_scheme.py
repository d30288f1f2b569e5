"""Why int8 scales weights per output channel: test accuracy of dense models at fp32, at int8 with one weight scale
per tensor (torch's default dynamic qconfig) and at int8 with one scale per output channel (``--precision int8``).

    OMP_NUM_THREADS=1 python benchmarks/int8_scheme.py RUNS_DIR [--seeds 0,1,2] [--out benchmarks/int8_scheme.md]
    python benchmarks/int8_scheme.py --from benchmarks/int8_scheme.csv --out T.md      # rebuild the table
    OMP_NUM_THREADS=1 python benchmarks/int8_scheme.py --speed DENSE_FOLDER             # their speed, side by side

RUNS_DIR holds ``dense-s{seed}`` folders (as for ``benchmarks/precision_accuracy.py``). Each is scored on the whole
test split of its task. The per-tensor scheme is not an option of the library: this script swaps torch's default
qconfig into :func:`pyramid_bert.patch.quantize.quantize` for those rows only. Writes the per-seed CSV beside the
Markdown table (both atomically) and prints the table: means with 95% t intervals over the seeds, paired differences.
``--speed`` times the two int8 schemes of one dense model side by side in this process (``bench --latency``'s
functions: 200 single test sentences, and 640 length-sorted ones at batch 32, 5 interleaved repeats) and prints
per-channel's speedup over per-tensor.
"""

from __future__ import annotations

import argparse
import csv
import io
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification

from pyramid_bert.io import atomic_write_text, read_csv_rows
from pyramid_bert.measure.bench import task_encodings
from pyramid_bert.measure.evaluate import evaluate_checkpoint
from pyramid_bert.measure.latency import (
    format_deploy_table,
    measure_latency,
    measure_throughput,
    single_sentences,
    summarize,
)
from pyramid_bert.patch import quantize as quantize_module
from pyramid_bert.report.stats import format_difference, mean_ci, paired_difference

#: scheme -> the precision evaluate_checkpoint runs, and whether torch's per-tensor default replaces per-channel
SCHEMES = {"fp32": ("fp32", False), "int8 per tensor": ("int8", True), "int8 per channel": ("int8", False)}
FIELDS = ("seed", "scheme", "accuracy", "examples")


@contextmanager
def per_tensor_weights(active: bool):
    """While active, ``quantize`` uses torch's default dynamic qconfig (one scale per weight tensor)."""
    library = quantize_module.quantize_dynamic
    if active:
        quantize_module.quantize_dynamic = lambda model, _spec, dtype, inplace: library(
            model, {nn.Linear}, dtype=dtype, inplace=inplace
        )
    try:
        yield
    finally:
        quantize_module.quantize_dynamic = library


def measure(runs: Path, seeds: list[int]) -> list[dict]:
    rows = []
    for seed in seeds:
        for scheme, (precision, per_tensor) in SCHEMES.items():
            with per_tensor_weights(per_tensor):
                result = evaluate_checkpoint(runs / f"dense-s{seed}", split="test", measure_speed=False,
                                             write_json=False, precision=precision, device="cpu")  # fmt: skip
            rows.append({"seed": seed, "scheme": scheme, "accuracy": result.metric, "examples": result.examples})
            print(seed, scheme, f"{result.metric:.4f}", flush=True)
    return rows


def speed(folder: Path) -> str:
    """Per-channel against per-tensor int8 of the dense model at ``folder``: the deploy table, per-tensor as 1.00X."""
    torch.set_num_threads(1)
    models = {}
    for scheme in ("int8 per tensor", "int8 per channel"):
        model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        with per_tensor_weights(SCHEMES[scheme][1]):
            models[scheme] = quantize_module.quantize(model, "int8")
    encodings = task_encodings("rt-polarity", None, 640)
    samples = measure_latency(models, single_sentences(encodings, 200), repeats=5)
    samples += measure_throughput(models, encodings, batch_size=32, repeats=5)
    return format_deploy_table(summarize(samples, reference="int8 per tensor"), reference="int8 per tensor")


def table(rows: list[dict]) -> str:
    values: dict[str, dict[int, float]] = {}
    for row in rows:
        values.setdefault(row["scheme"], {})[int(row["seed"])] = float(row["accuracy"])
    fp32 = values["fp32"]
    lines = [
        f"Dense models, test accuracy x 100 ({rows[0]['examples']} sentences), seeds {sorted(fp32)}: mean [95% t "
        "interval]; differences paired over the seeds (`*`: significant at 95%).\n",
        "| precision | accuracy | vs fp32 | vs int8 per tensor |",
        "|---|---|---|---|",
    ]
    for scheme in SCHEMES:
        summary = mean_ci(list(values[scheme].values()))
        versus = "" if scheme == "fp32" else format_difference(paired_difference(values[scheme], fp32), scale=100)
        tensor = values["int8 per tensor"]
        other = "" if scheme != "int8 per channel" else format_difference(paired_difference(values[scheme], tensor), scale=100)
        lines.append(f"| {scheme} | {100 * summary.mean:.1f} [{100 * summary.low:.1f}, {100 * summary.high:.1f}] | "
                     f"{versus} | {other} |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("runs", type=Path, nargs="?", help="folder of dense-s{seed} checkpoints")
    source.add_argument("--from", dest="source", type=Path, help="rebuild the table from this per-seed CSV")
    source.add_argument("--speed", type=Path, metavar="DENSE_FOLDER", help="time the two schemes of this model")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="benchmarks/int8_scheme.md")
    args = parser.parse_args()
    if args.speed is not None:
        print(speed(args.speed))
        return
    if args.source is not None:
        rows = read_csv_rows(args.source)
    else:
        rows = measure(args.runs, [int(seed) for seed in args.seeds.split(",")])
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(Path(args.out).with_suffix(".csv"), buffer.getvalue())
    text = table(rows)
    atomic_write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
