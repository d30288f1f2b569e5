"""``report.md``, CSV tables and PNG plots, rebuilt from a results store alone."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from pyramid_bert.report.aggregate import COLUMN_TITLES, METHOD_COLUMNS, TaskResult, aggregate
from pyramid_bert.report.paper_results import PAPER_TASK_NAMES
from pyramid_bert.report.plots import plot_task
from pyramid_bert.report.tables import (
    FAILED_MARK,
    NO_TRIALS,
    OUT_OF_RANGE,
    TABLE_TARGETS,
    TableTarget,
    csv_table,
    markdown_table,
)
from pyramid_bert.sweep.store import TrialRecord, open_existing


@dataclass
class Report:
    """What :func:`build_report` wrote, and the Markdown of each table (keyed by the table's slug)."""

    folder: Path
    markdown_path: Path
    csv_paths: list[Path] = field(default_factory=list)
    plot_paths: list[Path] = field(default_factory=list)
    tables: dict[str, str] = field(default_factory=dict)
    trials_ok: int = 0
    trials_failed: int = 0

    def table(self, axis: str, target: float) -> str:
        return self.tables[TableTarget(axis, target).slug]


def build_report(
    store_path: str | Path, out_dir: str | Path, *, dense_anchor: bool = True, plots: bool = True
) -> Report:
    """Read every trial of the store at ``store_path`` and write the report into ``out_dir``."""
    with open_existing(store_path) as store:
        records = list(store.records())
        sweep_meta = store.get_meta("sweep", {})
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results = list(aggregate(records, dense_anchor=dense_anchor).values())
    report = Report(folder=out_dir, markdown_path=out_dir / "report.md")
    report.trials_ok = sum(1 for r in records if r.ok)
    report.trials_failed = len(records) - report.trials_ok

    for target in TABLE_TARGETS:
        report.tables[target.slug] = markdown_table(results, target)
        path = out_dir / "tables" / f"{target.slug}.csv"
        _write_text(path, csv_table(results, target))
        report.csv_paths.append(path)
    trials_path = out_dir / "tables" / "trials.csv"
    _write_text(trials_path, _trials_csv(records))
    report.csv_paths.append(trials_path)
    if plots:
        for result in results:
            for axis in ("speedup", "space"):
                report.plot_paths.append(
                    plot_task(result, out_dir / "plots" / f"{_slug(result.task)}_{axis}.png", axis=axis)
                )
    _write_text(report.markdown_path, _markdown(report, results, records, sweep_meta, Path(store_path), dense_anchor))
    return report


def _markdown(
    report: Report,
    results: list[TaskResult],
    records: list[TrialRecord],
    sweep_meta: dict,
    store_path: Path,
    dense_anchor: bool,
) -> str:
    tasks = [r.task for r in results]
    seeds = sorted({r.spec.seed for r in records})
    models = sorted({r.spec.model for r in records})
    lines = [
        "# Pyramid-BERT sweep report",
        "",
        f"- results store: `{store_path}`; rebuild with `pyramid-bert report {store_path} --out {report.folder}`",
        f"- trials: {report.trials_ok} finished, {report.trials_failed} failed; tasks: {', '.join(tasks) or 'none'}; "
        f"model(s): {', '.join(models) or 'none'}; seeds: {', '.join(map(str, seeds)) or 'none'}",
    ]
    if sweep_meta:
        lines.append(f"- sweep settings: `{json.dumps(sweep_meta, sort_keys=True)}`")
    if sweep_meta.get("synthetic"):
        lines += [
            "",
            "> **Synthetic trial function (`--synthetic`): no model was trained; these numbers only "
            "check the pipeline and say nothing about any method.**",
        ]
    lines += [
        "",
        "## How to read",
        "",
        "Rows are tasks, columns methods, as in the paper's Tables 1-3: "
        + "; ".join(f"{c} = {COLUMN_TITLES[c]}" for c in METHOD_COLUMNS)
        + ". Cells are the task's metric on the **test** split x 100, mean ± standard deviation over seeds.",
        "",
        "- Per method, every configuration (schedule, m; mean over seeds) is a point (measured speedup or "
        "attention-space reduction, metric). The Pareto frontier of those points is chosen on the **dev** "
        "split; the value at a target is the linear interpolation of the test metric between the two "
        "frontier points around it, with the same weights per seed (for the std)."
        " Attention-space reduction is the paper's formula, 1 - sum_j l_j^2 / (L N^2); the Configurations "
        "tables also give the exact one, over the tokens each layer's attention sees (layer 1 always N, layer j "
        "l_(j-1)), which is lower."
        + (
            " Each method's frontier includes the dense model at 1.0X (0% reduction): no selection is the dense model."
            if dense_anchor
            else ""
        ),
        "- CS-opt takes, per schedule, the coreset m (1, 0.1k, 0.2k, 0.3k, 0.4k, k-1, as far as swept) with "
        "the best dev metric; CS-k-1 is m = k-1.",
        f"- `{OUT_OF_RANGE}`: the target lies outside the measured range of that method (never extrapolated, "
        f"as in the paper's Table 11); `{NO_TRIALS}`: no successful trial of that method; `{FAILED_MARK}`: some trials of "
        "that method failed on that task (see Failed trials): the cell is built from the others.",
        "- Speedup is measured (T(dense) / T(pyramid), same weights, inputs, batch, threads, one process, "
        "median of interleaved repeats), so it is noisy on a shared machine.",
    ]
    paper_tasks = [t for t in tasks if t in PAPER_TASK_NAMES]
    if paper_tasks:
        lines.append(
            "- Rows in *italics* are the paper's numbers (BERT-base, dev sets, 20 trials) for the GLUE task of "
            "the same name; our backbone and budget differ, so compare trends, not digits."
        )
    if "rt-polarity" in tasks:
        lines.append(
            "- rt-polarity (Pang and Lee's Rotten Tomatoes snippets) is the source corpus of SST-2, but not the "
            "same task: SST-2 re-labelled those sentences and their phrases and has its own splits, so the "
            "paper's SST-2 numbers are not shown beside rt-polarity."
        )
    for target in TABLE_TARGETS:
        lines += ["", f"## {target.title}", "", report.tables[target.slug], "", f"CSV: `tables/{target.slug}.csv`"]
    lines += ["", "## Configurations", "",
              "Every configuration (mean over seeds; metric x 100); *frontier* lists the columns whose speedup "
              "frontier passes through it."]
    for result in results:
        lines += ["", f"### {result.task}", "",
                  "| method | configuration | measured speedup | predicted speedup "
                  "| attention-space reduction (paper's formula) | attention-space reduction (exact) "
                  "| dev | test | seeds | frontier |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for point in result.points:
            predicted = "" if point.predicted_speedup is None else f"{point.predicted_speedup:.2f}"
            exact = f"{point.mean('space_exact') * 100:.0f}%" if point.space_exact else ""
            lines.append(
                f"| {point.method} | {point.label} | {point.mean('speedup'):.2f} | {predicted} | "
                f"{point.mean('space') * 100:.0f}% | {exact} | {point.mean('dev') * 100:.1f} | "
                f"{point.mean('test') * 100:.1f} | "
                f"{len(point.seeds)} | {', '.join(result.frontier_columns(point))} |"
            )
    failed = [r for r in records if not r.ok]
    lines += ["", "## Failed trials", ""]
    if failed:
        lines += ["| task | method | schedule | m | seed | error |", "|---|---|---|---|---|---|"]
        for record in failed:
            spec = record.spec
            error = (record.error or "").strip().splitlines()
            message = (error[0] if error else "unknown error").replace("|", "/")[:200]
            m = "" if spec.method != "coreset" else ("k-1" if spec.m is None else f"{spec.m:g}")
            lines.append(f"| {spec.task} | {spec.method} | {spec.schedule} | {m} | {spec.seed} | {message} |")
        lines += ["", "Re-run them with `--resume --retry-failed`."]
    else:
        lines.append("None.")
    if report.plot_paths:
        lines += ["", "## Plots (like the paper's Figures 8-9)", ""]
        for path in report.plot_paths:
            relative = path.relative_to(report.folder)
            lines += [f"![{relative.stem}]({relative.as_posix()})", ""]
    lines += ["", "All trials, one row each: `tables/trials.csv`."]
    return "\n".join(lines) + "\n"


_TRIAL_COLUMNS = (
    "task", "model", "method", "schedule", "m", "position", "seed", "status", "dev_metric", "test_metric",
    "metric_name", "speedup_median", "speedup_q25", "speedup_q75", "predicted_speedup", "space_reduction",
    "space_reduction_exact", "train_seconds", "eval_seconds", "wall_seconds", "lengths", "pool_windows", "checkpoint", "host", "key", "error",
)  # fmt: skip


def _trials_csv(records: list[TrialRecord]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_TRIAL_COLUMNS)
    for record in records:
        spec, result = record.spec, record.result
        values = {
            **{name: result.get(name) for name in _TRIAL_COLUMNS},
            "task": spec.task,
            "model": spec.model,
            "method": spec.method,
            "schedule": spec.schedule,
            "m": "" if spec.method != "coreset" else ("k-1" if spec.m is None else f"{spec.m:g}"),
            "position": spec.position,
            "seed": spec.seed,
            "status": record.status,
            "wall_seconds": record.wall_seconds,
            "lengths": " ".join(map(str, result.get("lengths") or spec.lengths or [])),
            "pool_windows": " ".join(map(str, spec.pool_windows or [])),
            "host": record.host,
            "key": spec.key,
            "error": (record.error or "").strip().splitlines()[0] if record.error else "",
        }
        writer.writerow(["" if values[name] is None else values[name] for name in _TRIAL_COLUMNS])
    return buffer.getvalue()


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)
