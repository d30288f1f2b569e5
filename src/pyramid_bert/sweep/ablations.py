"""The paper's ablations as sweep plans that share one store and one dense model per seed.

Every ablation uses the warm protocol of the ``default`` preset: per seed one dense trial (the same spec, so
the same key, as ``reproduce``'s: 4000 training examples, 2 epochs), and pyramid trials adapted from it
(20 steps). Trials with the same spec are the same trial, so ablations that share a configuration (e.g.
Coreset m = 1, middle, adapted) run it once. Each plan returns ``(variant, schedule, trial)`` rows; the
variant is what the ablation compares.

- ``m`` (Table 5): Coreset-select with m in {1, ceil(0.5 k), k-1} on the paper's four Table 5 schedules
  ((prune_upto, p) = (1, 0.15), (2, 0.2), (3, 0.3), (4, 0.4); for minilm-l6 at N = 64: 5.3X to 1.8X predicted);
- ``only-infer`` (Table 6): the four schedules of ``default`` (1.4X to 4.4X predicted), m = 1, selection at inference only on the dense model
  (a trial with ``epochs = 0``: no adaptation, see :mod:`pyramid_bert.sweep.ablation_trial`) against
  selection at adaptation and inference;
- ``position`` (Table 7): m = 1, selection after the attention sublayer (``middle``) or after the FFN (``end``);
- ``schedules`` (Figure 6): ``configs`` Eq. 5 schedules against 3 x ``configs`` random non-increasing ones
  (:mod:`pyramid_bert.analysis.random_schedules`), m = 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from pyramid_bert.analysis.random_schedules import eq5_schedules, random_schedules
from pyramid_bert.errors import ConfigError
from pyramid_bert.sweep.plan import (
    ModelShape,
    Schedule,
    TrainingBudget,
    method_schedules,
    nearest_schedules,
    plan_trials,
)
from pyramid_bert.sweep.presets import DEFAULT
from pyramid_bert.sweep.spec import TrialSpec, with_data

ABLATIONS = ("m", "only-infer", "position", "schedules")
#: ``epochs`` of a trial that applies selection at inference only (no adaptation).
ONLY_INFER_EPOCHS = 0.0
#: m values of Table 5: 1, ceil(0.5 k), k - 1.
TABLE5_MS: tuple[int | float | None, ...] = (1, 0.5, None)
#: The four (prune_upto, p) schedules of the paper's Table 5.
TABLE5_GRID: tuple[tuple[int, float], ...] = ((1, 0.15), (2, 0.2), (3, 0.3), (4, 0.4))
#: Random families of Figure 6.
RANDOM_FAMILIES = 3


@dataclass(frozen=True)
class AblationSettings:
    """What every ablation shares: task and N, base model and its shape, seeds, the two budgets, device."""

    task: str
    n: int
    model: str
    shape: ModelShape
    seeds: tuple[int, ...] = (0, 1, 2)
    budget: TrainingBudget = DEFAULT.budget
    adapt_budget: TrainingBudget = DEFAULT.adapt_budget or DEFAULT.budget
    device: str = "cpu"
    glue_dir: str | None = None
    #: Schedules as in ``default``: targets of predicted speedup and the Eq. 5 grid.
    speedup_targets: tuple[float, ...] = DEFAULT.speedup_targets or (1.38, 1.9, 2.9, 4.4)
    grid: tuple[tuple[int, float], ...] | None = DEFAULT.grid
    #: The user's data files instead of the named ``task`` (see :attr:`TrialSpec.data`), or None.
    data: tuple[tuple[str, Any], ...] | None = None


@dataclass(frozen=True)
class PlannedTrial:
    """One row of an ablation: the variant compared, the schedule label and the trial."""

    variant: str
    schedule: str
    trial: TrialSpec


def dense_trials(settings: AblationSettings) -> list[TrialSpec]:
    """The dense trial of every seed (the same specs, hence keys, as the warm ``default`` preset's)."""
    trials = plan_trials(
        tasks={settings.task: settings.n}, model=settings.model, shape=settings.shape, methods=("dense",),
        seeds=settings.seeds, budget=settings.budget, device=settings.device, glue_dir=settings.glue_dir,
        protocol="warm", adapt_budget=settings.adapt_budget,
    )  # fmt: skip
    dense = [t for t in trials if t.method == "dense"]
    return with_data(dense, dict(settings.data)) if settings.data else dense


def fixed_schedules(settings: AblationSettings, *, table5: bool = False) -> list[Schedule]:
    """The four Coreset schedules of the ``default`` preset (nearest to its speedup targets), or with ``table5``
    the four (prune_upto, p) pairs of the paper's Table 5 (for the model's layers and N), by predicted speedup."""
    if table5:
        schedules = method_schedules("coreset", settings.n, settings.shape, grid=TABLE5_GRID)
        return sorted(schedules, key=lambda s: s.predicted_speedup)
    schedules = method_schedules("coreset", settings.n, settings.shape, grid=settings.grid)
    return nearest_schedules(schedules, settings.speedup_targets)


def _pyramid(settings: AblationSettings, dense: TrialSpec, lengths: Sequence[int], label: str, *,
             m: int | float | None = 1, position: str = "middle", only_infer: bool = False) -> TrialSpec:  # fmt: skip
    budget = settings.adapt_budget
    if only_infer:
        budget = replace(budget, epochs=ONLY_INFER_EPOCHS)
    return TrialSpec(
        task=settings.task, model=settings.model, method="coreset", schedule=label, lengths=tuple(lengths), m=m,
        position=position, seed=dense.seed, **asdict(budget), device=settings.device, glue_dir=settings.glue_dir,
        protocol="warm", init_from=dense.key, data=settings.data,
    )  # fmt: skip


def m_label(m: int | float | None) -> str:
    """``None`` -> "k-1", ``0.5`` -> "ceil(0.5k)", ``1`` -> "1"."""
    return "k-1" if m is None else (f"ceil({m:g}k)" if isinstance(m, float) else str(m))


def plan_ablation(
    name: str, settings: AblationSettings, *, configs: int = 8, random_seed: int = 0
) -> list[PlannedTrial]:
    """The rows of ablation ``name`` (one of :data:`ABLATIONS`), seed-major; dense trials are not included
    (see :func:`dense_trials`). ``configs``: the schedules ablation's configurations per family."""
    if name not in ABLATIONS:
        raise ConfigError(f"ablation must be one of {', '.join(ABLATIONS)}; got {name!r}")
    rows: list[PlannedTrial] = []
    if name == "schedules":
        return _schedule_rows(settings, dense_trials(settings), configs, random_seed)
    for dense in dense_trials(settings):
        for schedule in fixed_schedules(settings, table5=name == "m"):
            lengths, label = schedule.lengths or (), schedule.label
            if name == "m":
                rows += [
                    PlannedTrial(m_label(m), label, _pyramid(settings, dense, lengths, label, m=m)) for m in TABLE5_MS
                ]
            elif name == "only-infer":
                rows.append(
                    PlannedTrial("inference only", label, _pyramid(settings, dense, lengths, label, only_infer=True))
                )
                rows.append(PlannedTrial("fine-tuning + inference", label, _pyramid(settings, dense, lengths, label)))
            else:
                rows += [PlannedTrial(position, label, _pyramid(settings, dense, lengths, label, position=position))
                         for position in ("middle", "end")]  # fmt: skip
    return rows


def _schedule_rows(
    settings: AblationSettings, denses: list[TrialSpec], configs: int, random_seed: int
) -> list[PlannedTrial]:
    eq5 = eq5_schedules(settings.n, settings.shape, configs, grid=settings.grid)
    low = min(min(s.lengths or (settings.n,)) for s in eq5)
    families = [("Eq. 5", [(s.label, s.lengths or ()) for s in eq5])]
    for family in range(RANDOM_FAMILIES):
        drawn = random_schedules(
            settings.n, settings.shape.num_layers, configs, seed=random_seed * 100 + family, low=low
        )
        families.append((f"random #{family + 1}", [("-".join(map(str, lengths)), lengths) for lengths in drawn]))
    rows = []
    for dense in denses:
        for variant, schedules in families:
            rows += [
                PlannedTrial(variant, label, _pyramid(settings, dense, lengths, label)) for label, lengths in schedules
            ]
    return rows
