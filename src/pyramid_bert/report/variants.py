"""Named configurations compared one against another, over seeds (the selection-quality study's tables).

Unlike the frontier report (:mod:`pyramid_bert.report.aggregate`), nothing is interpolated: each row is one
configuration (a :class:`pyramid_bert.sweep.variants.Variant`, named by its trials' ``variant`` label, else by
method and schedule), with its test metric as mean and 95% interval over seeds, its measured speedups (timed in
one seed; speed does not depend on the weights) and two paired differences over the common seeds:

- against dense (the model each configuration was adapted from);
- against the best *baseline*: among the paper's baselines (no options), the one with the best mean dev
  metric (dev chooses, test reports).

Configurations named ``NAME@GROUP`` (e.g. ``Att@2X``, ``CS+@2X``, ``Att@3X``) are compared within their group:
one table per task and group, each with the dense rows, its own best baseline and its own Holm family; names without
``@`` form one group.

Models whose dev predictions are more than 95% one class are flagged (test predictions in stores recorded before
dev shares were) and are not chosen as the best baseline.
"""

from __future__ import annotations

import csv
import io
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pyramid_bert.report.aggregate import CONSTANT_SHARE, SPEED_KEYS, flag_share
from pyramid_bert.report.stats import MeanCI, PairedDifference, format_difference, holm, mean_ci, paired_difference
from pyramid_bert.sweep.store import TrialRecord

#: Methods of the paper's baselines; a configuration of one of them without options is a baseline.
BASELINE_METHODS = ("attention", "average_pool", "first_k", "input_first_k", "random")


@dataclass
class VariantRow:
    """One configuration on one task: per-seed metrics, measured speedups and its comparisons."""

    name: str
    method: str
    schedule: str
    options: dict
    dev: dict[int, float] = field(default_factory=dict)
    test: dict[int, float] = field(default_factory=dict)
    speed: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    majority_share: dict[int, float] = field(default_factory=dict)
    vs_dense: PairedDifference | None = None
    vs_best_baseline: PairedDifference | None = None

    @property
    def is_baseline(self) -> bool:
        return self.method in BASELINE_METHODS and not self.options

    @property
    def flagged(self) -> bool:
        return any(share > CONSTANT_SHARE for share in self.majority_share.values())

    def test_ci(self) -> MeanCI:
        return mean_ci(list(self.test.values()))

    def speedup(self, axis: str) -> float | None:
        values = self.speed.get(axis)
        return statistics.fmean(values) if values else None


@dataclass
class VariantTable:
    """All configurations of one task, dense first; ``best_baseline`` the baseline dev chose."""

    task: str
    metric_name: str | None
    rows: list[VariantRow]
    best_baseline: str | None
    group: str | None = None


def group_of(name: str) -> str | None:
    """The comparison group of a configuration named ``NAME@GROUP`` (``"CS+@2X"`` -> ``"2X"``); None without ``@``."""
    return name.rsplit("@", 1)[1] if "@" in name else None


def row_name(record: TrialRecord) -> str:
    spec = record.spec
    if spec.variant:
        return spec.variant
    return "dense" if spec.method == "dense" else f"{spec.method} {spec.schedule}"


def variant_tables(records: Iterable[TrialRecord]) -> list[VariantTable]:
    """Group successful trials by task and configuration and compute the comparisons."""
    by_task: dict[str, dict[str, VariantRow]] = defaultdict(dict)
    metric_names: dict[str, str] = {}
    for record in records:
        if not record.ok:
            continue
        spec, result = record.spec, record.result
        rows = by_task[spec.task]
        name = row_name(record)
        row = rows.get(name)
        if row is None:
            row = rows[name] = VariantRow(name, spec.method, spec.schedule, dict(spec.options or ()))
        row.dev[spec.seed], row.test[spec.seed] = float(result["dev_metric"]), float(result["test_metric"])
        for axis, key in SPEED_KEYS.items():
            value = 1.0 if spec.method == "dense" else result.get(key)
            if isinstance(value, (int, float)) and value == value:
                row.speed[axis].append(float(value))
        share, _ = flag_share(result)
        if share is not None:
            row.majority_share[spec.seed] = share
        metric_names.setdefault(spec.task, result.get("metric_name"))
    return [
        _compare(task, group_rows, metric_names.get(task), group)
        for task, rows in by_task.items()
        for group, group_rows in _groups(list(rows.values())).items()
    ]


def _groups(rows: list[VariantRow]) -> dict[str | None, list[VariantRow]]:
    """The rows of each comparison group (in order of first appearance), the dense rows in every group."""
    groups: dict[str | None, list[VariantRow]] = {}
    for row in rows:
        if row.method != "dense":
            groups.setdefault(group_of(row.name), [])
    dense = [row for row in rows if row.method == "dense"]
    for row in rows:
        if row.method != "dense":
            groups[group_of(row.name)].append(row)
    return {group: [*dense, *members] for group, members in groups.items()} or {None: dense}


def _compare(task: str, rows: list[VariantRow], metric_name: str | None, group: str | None = None) -> VariantTable:
    rows.sort(key=lambda row: row.method != "dense")  # dense first, then in planned order
    dense = next((row for row in rows if row.method == "dense"), None)
    baselines = [row for row in rows if row.is_baseline and not row.flagged]
    best = max(baselines, key=lambda row: statistics.fmean(row.dev.values()), default=None)
    for row in rows:
        if row.method == "dense":
            continue
        row.vs_dense = paired_difference(row.test, dense.test) if dense else None
        row.vs_best_baseline = paired_difference(row.test, best.test) if best and row is not best else None
    compared = [row for row in rows if row.method != "dense"]
    adjusted = iter(holm([diff for row in compared for diff in (row.vs_dense, row.vs_best_baseline)]))
    for row in compared:  # one family per table: every comparison it makes, Holm-corrected together
        row.vs_dense, row.vs_best_baseline = next(adjusted), next(adjusted)
    return VariantTable(task, metric_name, rows, best.name if best else None, group)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _diff(diff: PairedDifference | None) -> str:
    return format_difference(diff, scale=100.0)


def variants_markdown(tables: Sequence[VariantTable]) -> str:
    """One Markdown table per task (test metric x 100, mean [95% CI] over seeds; * = significant after Holm's
    correction over the table's comparisons, whose number is stated under it)."""
    parts = []
    for table in tables:
        parts.append(
            f"### {table.task}{'' if table.group is None else f', {table.group}'} ({table.metric_name or 'metric'} x 100, test; best baseline on dev: "
            f"{table.best_baseline or '-'})\n\n"
            "| configuration | seeds | test mean [95% CI] | dev mean | sorted speedup | padded speedup | "
            "vs dense | vs best baseline | flag |\n|---|---|---|---|---|---|---|---|---|"
        )
        for row in table.rows:
            ci = row.test_ci()
            interval = f"[{_pct(ci.low)}, {_pct(ci.high)}]" if ci.low is not None else "(1 seed)"
            sorted_speed, padded_speed = row.speedup("sorted"), row.speedup("padded")
            parts.append(
                f"| {row.name} | {ci.n} | {_pct(ci.mean)} {interval} | {_pct(statistics.fmean(row.dev.values()))} | "
                f"{'-' if sorted_speed is None else f'{sorted_speed:.2f}X'} | "
                f"{'-' if padded_speed is None else f'{padded_speed:.2f}X'} | {_diff(row.vs_dense)} | "
                f"{_diff(row.vs_best_baseline)} | {'one class' if row.flagged else ''} |"
            )
        family = max((d.family for row in table.rows for d in (row.vs_dense, row.vs_best_baseline)
                      if d is not None and d.p_adjusted is not None), default=0)  # fmt: skip
        parts += ["", f"\\* significant at 95% after Holm's correction over the table's {family} comparisons "
                      "(the intervals are the raw ones).", ""]  # fmt: skip
    return "\n".join(parts)


def variants_csv(tables: Sequence[VariantTable]) -> str:
    """Every row of every task, with per-seed values joined by ';'."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["task", "configuration", "method", "schedule", "options", "seeds", "test_mean", "test_low",
                     "test_high", "dev_mean", "sorted_speedup", "padded_speedup", "vs_dense", "vs_dense_low",
                     "vs_dense_high", "vs_best_baseline", "vs_best_low", "vs_best_high", "flagged", "test_per_seed"])  # fmt: skip
    for table in tables:
        for row in table.rows:
            ci = row.test_ci()
            diffs = []
            for diff in (row.vs_dense, row.vs_best_baseline):
                diffs += ["", "", ""] if diff is None else [diff.mean, diff.low, diff.high]
            writer.writerow([
                table.task, row.name, row.method, row.schedule, ";".join(f"{k}={v}" for k, v in row.options.items()),
                ci.n, ci.mean, ci.low, ci.high, statistics.fmean(row.dev.values()), row.speedup("sorted"),
                row.speedup("padded"), *diffs, row.flagged, ";".join(f"{s}:{v:.4f}" for s, v in sorted(row.test.items())),
            ])  # fmt: skip
    return buffer.getvalue()
