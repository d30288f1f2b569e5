"""From trial records to the numbers of the paper's tables.

For each task and method column (1st-I, 1st, Rand, Pool, Att, CS-k-1, CS-opt):

1. configurations: trials that differ only by seed are one configuration; its point is the mean over
   seeds of the measured speedup (or the attention-space reduction) and of the metric. The speedup is
   the one of the chosen speed axis: ``sorted`` (against the dense model on length-sorted, dynamically
   padded batches, the realistic one) or ``padded`` (both padded to N, the paper's protocol);
   a configuration whose **dev** predictions are more than 95% one class in any seed is *flagged* (a
   constant predictor) and kept off every frontier and every dev-based choice (stores written before dev shares
   were recorded fall back to the test predictions, and the report says so);
2. CS-opt: per schedule, the coreset m with the best mean *dev* metric;
3. the Pareto frontier of (speedup, mean dev metric), with the dense model at 1.0X (0% reduction) as an
   anchor: no selection is the dense model, so every method passes through it;
4. the metric at a target: linear interpolation between the two frontier points around it, never
   extrapolated: per seed, the seed's test (and dev) metric of those two points with the weights of
   their mean speedups; the cell is the mean and 95% t interval of those per-seed values (see
   :mod:`pyramid_bert.report.stats`), and says when one of its two points is the dense anchor at 1.0X.

Choices (frontier points, m) are made on the dev split, values reported on the test split.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pyramid_bert.errors import ConfigError
from pyramid_bert.measure.evaluation import DEV_SHARE_COLUMN, speedup_column
from pyramid_bert.report.frontier import locate, pareto_frontier
from pyramid_bert.report.stats import MeanCI, mean_ci
from pyramid_bert.sweep.store import TrialRecord

#: Method columns of the paper's tables (dense last).
METHOD_COLUMNS = ("1st-I", "1st", "Rand", "Pool", "Att", "CS-k-1", "CS-opt", "dense")
COLUMN_TITLES = {
    "1st-I": "Input-first-k-select",
    "1st": "First-k-select",
    "Rand": "Random-select",
    "Pool": "Average-pool",
    "Att": "Attention-select",
    "CS-k-1": "Coreset-select-k-1",
    "CS-opt": "Coreset-select-opt",
    "dense": "dense (no selection)",
}
_METHOD_OF_COLUMN = {
    "1st-I": "input_first_k",
    "1st": "first_k",
    "Rand": "random",
    "Pool": "average_pool",
    "Att": "attention",
    "CS-k-1": "coreset",
    "CS-opt": "coreset",
    "dense": "dense",
}
#: Axes a target can be on: measured speedup, or attention-space reduction.
AXES = ("speedup", "space")


#: Speed axes: which measured speedup a report puts on its x-axis (see the module docstring).
SPEED_AXES = ("sorted", "padded")
#: Result keys of the median speedup on each speed axis.
SPEED_KEYS = {"padded": speedup_column("paper"), "sorted": speedup_column("sorted")}
#: A configuration whose dev predictions are more than this share one class is a constant predictor.
CONSTANT_SHARE = 0.95


@dataclass
class ConfigPoint:
    """One configuration (all its seeds): per-seed values, their means, and a label.

    ``speedup`` holds the chosen speed axis; ``padded`` / ``sorted`` both axes (sorted may be empty);
    ``majority_share`` the share of the most common predicted class on dev (test in older stores: ``flag_split``
    says which), per seed (classification).
    """

    label: str
    method: str
    m: str | None
    dev: dict[int, float] = field(default_factory=dict)
    test: dict[int, float] = field(default_factory=dict)
    speedup: dict[int, float] = field(default_factory=dict)
    space: dict[int, float] = field(default_factory=dict)  # the paper's formula
    space_exact: dict[int, float] = field(default_factory=dict)  # over the tokens each layer attends to
    predicted_speedup: float | None = None
    padded: dict[int, float] = field(default_factory=dict)
    sorted: dict[int, float] = field(default_factory=dict)
    majority_share: dict[int, float] = field(default_factory=dict)
    flag_split: str = "dev"
    label_majority_share: float | None = None
    protocol: str = "paper"

    def mean(self, axis: str) -> float:
        values = {"dev": self.dev, "test": self.test, "speedup": self.speedup, "space": self.space,
                  "space_exact": self.space_exact, "padded": self.padded, "sorted": self.sorted}[axis]  # fmt: skip
        return statistics.fmean(values.values()) if values else math.nan

    @property
    def flagged(self) -> bool:
        """True when in some seed more than :data:`CONSTANT_SHARE` of the (dev) predictions are one class."""
        return any(share > CONSTANT_SHARE for share in self.majority_share.values())

    @property
    def seeds(self) -> set[int]:
        return set(self.test)


@dataclass(frozen=True)
class Cell:
    """One table cell: mean and standard deviation over seeds (None for one seed), seed count.

    ``test`` / ``dev``: the per-seed values behind it (for intervals and paired differences);
    ``support``: the measured x of the two points it lies between; ``from_dense``: one of them is the dense
    anchor at 1.0X (no measured pyramid configuration on that side of the target).
    """

    mean: float
    std: float | None
    seeds: int
    test: dict[int, float] = field(default_factory=dict, compare=False)
    dev: dict[int, float] = field(default_factory=dict, compare=False)
    support: tuple[float, float] | None = None
    from_dense: bool = False

    @property
    def ci(self) -> MeanCI:
        return mean_ci(list(self.test.values()))


@dataclass
class MethodResult:
    """A method column on one task: its points, frontier per axis, and failures."""

    column: str
    points: list[ConfigPoint]
    anchor: ConfigPoint | None
    failed: int = 0

    def frontier(self, axis: str) -> list[ConfigPoint]:
        """Frontier points (anchor included, flagged points left out) in increasing ``axis`` value, chosen
        on the dev metric."""
        candidates = [p for p in self.points if not p.flagged] + ([self.anchor] if self.anchor is not None else [])
        if not candidates:
            return []
        xs = [point.mean(axis) for point in candidates]
        ys = [point.mean("dev") for point in candidates]
        return [candidates[i] for i in pareto_frontier(xs, ys)]

    def at(self, axis: str, target: float) -> Cell | None:
        """The test metric at ``target`` on ``axis``; None outside the measured range or with no points."""
        if not self.points:
            return None
        frontier = self.frontier(axis)
        where = locate([point.mean(axis) for point in frontier], target)
        if where is None:
            return None
        ends = (frontier[where.left], frontier[where.right])
        seeds = sorted(ends[0].seeds & ends[1].seeds)
        test = {seed: where.apply([point.test.get(seed, float("nan")) for point in frontier]) for seed in seeds}
        dev = {seed: where.apply([point.dev.get(seed, float("nan")) for point in frontier]) for seed in seeds}
        values = list(test.values())
        return Cell(
            mean=statistics.fmean(values) if values else where.apply([point.mean("test") for point in frontier]),
            std=statistics.stdev(values) if len(values) >= 2 else None,
            seeds=len(values),
            test=test,
            dev=dev,
            support=(ends[0].mean(axis), ends[1].mean(axis)),
            from_dense=any(end is self.anchor for end in ends) and self.anchor is not None,
        )


@dataclass
class TaskResult:
    """Everything the report shows for one task."""

    task: str
    metric_name: str | None
    dense: ConfigPoint | None
    methods: dict[str, MethodResult]
    dense_failed: int = 0
    #: Every configuration of the task (all methods, all m), in first-seen order.
    points: list[ConfigPoint] = field(default_factory=list)

    def frontier_columns(self, point: ConfigPoint, axis: str = "speedup") -> list[str]:
        """The method columns whose frontier on ``axis`` passes through ``point`` (dense: as the anchor)."""
        columns = []
        for column, method in self.methods.items():
            wanted = method.anchor if point.method == "dense" else point
            if method.points and wanted is not None and any(p is wanted for p in method.frontier(axis)):
                columns.append(column)
        return columns

    def cell(self, column: str, axis: str, target: float) -> Cell | None:
        if column == "dense":
            if self.dense is None:
                return None
            values = list(self.dense.test.values())
            return Cell(statistics.fmean(values), statistics.stdev(values) if len(values) >= 2 else None, len(values),
                        test=dict(self.dense.test), dev=dict(self.dense.dev))  # fmt: skip
        return self.methods[column].at(axis, target)

    def has_points(self, column: str) -> bool:
        """Whether the column has at least one successful configuration on this task."""
        return self.dense is not None if column == "dense" else bool(self.methods[column].points)

    def failed(self, column: str) -> int:
        return self.dense_failed if column == "dense" else self.methods[column].failed


def resolve_speed_axis(records: Sequence[TrialRecord], speed_axis: str | None) -> str:
    """The speed axis to use: ``speed_axis``, or (None) sorted when every measured pyramid trial has it."""
    pyramid = [r for r in records if r.ok and r.spec.method != "dense" and _has_numbers(r, "padded")]
    has_sorted = bool(pyramid) and all(_number(r.result.get(SPEED_KEYS["sorted"])) for r in pyramid)
    if speed_axis is None:
        return "sorted" if has_sorted else "padded"
    if speed_axis not in SPEED_AXES:
        raise ConfigError(f"--speed-axis must be one of {', '.join(SPEED_AXES)}; got {speed_axis!r}")
    if speed_axis == "sorted" and pyramid and not has_sorted:
        missing = sum(1 for r in pyramid if not _number(r.result.get(SPEED_KEYS["sorted"])))
        raise ConfigError(
            f"--speed-axis sorted: {missing} trial(s) of this store have no sorted-batch speedup (measured before it "
            "existed); use --speed-axis padded"
        )
    return speed_axis


def aggregate(
    records: Iterable[TrialRecord], *, dense_anchor: bool = True, speed_axis: str | None = "padded"
) -> dict[str, TaskResult]:
    """Group records by task and method column (see the module docstring); tasks in first-seen order.

    ``speed_axis``: "padded", "sorted", or None (sorted when every pyramid trial measured it).
    """
    records = list(records)
    axis = resolve_speed_axis(records, speed_axis)
    by_task: dict[str, list[TrialRecord]] = defaultdict(list)
    for record in records:
        by_task[record.spec.task].append(record)
    return {task: _task_result(task, rows, dense_anchor=dense_anchor, axis=axis) for task, rows in by_task.items()}


def _task_result(task: str, records: Sequence[TrialRecord], *, dense_anchor: bool, axis: str) -> TaskResult:
    timed = {r.spec.config_key for r in records if r.ok and _has_numbers(r, axis)}  # speed measured in some seed
    usable = [r.ok and _has_numbers(r, None) and r.spec.config_key in timed for r in records]
    ok = [r for r, use in zip(records, usable, strict=True) if use]
    failed = [r for r, use in zip(records, usable, strict=True) if not use]
    configs = _config_points(ok, axis)
    dense_points = [p for p in configs.values() if p.method == "dense"]
    dense = dense_points[0] if dense_points else None
    anchor = _dense_anchor(dense) if dense_anchor and dense is not None else None
    metric_names = [r.result.get("metric_name") for r in ok if r.result.get("metric_name")]

    methods: dict[str, MethodResult] = {}
    for column in METHOD_COLUMNS[:-1]:
        method = _METHOD_OF_COLUMN[column]
        points = [p for p in configs.values() if p.method == method]
        failures = [r for r in failed if r.spec.method == method]
        if column == "CS-k-1":
            points = [p for p in points if p.m is None]
            failures = [r for r in failures if r.spec.m is None]
        elif column == "CS-opt":
            points = _best_m_per_schedule(ok, configs)
        methods[column] = MethodResult(column=column, points=points, anchor=anchor, failed=len(failures))
    return TaskResult(
        task=task,
        metric_name=metric_names[0] if metric_names else None,
        dense=dense,
        methods=methods,
        dense_failed=sum(1 for r in failed if r.spec.method == "dense"),
        points=list(configs.values()),
    )


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _has_numbers(record: TrialRecord, axis: str | None = "padded") -> bool:
    """Whether ``record`` has its dev and test metrics and (unless ``axis`` is None) its speedup on ``axis``."""
    result = record.result
    return all(_number(result.get(name)) for name in ("dev_metric", "test_metric")) and (
        axis is None or record.spec.method == "dense" or _number(result.get(SPEED_KEYS[axis]))
    )


def _config_points(records: Sequence[TrialRecord], axis: str = "padded") -> dict[str, ConfigPoint]:
    points: dict[str, ConfigPoint] = {}
    for record in records:
        spec, result = record.spec, record.result
        point = points.get(spec.config_key)
        if point is None:
            m = None if spec.m is None else f"{spec.m:g}"
            label = spec.schedule + (f" m={m or 'k-1'}" if spec.method == "coreset" else "")
            point = points[spec.config_key] = ConfigPoint(label=label, method=spec.method, m=m, protocol=spec.protocol)
            point.predicted_speedup = result.get("predicted_speedup")
        seed, dense = spec.seed, spec.method == "dense"
        point.dev[seed] = float(result["dev_metric"])
        point.test[seed] = float(result["test_metric"])
        for name, key in SPEED_KEYS.items():
            if dense or _number(result.get(key)):
                getattr(point, name)[seed] = 1.0 if dense else float(result[key])
        point.space[seed] = float(result.get("space_reduction") or 0.0)
        share, split = flag_share(result)
        if share is not None:
            point.majority_share[seed] = share
            point.flag_split = "test" if split == "test" else point.flag_split
        if _number(result.get("label_majority_share")):
            point.label_majority_share = float(result["label_majority_share"])
        if result.get("space_reduction_exact") is not None:  # absent in stores written before it existed
            point.space_exact[seed] = float(result["space_reduction_exact"])
    for point in points.values():
        _share_measured_speed(point)
        point.speedup = dict(point.sorted if axis == "sorted" else point.padded)
    return points


def _share_measured_speed(point: ConfigPoint) -> None:
    """Sweeps time a configuration in one seed only (speed does not depend on the weights): give every other
    seed of ``point`` the mean of its measured speedups."""
    for name in SPEED_KEYS:
        measured = getattr(point, name)
        if measured:
            mean = statistics.fmean(measured.values())
            for seed in point.dev:
                measured.setdefault(seed, mean)


def _best_m_per_schedule(records: Sequence[TrialRecord], configs: dict[str, ConfigPoint]) -> list[ConfigPoint]:
    """Coreset-select-opt: per schedule, the m whose mean dev metric is best (first listed on ties), among the
    m that are not constant predictors when there are any."""
    by_schedule: dict[str, list[ConfigPoint]] = defaultdict(list)
    seen: set[str] = set()
    for record in records:
        spec = record.spec
        if spec.method != "coreset" or spec.config_key in seen:
            continue
        seen.add(spec.config_key)
        by_schedule[spec.schedule_key].append(configs[spec.config_key])
    return [max([p for p in points if not p.flagged] or points, key=lambda p: p.mean("dev"))
            for points in by_schedule.values()]  # fmt: skip


def _dense_anchor(dense: ConfigPoint) -> ConfigPoint:
    return ConfigPoint(
        label="dense",
        method="dense",
        m=None,
        dev=dict(dense.dev),
        test=dict(dense.test),
        speedup={seed: 1.0 for seed in dense.test},
        space={seed: 0.0 for seed in dense.test},
        predicted_speedup=1.0,
        padded={seed: 1.0 for seed in dense.test},
        sorted={seed: 1.0 for seed in dense.test},
        protocol=dense.protocol,
    )


def flag_share(result: dict) -> tuple[float | None, str]:
    """The majority-class share that flags a constant predictor, and its split: the dev predictions', or the test
    predictions' for trials recorded before dev shares were (``(None, "dev")`` for regression)."""
    if _number(result.get(DEV_SHARE_COLUMN)):
        return float(result[DEV_SHARE_COLUMN]), "dev"
    if _number(result.get("prediction_majority_share")):
        return float(result["prediction_majority_share"]), "test"
    return None, "dev"
