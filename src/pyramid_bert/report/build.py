"""``report.md``, CSV tables and PNG plots, rebuilt from a results store alone."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

from pyramid_bert.io import atomic_write_text, mark_output_dir
from pyramid_bert.measure.evaluation import SPEEDUP_PREFIXES, SPREAD_STATS, speedup_column
from pyramid_bert.report.aggregate import (
    COLUMN_TITLES,
    SORTED_INTERVAL_KEYS,
    SPEED_SOURCE_KEY,
    ConfigPoint,
    TaskResult,
    aggregate,
    apply_speed_pass,
    resolve_speed_axis,
    shown_columns,
)
from pyramid_bert.report.paper_results import PAPER_TASK_NAMES
from pyramid_bert.report.plots import plot_overview, plot_task
from pyramid_bert.report.results import RESULT_TARGETS, flagged_lines, point_speed, results_csv, results_section
from pyramid_bert.report.tables import (
    FAILED_MARK,
    NO_TRIALS,
    OUT_OF_RANGE,
    TABLE_TARGETS,
    TableTarget,
    csv_table,
    markdown_table,
)
from pyramid_bert.spec import format_m
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
    #: The speed axis of every speedup table and plot ("sorted" or "padded").
    speed_axis: str = "padded"
    #: The results section (every method at 1.5X, 2X, 3X with intervals and paired tests), Markdown.
    results: str = ""

    def table(self, axis: str, target: float) -> str:
        return self.tables[TableTarget(axis, target).slug]


def build_report(
    store_path: str | Path,
    out_dir: str | Path,
    *,
    dense_anchor: bool = True,
    plots: bool = True,
    speed_axis: str | None = None,
    source: str | Path | None = None,
) -> Report:
    """Read every trial of the store at ``store_path`` and write the report into ``out_dir``; ``source`` is what the
    report names as its data (default: the store; a trials export the store was rebuilt from).

    ``speed_axis``: "sorted", "padded", or None (sorted when every pyramid trial measured it, else padded).
    """
    with open_existing(store_path) as store:
        records = apply_speed_pass(store.records(), store.speeds())
        sweep_meta = store.get_meta("sweep", {})
    axis = resolve_speed_axis(records, speed_axis)
    out_dir = mark_output_dir(out_dir, "report")  # a re-run of report (or reproduce) refreshes this folder
    results = list(aggregate(records, dense_anchor=dense_anchor, speed_axis=axis).values())
    report = Report(folder=out_dir, markdown_path=out_dir / "report.md", speed_axis=axis)
    report.results = results_section(results, axis)
    results_path = out_dir / "tables" / "results.csv"
    _write_text(results_path, results_csv(results))
    report.csv_paths.append(results_path)
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
            overview = out_dir / "plots" / f"{_slug(result.task)}_overview.png"
            report.plot_paths.append(plot_overview(result, overview, targets=RESULT_TARGETS, speed_axis=axis))
            for axis_name in ("speedup", "space"):
                report.plot_paths.append(
                    plot_task(result, out_dir / "plots" / f"{_slug(result.task)}_{axis_name}.png", axis=axis_name)
                )
    _write_text(report.markdown_path, _markdown(report, results, records, sweep_meta, Path(source or store_path), dense_anchor))
    return report


def _markdown(
    report: Report,
    results: list[TaskResult],
    records: list[TrialRecord],
    sweep_meta: dict,
    store_path: Path,
    dense_anchor: bool,
) -> str:
    lines = [
        *_header_lines(report, results, records, sweep_meta, store_path),
        *_how_to_read_lines(report, results, dense_anchor),
        *_results_lines(report, results),
        *_configuration_lines(results),
        *_failed_lines(records),
        *_plot_lines(report),
        "",
        "All trials, one row each: `tables/trials.csv`.",
    ]
    return "\n".join(lines) + "\n"


def _header_lines(
    report: Report, results: list[TaskResult], records: list[TrialRecord], sweep_meta: dict, store_path: Path
) -> list[str]:
    """Title, store, trials, tasks, models, seeds and the sweep settings."""
    tasks = [r.task for r in results]
    seeds = sorted({r.spec.seed for r in records})
    models = sorted({r.spec.model for r in records})
    lines = [
        "# Pyramid-BERT sweep report",
        "",
        f"- results: `{store_path}`; rebuild with `pyramid-bert report {store_path} --out {report.folder}`",
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
    return lines


def _how_to_read_lines(report: Report, results: list[TaskResult], dense_anchor: bool) -> list[str]:
    """What the cells, marks, speed axis and protocols mean."""
    tasks = [r.task for r in results]
    lines = [
        "",
        "## How to read",
        "",
        "Rows are tasks, columns methods, as in the paper's Tables 1-3: "
        + "; ".join(f"{c} = {COLUMN_TITLES[c]}" for c in shown_columns(results))
        + ". Cells are the task's metric on the **test** split x 100, mean ± half width of the 95% t interval "
        "over seeds.",
        "",
        "- Per method, every configuration (schedule, m; mean over seeds) is a point (measured speedup or "
        "attention-space reduction, metric). The Pareto frontier of those points is chosen on the **dev** "
        "split; the value at a target is the linear interpolation of the test metric between the two "
        "frontier points around it, per seed with the weights of the points' mean speedups; the cell is the mean "
        "and interval of those per-seed values. Configurations flagged as constant predictors are on no frontier."
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
        "that method failed on that task (see Failed trials): the cell is built from the others; `‡`: interpolated "
        "from the dense model at 1.0X (no measured configuration of that method below the target); `°`: interpolated "
        "between two configurations neither of which is within 15% of the target.",
        "- Speedup is measured (T(dense) / T(pyramid), same weights, inputs, batch, threads, one process, "
        "median of interleaved repeats), so it is noisy on a shared machine. Where a separate timing pass ran "
        "(newer stores), every configuration was timed there, with nothing training, against the dense model on the "
        "test examples' length-sorted batches (the pretrained model made into each configuration: speed does not "
        "depend on the weights), and each speedup carries the range of its paired per-repeat ratios; otherwise it "
        "was timed in one seed's trial while the other worker trained. Speed axis of this report: "
        f"**{report.speed_axis}** (sorted: both models on length-sorted, dynamically padded batches, as users batch "
        "a dense model; padded: both padded to N, the paper's protocol); the configurations table shows both.",
        "- Protocol (each trial records it): warm = the dense model fine-tuned once per seed, each pyramid "
        "configuration adapted from it; paper = each configuration fine-tuned from the pretrained model.",
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
    return lines


def _results_lines(report: Report, results: list[TaskResult]) -> list[str]:
    """The results at the targets, the constant predictors and the paper's table layout."""
    lines = ["", "## Results at 1.5X, 2X and 3X measured speedup", "", report.results, "",
              "CSV: `tables/results.csv`", "", "## Constant predictors", "", *flagged_lines(results), "",
              "## The paper's table layout", "",
              f"The same frontiers in the layout of the paper's Tables 1-3 (speed axis: {report.speed_axis})."]
    for target in TABLE_TARGETS:
        lines += ["", f"## {target.title}", "", report.tables[target.slug], "", f"CSV: `tables/{target.slug}.csv`"]
    return lines


def _configuration_lines(results: list[TaskResult]) -> list[str]:
    """Every configuration of every task, one row each."""
    lines = ["", "## Configurations", "",
              "Every configuration (mean over seeds; metric x 100); *frontier* lists the columns whose speedup "
              "frontier passes through it."]
    for result in results:
        lines += ["", f"### {result.task}", "",
                  "| method | configuration | protocol | measured speedup, sorted [interval] | measured speedup, padded "
                  "| predicted speedup | attention-space reduction (paper's formula) | attention-space reduction (exact) "
                  "| dev | test | majority share | seeds | frontier |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for point in result.points:
            lines.append(_configuration_row(result, point))
    return lines


def _failed_lines(records: list[TrialRecord]) -> list[str]:
    """The failed trials with their first error line."""
    failed = [r for r in records if not r.ok]
    lines = ["", "## Failed trials", ""]
    if failed:
        lines += ["| task | method | schedule | m | seed | error |", "|---|---|---|---|---|---|"]
        for record in failed:
            spec = record.spec
            error = (record.error or "").strip().splitlines()
            message = (error[0] if error else "unknown error").replace("|", "/")[:200]
            message = f"{record.status}: {message}" if record.retryable else message
            m = "" if spec.method != "coreset" else format_m(spec.m)
            lines.append(f"| {spec.task} | {spec.method} | {spec.schedule} | {m} | {spec.seed} | {message} |")
        lines += [
            "",
            "Re-run them with `--resume --retry-failed`; those marked retryable (lost to a dead worker, a lost "
            "Ray task or a run folder in use by another run) `--resume` alone runs again.",
        ]
    else:
        lines.append("None.")
    return lines


def _plot_lines(report: Report) -> list[str]:
    """The plots, as relative image links."""
    lines: list[str] = []
    if report.plot_paths:
        lines += ["", "## Plots (like the paper's Figures 8-9)", ""]
        for path in report.plot_paths:
            relative = path.relative_to(report.folder)
            lines += [f"![{relative.stem}]({relative.as_posix()})", ""]
    return lines


def _configuration_row(result: TaskResult, point: ConfigPoint) -> str:
    predicted = "" if point.predicted_speedup is None else f"{point.predicted_speedup:.2f}"
    sorted_point = ConfigPoint(point.label, point.method, point.m, speedup=point.sorted, axis="sorted",
                               speed_intervals=point.speed_intervals, speed_sources=point.speed_sources)  # fmt: skip
    sorted_speedup = point_speed(sorted_point) if point.sorted and point.method != "dense" else ""
    sorted_speedup = sorted_speedup or (f"{point.mean('sorted'):.2f}" if point.sorted else "")
    padded = f"{point.mean('padded'):.2f}" if point.padded else ""
    method = point.method if point.variant is None else f"{point.method} ({point.variant})"
    share = f"{max(point.majority_share.values()) * 100:.1f}%" if point.majority_share else ""
    flag = " **constant predictor**" if point.flagged else ""
    exact = f"{point.mean('space_exact') * 100:.0f}%" if point.space_exact else ""
    return (
        f"| {method} | {point.label} | {point.protocol} | {sorted_speedup} | {padded} | "
        f"{predicted} | {point.mean('space') * 100:.0f}% | {exact} | {point.mean('dev') * 100:.1f} | "
        f"{point.mean('test') * 100:.1f} | {share}{flag} | {len(point.seeds)} | "
        f"{', '.join(result.frontier_columns(point))} |"
    )


_TRIAL_COLUMNS = (
    "task", "model", "method", "variant", "schedule", "m", "position", "seed", "status", "dev_metric", "test_metric",
    "metric_name", *(speedup_column(p, s) for p in SPEEDUP_PREFIXES for s in SPREAD_STATS), *SORTED_INTERVAL_KEYS,
    SPEED_SOURCE_KEY, "prediction_majority_share", "label_majority_share", "protocol", "predicted_speedup",
    "predicted_speedup_padded", "predicted_speedup_sorted", "space_reduction", "space_reduction_exact",
    "train_seconds", "eval_seconds", "wall_seconds", "lengths", "pool_windows", "checkpoint", "host", "key", "error",
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
            "variant": spec.variant,
            "schedule": spec.schedule,
            "m": "" if spec.method != "coreset" else format_m(spec.m),
            "position": spec.position,
            "seed": spec.seed,
            "protocol": spec.protocol,
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
    """Through a uniquely named temporary sibling (two reports into one folder never share it) and a rename."""
    atomic_write_text(path, text)
