"""Named configurations compared at one schedule: the selection-quality study's plan.

A :class:`Variant` is one column of that comparison: a method, its schedule (keep ratios, pooling windows or
fixed lengths) and further options of :class:`pyramid_bert.training.config.FinetuneConfig` (distance, duplicity
attention, merging, distillation), under a report name such as ``"CS+"``. :func:`plan_variant_trials` plans,
per task and seed, the dense model (the same trial, and key, as :func:`pyramid_bert.sweep.plan.plan_trials`'
warm protocol plans) and every variant warm-started from it with one adaptation budget for all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pyramid_bert.errors import ConfigError
from pyramid_bert.sweep.plan import ModelShape, TrainingBudget, plan_trials
from pyramid_bert.sweep.spec import OPTION_FIELDS, SWEEP_ACCEPTED_METHODS, TrialSpec


@dataclass(frozen=True)
class Variant:
    """One named configuration: ``method`` with exactly one of ``keep_ratios`` / ``pool_windows`` /
    ``lengths`` (one entry per encoder layer), ``m`` for coreset, and ``options`` (FinetuneConfig fields named in
    :data:`pyramid_bert.sweep.spec.OPTION_FIELDS`)."""

    name: str
    method: str
    schedule: str
    keep_ratios: tuple[float, ...] | None = None
    pool_windows: tuple[int, ...] | None = None
    lengths: tuple[int, ...] | None = None
    m: int | float | None = 1
    options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.method not in SWEEP_ACCEPTED_METHODS or self.method == "dense":
            raise ConfigError(f"variant {self.name}: method must be a selection method, got {self.method!r}")
        given = [n for n in ("keep_ratios", "pool_windows", "lengths") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ConfigError(f"variant {self.name}: give exactly one of keep_ratios, pool_windows, lengths")
        unknown = sorted({name for name, _ in self.options} - set(OPTION_FIELDS))
        if unknown:
            raise ConfigError(f"variant {self.name}: unknown option(s) {unknown}; valid: {', '.join(OPTION_FIELDS)}")

    def spec(self, dense: TrialSpec, budget: TrainingBudget) -> TrialSpec:
        """This variant's trial for the task and seed of ``dense`` (warm-started from it)."""
        return TrialSpec(
            task=dense.task, model=dense.model, method=self.method, schedule=self.schedule,
            lengths=self.lengths, pool_windows=self.pool_windows, keep_ratios=self.keep_ratios,
            m=self.m if self.method == "coreset" else 1, position=dense.position, seed=dense.seed,
            **asdict(budget), device=dense.device, glue_dir=dense.glue_dir, protocol="warm", init_from=dense.key,
            options=self.options or None, variant=self.name,
        )  # fmt: skip


def plan_variant_trials(
    *,
    variants: Sequence[Variant],
    tasks: Mapping[str, int],
    model: str,
    shape: ModelShape,
    seeds: Sequence[int],
    budget: TrainingBudget,
    adapt_budget: TrainingBudget,
    device: str = "cpu",
    glue_dir: str | None = None,
) -> list[TrialSpec]:
    """Seed-major: for each seed and task, the dense trial, then every variant adapted from it."""
    names = [variant.name for variant in variants]
    if len(set(names)) != len(names):
        raise ConfigError(f"variant names must be unique; got {names}")
    trials: list[TrialSpec] = []
    for seed in seeds:
        dense_trials = plan_trials(
            tasks=dict(tasks), model=model, shape=shape, methods=["dense"], seeds=[seed], budget=budget,
            device=device, glue_dir=glue_dir, protocol="warm",
        )  # fmt: skip
        for dense in dense_trials:
            trials.append(dense)
            trials.extend(variant.spec(dense, adapt_budget) for variant in variants)
    return trials
