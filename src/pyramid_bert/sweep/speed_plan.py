"""The separate timing pass, as a plan: which configurations are timed together, and how schedules are chosen on
the measured speed axis (no torch here; the timing itself is :mod:`pyramid_bert.sweep.speed_timer`).

A sweep with a :class:`SpeedPass` times its configurations apart from training, when nothing trains: one process,
one thread, every configuration of a *group* (one method column: "coreset", "attention", "CS+", ...) in one
interleaved timing against the dense model (>= 5 repeats). Speed depends on the architecture, not on the weights,
so one model per configuration is timed for every seed.

With ``targets`` the pass also chooses the schedules: each group's candidates (every schedule of the grid) get a
FLOPs-model prediction on the timed, length-sorted batches; per target the candidate predicted nearest (scaled by the
group's measured / predicted ratio so far) is timed, in rounds, until a timed candidate lies within ``tolerance``
of each target or ``max_rounds`` is reached; then per target the *measured* candidate nearest to it is trained
(each at most once). The choice is therefore made on the measurement the report shows.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

from pyramid_bert.errors import ConfigError
from pyramid_bert.sweep.spec import TrialSpec


@dataclass(frozen=True)
class SpeedPass:
    """How a sweep times its configurations apart from training (see the module docstring).

    ``repeats`` interleaved rounds after ``warmup`` untimed ones; ``examples``: a seeded sample of the test subset
    (None: all of it), batched as the report's speed axis (length-sorted, padded per batch, the trials' inference
    batch size); ``targets``: measured speedups to choose each group's schedules near (None: time the planned
    configurations as they are); ``tolerance``: relative distance to a target that ends its search;
    ``max_rounds``: timing rounds per group at most.
    """

    repeats: int = 6
    warmup: int = 1
    examples: int | None = 256
    targets: tuple[float, ...] | None = None
    tolerance: float = 0.08
    max_rounds: int = 3

    def __post_init__(self) -> None:
        if self.repeats < 5:
            raise ConfigError(f"speed pass: repeats must be >= 5, got {self.repeats}")
        if self.targets is not None and (not self.targets or any(t <= 1.0 for t in self.targets)):
            raise ConfigError(f"speed pass: targets must be speedups above 1, got {self.targets}")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["targets"] = list(self.targets) if self.targets is not None else None
        return data


@dataclass
class SpeedGroup:
    """Configurations timed together against one dense run: one method column's candidate schedules, each with
    its trials (every seed and, for coreset, every m; the configurations of a schedule are timed together)."""

    name: str
    schedules: list[list[TrialSpec]] = field(default_factory=list)

    def configurations(self, index: int) -> list[TrialSpec]:
        """One trial per configuration of schedule ``index`` (its lowest seed), in plan order."""
        chosen: dict[str, TrialSpec] = {}
        for trial in sorted(self.schedules[index], key=lambda t: t.seed):
            chosen.setdefault(trial.config_key, trial)
        return list(chosen.values())


def group_name(trial: TrialSpec) -> str:
    """The group a trial is timed in: its variant's name (e.g. "CS+"), else its method."""
    return trial.variant or trial.method


def speed_groups(trials: Sequence[TrialSpec]) -> tuple[list[TrialSpec], list[SpeedGroup]]:
    """Dense trials (not timed: 1.0X by definition), and every other trial grouped by :func:`group_name` and,
    within a group, by schedule (trials that differ only by seed or m share one), in plan order."""
    dense: list[TrialSpec] = []
    groups: dict[str, dict[str, list[TrialSpec]]] = {}
    for trial in trials:
        if trial.method == "dense":
            dense.append(trial)
            continue
        groups.setdefault(group_name(trial), {}).setdefault(trial.schedule_key, []).append(trial)
    return dense, [SpeedGroup(name, list(schedules.values())) for name, schedules in groups.items()]


def measured_speedup(group: SpeedGroup, index: int, speeds: Mapping[str, float]) -> float | None:
    """Schedule ``index``'s measured speedup: the mean over its configurations (None until each is timed)."""
    values = [speeds.get(trial.config_key) for trial in group.configurations(index)]
    return None if any(v is None for v in values) else statistics.fmean(values)


def next_probes(
    predicted: Sequence[float], measured: Mapping[int, float], targets: Sequence[float], tolerance: float
) -> list[int]:
    """The candidate schedules to time next: per target without a measured candidate within ``tolerance`` (each
    measured candidate serves one target), the untimed candidate whose prediction, times the median measured /
    predicted ratio so far (1 before any timing), is nearest to it. Indices into ``predicted``, in target order."""
    ratios = [measured[i] / predicted[i] for i in measured if predicted[i] > 0]
    scale = statistics.median(ratios) if ratios else 1.0
    free = dict(measured)
    probes: list[int] = []
    for target in targets:
        near = [i for i, value in free.items() if abs(value - target) <= tolerance * target]
        if near:
            free.pop(min(near, key=lambda i: abs(free[i] - target)))
            continue
        untimed = [i for i in range(len(predicted)) if i not in measured and i not in probes]
        if untimed:
            probes.append(min(untimed, key=lambda i: (abs(predicted[i] * scale - target), i)))
    return probes


def choose_schedules(measured: Mapping[int, float], targets: Sequence[float]) -> list[int]:
    """Per target, the measured candidate nearest to it (each candidate at most once, targets in the order given);
    returned in increasing measured speedup."""
    free, chosen = dict(measured), []
    for target in targets:
        if not free:
            break
        best = min(free, key=lambda i: (abs(free[i] - target), i))
        chosen.append(best)
        free.pop(best)
    return sorted(chosen, key=lambda i: measured[i])


def provisional_choice(group: SpeedGroup, predicted: Sequence[float], targets: Sequence[float]) -> list[TrialSpec]:
    """The trials the choice would train if every prediction were measured as it is: for time estimates before
    the pass has run."""
    chosen = choose_schedules(dict(enumerate(predicted)), targets)
    return [trial for index in chosen for trial in group.schedules[index]]
