"""From trial records to the numbers of the paper's tables.

For each task and method column (1st-I, 1st, Rand, Pool, Att, CS-k-1, CS-opt, and the swept variants CS+ and
1st+merge when a store has them: trials whose ``variant`` label names the column):

1. configurations: trials that differ only by seed are one configuration; its point is the mean over
   seeds of the measured speedup (or the attention-space reduction) and of the metric. The speedup is
   the one of the chosen speed axis: ``sorted`` (against the dense model on length-sorted, dynamically
   padded batches, the realistic one) or ``padded`` (both padded to N, the paper's protocol). Where the store's
   separate timing pass timed a configuration (:mod:`pyramid_bert.sweep.speed_pass`), its sorted speedup and
   interval come from there (:func:`apply_speed_pass`); otherwise from the trials (older stores: timed in one seed,
   while other trials trained);
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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from pyramid_bert.errors import ConfigError
from pyramid_bert.measure.evaluation import DEV_SHARE_COLUMN, SPEEDUP_PREFIXES, speedup_column
from pyramid_bert.report.frontier import locate, pareto_frontier
from pyramid_bert.report.stats import MeanCI, mean_ci
from pyramid_bert.sweep.store import SpeedRecord, TrialRecord

#: Method columns of the paper's tables (dense last).
METHOD_COLUMNS = ("1st-I", "1st", "Rand", "Pool", "Att", "CS-k-1", "CS-opt", "dense")
#: Columns of methods with options swept like methods (the trials' ``variant`` label names the column); shown
#: only where a store has them.
VARIANT_COLUMNS = ("CS+", "1st+merge")
#: Every column, dense last.
ALL_COLUMNS = (*METHOD_COLUMNS[:-1], *VARIANT_COLUMNS, "dense")
#: A cell is "measured near" its target when one of the two configurations it lies between is this close (relative).
NEAR_TOLERANCE = 0.15
COLUMN_TITLES = {
    "1st-I": "Input-first-k-select",
    "1st": "First-k-select",
    "Rand": "Random-select",
    "Pool": "Average-pool",
    "Att": "Attention-select",
    "CS-k-1": "Coreset-select-k-1",
    "CS-opt": "Coreset-select-opt",
    "CS+": "Coreset-select m = 1 with cosine distance, duplicity attention and merging",
    "1st+merge": "First-k-select with merging",
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
    "CS+": "coreset",
    "1st+merge": "first_k",
    "dense": "dense",
}
#: Axes a target can be on: measured speedup, or attention-space reduction.
AXES = ("speedup", "space")


#: Speed axes: which measured speedup a report puts on its x-axis (see the module docstring).
SPEED_AXES = ("sorted", "padded")
#: Result keys of the median speedup on each speed axis.
SPEED_KEYS = {"padded": speedup_column("paper"), "sorted": speedup_column("sorted")}
#: Result keys the timing pass's interval of the sorted speedup is given under (:func:`apply_speed_pass`), and the key
#: saying the sorted speedup came from the pass.
SORTED_INTERVAL_KEYS = ("sorted_speedup_pass_low", "sorted_speedup_pass_high")
SPEED_SOURCE_KEY = "sorted_speedup_source"
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
    #: The trials' variant label (a column of :data:`VARIANT_COLUMNS`, or another name), None for a plain method.
    variant: str | None = None
    #: Per speed axis: the interval of the measured speedup (the timing pass's range of paired ratios; older
    #: stores: the inter-quartile range of the one seed's repeats) and where it was measured ("pass" or "trial").
    speed_intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    speed_sources: dict[str, str] = field(default_factory=dict)
    #: The axis ``speedup`` holds.
    axis: str = "padded"

    @property
    def speed_interval(self) -> tuple[float, float] | None:
        """The interval of the speedup on the point's axis (None for dense, or when none was recorded)."""
        return self.speed_intervals.get(self.axis)

    @property
    def speed_source(self) -> str | None:
        return self.speed_sources.get(self.axis)

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
    #: The two configurations the cell lies between (the dense anchor included), left then right.
    ends: tuple[ConfigPoint, ConfigPoint] | None = field(default=None, compare=False)
    #: The target the cell was read at (None for dense).
    target: float | None = None

    @property
    def ci(self) -> MeanCI:
        return mean_ci(list(self.test.values()))

    @property
    def near(self) -> bool:
        """Whether one of the two measured pyramid configurations the cell lies between is within
        :data:`NEAR_TOLERANCE` of the target (False for dense and for cells outside the measured range)."""
        if self.ends is None or self.target is None:
            return False
        return any(end.method != "dense" and abs(end.mean("speedup") - self.target) <= NEAR_TOLERANCE * self.target
                   for end in self.ends)  # fmt: skip


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
            ends=ends if axis == "speedup" else None,
            target=target if axis == "speedup" else None,
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
    pyramid = [r for r in records if r.ok and r.spec.method != "dense"
               and any(_number(r.result.get(key)) for key in SPEED_KEYS.values())]  # fmt: skip
    missing = {axis: sum(1 for r in pyramid if not _number(r.result.get(key))) for axis, key in SPEED_KEYS.items()}
    if speed_axis is None:
        return "sorted" if pyramid and not missing["sorted"] else "padded"
    if speed_axis not in SPEED_AXES:
        raise ConfigError(f"--speed-axis must be one of {', '.join(SPEED_AXES)}; got {speed_axis!r}")
    if pyramid and missing[speed_axis]:
        other = "padded" if speed_axis == "sorted" else "sorted"
        why = ("measured before it existed" if speed_axis == "sorted" else
               "the separate timing pass times length-sorted batches only")  # fmt: skip
        raise ConfigError(
            f"--speed-axis {speed_axis}: {missing[speed_axis]} trial(s) of this store have no {speed_axis}-batch "
            f"speedup ({why}); use --speed-axis {other}"
        )
    return speed_axis


def apply_speed_pass(records: Iterable[TrialRecord], speeds: Mapping[str, SpeedRecord]) -> list[TrialRecord]:
    """``records`` with the separate timing pass's measurement of their configuration (by config key) as their
    sorted speedup: median, and the range of the paired ratios as its interval; the padded speedup a trial measured
    itself is kept. Trials of configurations the pass did not time are returned as they are."""
    records = list(records)
    if not speeds:
        return records
    updated = []
    for record in records:
        timed = speeds.get(record.spec.config_key) if record.ok else None
        if timed is None:
            updated.append(record)
            continue
        speedup = timed.result["speedup"]
        result = {**record.result, SPEED_KEYS["sorted"]: speedup["median"], SORTED_INTERVAL_KEYS[0]: speedup["low"],
                  SORTED_INTERVAL_KEYS[1]: speedup["high"], SPEED_SOURCE_KEY: "pass"}  # fmt: skip
        updated.append(replace(record, result=result))
    return updated


def aggregate(
    records: Iterable[TrialRecord], *, dense_anchor: bool = True, speed_axis: str | None = "padded",
    speeds: Mapping[str, SpeedRecord] | None = None,
) -> dict[str, TaskResult]:
    """Group records by task and method column (see the module docstring); tasks in first-seen order.

    ``speed_axis``: "padded", "sorted", or None (sorted when every pyramid trial measured it); ``speeds``: the
    store's timing pass (:meth:`pyramid_bert.sweep.store.ResultsStore.speeds`), which gives the sorted speedups.
    """
    records = apply_speed_pass(records, speeds or {})
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
    for column in ALL_COLUMNS[:-1]:
        method = _METHOD_OF_COLUMN[column]
        owned = column if column in VARIANT_COLUMNS else None  # a variant column's points, or the method's others
        points = [p for p in configs.values() if p.method == method and _own_column(p.variant) == owned]
        failures = [r for r in failed if r.spec.method == method and _own_column(r.spec.variant) == owned]
        if column == "CS-k-1":
            points = [p for p in points if p.m is None]
            failures = [r for r in failures if r.spec.m is None]
        elif column == "CS-opt":
            points = _best_m_per_schedule([r for r in ok if _own_column(r.spec.variant) is None], configs)
        methods[column] = MethodResult(column=column, points=points, anchor=anchor, failed=len(failures))
    return TaskResult(
        task=task,
        metric_name=metric_names[0] if metric_names else None,
        dense=dense,
        methods=methods,
        dense_failed=sum(1 for r in failed if r.spec.method == "dense"),
        points=list(configs.values()),
    )


def _own_column(variant: str | None) -> str | None:
    """The variant column a trial's ``variant`` label names (None: its method's column)."""
    return variant if variant in VARIANT_COLUMNS else None


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
            point = points[spec.config_key] = ConfigPoint(label=label, method=spec.method, m=m, protocol=spec.protocol,
                                                          variant=spec.variant)  # fmt: skip
            point.predicted_speedup = result.get("predicted_speedup")
        seed, dense = spec.seed, spec.method == "dense"
        point.dev[seed] = float(result["dev_metric"])
        point.test[seed] = float(result["test_metric"])
        for name, key in SPEED_KEYS.items():
            if dense or _number(result.get(key)):
                getattr(point, name)[seed] = 1.0 if dense else float(result[key])
        if not dense:
            _speed_intervals(point, result)
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
        point.axis = axis
    return points


def _speed_intervals(point: ConfigPoint, result: dict) -> None:
    """The speedup intervals of a trial's result: the timing pass's range (sorted), else the trial's own inter-quartile
    range (sorted and padded; the seed that timed itself)."""
    for axis, prefix in SPEEDUP_PREFIXES.items():
        name = "sorted" if axis == "sorted" else "padded"
        low_key, high_key = (SORTED_INTERVAL_KEYS if name == "sorted" and result.get(SPEED_SOURCE_KEY) == "pass"
                             else (f"{prefix}_q25", f"{prefix}_q75"))  # fmt: skip
        if _number(result.get(low_key)) and _number(result.get(high_key)):
            point.speed_intervals[name] = (float(result[low_key]), float(result[high_key]))
            point.speed_sources[name] = "pass" if low_key in SORTED_INTERVAL_KEYS else "trial"


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


def shown_columns(results: Iterable[TaskResult]) -> tuple[str, ...]:
    """The columns a report shows: the paper's, and each variant column some task has configurations of."""
    results = list(results)
    return tuple(c for c in ALL_COLUMNS if c not in VARIANT_COLUMNS or any(r.has_points(c) for r in results))
