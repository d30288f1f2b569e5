"""Named sweeps: ``quick`` (the README's main job, minutes on a laptop CPU) and ``paper`` (the full grid).

``quick`` was sized from measured trial times on a shared 2-core CPU (see :data:`QUICK`): two schedules
per method, near 1.6X and 4.5X predicted speedup (measured CPU speedups come out lower), every method and
dense, 400 train / 200 dev / 200 test examples, one epoch at a learning rate raised for so few steps,
one seed, one torch thread per trial (steadier on a shared machine: two threads fighting other jobs for
two cores ran 2-3x slower per step). Its numbers show the pipeline and rough trends, not the paper's
accuracies. ``paper`` is Section 6 / Appendix C: every Table 9 schedule, every truncation and pooling
configuration, m in {1, 0.1k, 0.2k, 0.3k, 0.4k, k-1}, 20 seeds, the paper's fine-tuning settings (meant
for GPUs and Ray clusters).
"""

from __future__ import annotations

from dataclasses import dataclass

from pyramid_bert.errors import ConfigError
from pyramid_bert.sweep.plan import PAPER_CORESET_MS, TrainingBudget
from pyramid_bert.sweep.spec import SWEEP_METHODS

#: The GLUE tasks of the paper's Tables 1-3.
PAPER_GLUE_TASKS = ("stsb", "mrpc", "sst2", "qnli", "cola", "rte", "mnli", "mnli-mm", "qqp")


@dataclass(frozen=True)
class Preset:
    """A named sweep: tasks, methods, m values, seeds, schedule targets, protocol and training budgets."""

    name: str
    description: str
    tasks: tuple[str, ...]
    seeds: int
    budget: TrainingBudget
    methods: tuple[str, ...] = SWEEP_METHODS
    coreset_ms: tuple[int | float | None, ...] = PAPER_CORESET_MS
    #: Predicted speedups to pick schedules near (None: every schedule of the grid).
    speedup_targets: tuple[float, ...] | None = None
    #: Per-method targets that replace ``speedup_targets`` for that method.
    method_targets: dict[str, tuple[float, ...]] | None = None
    #: torch threads per trial (None: torch's default, one per core).
    threads: int | None = None
    #: "warm" (dense once per seed, pyramid trials adapted from it with ``adapt_budget``) or "paper".
    protocol: str = "paper"
    #: Warm protocol: how each pyramid trial trains from the dense checkpoint (None: ``budget``).
    adapt_budget: TrainingBudget | None = None


SMOKE = Preset(
    name="smoke",
    description="the pipeline check (tests, CI): 2 schedules per method, all methods + dense, tiny subsets, 1 seed",
    tasks=("rt-polarity",),
    seeds=1,
    budget=TrainingBudget(
        epochs=1.0,
        lr=2e-4,
        batch_size=8,
        max_train_examples=400,
        max_eval_examples=200,
        eval_batch_size=32,
        timing_repeats=3,
        time_train_step=False,
    ),
    coreset_ms=(0.2, None),
    speedup_targets=(1.6, 4.5),
    threads=1,
    protocol="warm",
    adapt_budget=TrainingBudget(
        epochs=0.5,
        lr=5e-5,
        batch_size=8,
        max_train_examples=400,
        max_eval_examples=200,
        eval_batch_size=32,
        timing_repeats=3,
        time_train_step=False,
    ),
)

DEFAULT = Preset(
    name="default",
    description="placeholder",
    tasks=("rt-polarity",),
    seeds=3,
    budget=TrainingBudget(epochs=2.0, lr=5e-5, batch_size=32, max_train_examples=4000, eval_batch_size=128,
                          timing_repeats=3, time_train_step=False),
    coreset_ms=(1, None),
    speedup_targets=(1.35, 1.75, 2.3, 3.1, 4.2),
    threads=1,
    protocol="warm",
    adapt_budget=TrainingBudget(epochs=0.5, lr=2e-5, batch_size=32, max_train_examples=4000, eval_batch_size=128,
                                timing_repeats=3, time_train_step=False),
)

PAPER = Preset(
    name="paper",
    description="the paper's full grid: every schedule, 6 values of m, 20 seeds, GLUE settings (GPUs / Ray)",
    tasks=PAPER_GLUE_TASKS,
    seeds=20,
    budget=TrainingBudget(),
)

PRESETS: dict[str, Preset] = {preset.name: preset for preset in (DEFAULT, SMOKE, PAPER)}
#: The preset of ``pyramid-bert reproduce`` and ``sweep`` when none is named.
DEFAULT_PRESET = DEFAULT.name


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ConfigError listing the valid names otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}; got {name!r}") from None
