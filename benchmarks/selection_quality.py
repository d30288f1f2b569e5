"""Training-free selection (the paper's "eliminate the need of fine-tuning"): token selection applied to each seed's
densely fine-tuned model of a selection-quality store, no further training, at the study's schedule and at two
schedules that select later (where tokens are more redundant).

    python benchmarks/selection_quality.py STORE_DIR [--tasks rt-polarity,trec] [--schedules early] [--out training_free.md]
    python benchmarks/selection_quality.py --from benchmarks/selection_quality/training_free.jsonl --out T.md  # rebuild

STORE_DIR: the folder of `pyramid-bert sweep --preset selection` (results.sqlite + checkpoints/). Every
evaluation uses the trials' own dev/test data (the store's ``max_eval_examples``: whole splits in the current preset)
and is cached in STORE_DIR/training_free.jsonl (``--cache`` to name another file), so an interrupted run resumes;
that file, one line per evaluation and seed, is the per-seed data the tables are rebuilt from (``--from``). Prints
and writes a Markdown section: test metric (x 100) mean [95% CI] over seeds, the loss against dense, and the paired difference to plain core-set
selection (CS); dev chooses the best baseline.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from pyramid_bert.io import atomic_write_text
from pyramid_bert.measure.evaluate import evaluate_checkpoint
from pyramid_bert.report.stats import format_difference, holm, mean_ci, paired_difference
from pyramid_bert.sweep.presets import SELECTION_RATIOS, SELECTION_TRUNCATION
from pyramid_bert.sweep.store import open_existing

MERGE = {"merge": True}
PLUS = {"distance": "cosine", "duplicity_attention": True, "merge": True}
#: name -> (only_infer spec without the schedule, whether it is one of the paper's baselines)
CONFIGS = {
    "CS": ({"method": "coreset", "m": 1}, False),
    "CS-k-1": ({"method": "coreset", "m": None}, False),
    "CS+merge": ({"method": "coreset", "m": 1, **MERGE}, False),
    "CS+dup": ({"method": "coreset", "m": 1, "duplicity_attention": True}, False),
    "CS cosine": ({"method": "coreset", "m": 1, "distance": "cosine"}, False),
    "CS standardized": ({"method": "coreset", "m": 1, "distance": "standardized"}, False),
    "CS+": ({"method": "coreset", "m": 1, **PLUS}, False),
    "Att": ({"method": "attention"}, True),
    "Att+merge": ({"method": "attention", **MERGE}, False),
    "Rand": ({"method": "random"}, True),
    "Rand+merge": ({"method": "random", **MERGE}, False),
    "1st": ({"method": "first_k"}, True),
    "1st+merge": ({"method": "first_k", **MERGE}, False),
    "Pool": ({"method": "average_pool", "pool_windows": [2, 2, 1, 1, 1, 1]}, True),
    "1st-I": ({"method": "input_first_k"}, True),
}
#: schedule name -> keep ratios; "early" is the fine-tuned study's (selection after layers 1 and 2)
SCHEDULES = {
    "early r=0.5,0.25 (layers 1-2)": list(SELECTION_RATIOS),
    "late r=1,1,0.5,0.25 (layers 3-4)": [1.0, 1.0, 0.5, 0.25, 0.25, 0.25],
    "latest r=1,1,1,1,0.5,0.25 (layers 5-6)": [1.0, 1.0, 1.0, 1.0, 0.5, 0.25],
}
LATE_CONFIGS = ("CS", "CS+", "Att", "1st")


def only_infer(name: str, schedule: str, task: str) -> dict:
    spec, _ = CONFIGS[name]
    spec = dict(spec)
    if spec["method"] == "input_first_k":
        cut = SELECTION_TRUNCATION[task]
        return {**spec, "lengths": [cut] * 6}
    if spec["method"] == "average_pool":
        return spec
    return {**spec, "keep_ratios": SCHEDULES[schedule]}


def evaluations(store_dir: Path, tasks: list[str] | None):
    """(task, seed, dense folder) of every finished dense trial of the store."""
    with open_existing(store_dir / "results.sqlite") as store:
        for record in store.records():
            spec = record.spec
            if record.ok and spec.method == "dense" and (tasks is None or spec.task in tasks):
                yield spec.task, spec.seed, store_dir / "checkpoints" / spec.key[:16], spec.max_eval_examples


def read_cache(cache_path: Path) -> dict[tuple, dict]:
    """The evaluations recorded in ``cache_path`` (one JSON line each), by (task, seed, schedule, config, split)."""
    cache = {}
    if cache_path.exists():
        for line in cache_path.read_text().splitlines():
            row = json.loads(line)
            cache[(row["task"], row["seed"], row["schedule"], row["config"], row["split"])] = row
    return cache


def run_all(store_dir: Path, tasks: list[str] | None, cache_path: Path, schedules: list[str]) -> list[dict]:
    """Evaluate every configuration of ``schedules`` on every dense model of the store (cached in ``cache_path``)."""
    cache = read_cache(cache_path)
    for task, seed, folder, max_examples in evaluations(store_dir, tasks):
        jobs = [("dense", "-", split) for split in ("dev", "test")]
        for schedule in schedules:
            names = CONFIGS if schedule.startswith("early") else LATE_CONFIGS
            jobs += [(name, schedule, split) for name in names for split in ("dev", "test")]
        for name, schedule, split in jobs:
            key = (task, seed, schedule, name, split)
            if key in cache:
                continue
            spec = None if name == "dense" else only_infer(name, schedule, task)
            result = evaluate_checkpoint(folder, split=split, only_infer=spec, measure_speed=False,
                                         max_examples=max_examples, write_json=False)  # fmt: skip
            row = {"task": task, "seed": seed, "schedule": schedule, "config": name, "split": split,
                   "metric": result.metric, "metric_name": result.metric_name}  # fmt: skip
            cache[key] = row
            with cache_path.open("a") as handle:  # one line per evaluation: a killed run loses at most one
                handle.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    return list(cache.values())


def _fmt(values: dict[int, float]) -> str:
    ci = mean_ci(list(values.values()))
    interval = f" [{100 * ci.low:.1f}, {100 * ci.high:.1f}]" if ci.low is not None else " (1 seed)"
    return f"{100 * ci.mean:.1f}{interval}"


def schedule_table(cells: dict, schedule: str) -> list[str]:
    """One schedule's rows: test metric, loss against dense, difference to CS and to the best baseline on dev; every
    difference of the table is one Holm family (``*``: significant after the correction; raw intervals shown)."""
    present = [name for name in CONFIGS if (schedule, name) in cells]
    baselines = [n for n in present if CONFIGS[n][1]]
    best = max(baselines, key=lambda n: statistics.fmean(cells[(schedule, n)]["dev"].values()), default=None)
    dense = cells[("-", "dense")]["test"]
    cs = cells.get((schedule, "CS"), {}).get("test", {})
    pairs = []  # (row, column, difference)
    for name in present:
        test = cells[(schedule, name)]["test"]
        pairs.append((name, "loss", paired_difference(dense, test)))
        if name != "CS" and cs:
            pairs.append((name, "cs", paired_difference(test, cs)))
        if best and name != best:
            pairs.append((name, "best", paired_difference(test, cells[(schedule, best)]["test"])))
    adjusted = holm([difference for _, _, difference in pairs])
    tested = sum(difference is not None and difference.p_value is not None for difference in adjusted)
    text = {(name, column): format_difference(difference, scale=100.0)
            for (name, column, _), difference in zip(pairs, adjusted, strict=True)}  # fmt: skip
    lines = [f"{schedule}; best baseline on dev: {best or '-'}\n",
             "| configuration | test [95% CI] | loss vs dense | vs CS | vs best baseline |", "|---|---|---|---|---|"]  # fmt: skip
    for name in present:
        cells_text = [text.get((name, column), "") for column in ("loss", "cs", "best")]
        lines.append(f"| {name} | {_fmt(cells[(schedule, name)]['test'])} | " + " | ".join(cells_text) + " |")
    lines += ["", f"\\* significant at 95% after Holm's correction over this table's {tested} differences (raw intervals).", ""]
    return lines


def markdown(rows: list[dict]) -> str:
    table: dict = {}
    for row in rows:
        table.setdefault(row["task"], {}).setdefault((row["schedule"], row["config"]), {}).setdefault(row["split"], {})[
            row["seed"]] = row["metric"]  # fmt: skip
    parts = []
    for task, cells in table.items():
        parts.append(f"### {task}: training-free (dense fine-tuned model, selection at inference only)\n")
        parts.append(f"dense: test {_fmt(cells[('-', 'dense')]['test'])}\n")
        for schedule in SCHEDULES:
            if any((schedule, name) in cells for name in CONFIGS):
                parts += schedule_table(cells, schedule)
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("store_dir", type=Path, nargs="?", help="the selection study's folder")
    parser.add_argument("--tasks", help="comma-separated tasks (default: every task with a dense model)")
    parser.add_argument("--schedules", default=",".join(name.split()[0] for name in SCHEDULES),
                        help="comma-separated schedules: early, late, latest (default: all three)")  # fmt: skip
    parser.add_argument("--cache", type=Path, help="the evaluations file (default STORE_DIR/training_free.jsonl)")
    source.add_argument("--from", dest="source", type=Path, help="rebuild the tables from this evaluations file alone")
    parser.add_argument("--out", default="training_free.md")
    args = parser.parse_args()
    chosen = args.schedules.split(",")
    unknown = sorted(set(chosen) - {name.split()[0] for name in SCHEDULES})
    if unknown:
        parser.error(f"--schedules: unknown {unknown}; valid: early, late, latest")
    if args.source is not None:
        rows = list(read_cache(args.source).values())
    else:
        torch.set_num_threads(1)
        from transformers.utils import logging

        logging.set_verbosity_error()
        logging.disable_progress_bar()
        cache = args.cache or args.store_dir / "training_free.jsonl"
        schedules = [name for name in SCHEDULES if name.split()[0] in chosen]
        rows = run_all(args.store_dir, args.tasks.split(",") if args.tasks else None, cache, schedules)
    text = markdown(rows)
    atomic_write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
