"""Planning a sweep: the schedules each method is tried with, and the list of trials.

A trial is task x model x method x schedule x m x position x seed (Section 6 and Appendix C of the paper):

- coreset, attention, first_k, random: the sequence-length schedules of Table 9 (Eq. 5 with floor, for
  the task's input length N and the model's number of layers);
- input_first_k: one truncation of the input, to the lengths of Appendix C (N=256: 240, 224, ..., 16;
  N=128: 112, ..., 16, 8; N=64: 48, 32, 16, 8, 4; other N by the same rule);
- average_pool: window = stride in {2, ..., 6}, applied at one encoder layer, every layer tried;
- coreset additionally over m in {1, 0.1k, 0.2k, 0.3k, 0.4k, k-1} (None = k-1);
- dense: the unpruned model, once per task and seed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pyramid_bert import schedule as schedule_model
from pyramid_bert.errors import ConfigError
from pyramid_bert.spec import parse_m
from pyramid_bert.sweep.spec import PROTOCOLS, SWEEP_ACCEPTED_METHODS, SWEEP_METHODS, TrialSpec

#: The paper's values of m for Coreset-select (Section 6.1); None means k - 1 (Coreset-select-k-1).
PAPER_CORESET_MS: tuple[int | float | None, ...] = (1, 0.1, 0.2, 0.3, 0.4, None)
#: Average-pool windows (= strides) of Appendix C.
PAPER_POOL_WINDOWS: tuple[int, ...] = (2, 3, 4, 5, 6)
#: Methods whose schedules come from the Table 9 grid.
GRID_METHODS = ("coreset", "attention", "first_k", "random", "energy")


@dataclass(frozen=True)
class ModelShape:
    """The sizes the cost model needs: encoder layers, hidden size, FFN intermediate size."""

    num_layers: int
    hidden: int
    intermediate: int


@dataclass(frozen=True)
class Schedule:
    """One way of shrinking the sequence, with what the cost model predicts for it.

    ``lengths``: kept tokens per encoder layer, ``len == num_layers`` (None for dense and average_pool,
    whose lengths follow from ``pool_windows``); ``p`` / ``prune_upto``: the Eq. 5 parameters when the
    schedule comes from the grid.
    """

    label: str
    lengths: tuple[int, ...] | None
    predicted_speedup: float
    space_reduction: float
    p: float | None = None
    prune_upto: int | None = None
    pool_windows: tuple[int, ...] | None = None


def input_truncations(n: int) -> list[int]:
    """Input-first-k truncation lengths of Appendix C, extended to any N.

    Multiples of 16 below N down to 16, then 8 when N <= 128 and 4 when N <= 64:
    N=256 -> 240, 224, ..., 16; N=128 -> 112, ..., 16, 8; N=64 -> 48, 32, 16, 8, 4.
    """
    if n < 2:
        raise ConfigError(f"input length n must be >= 2 to truncate, got {n}")
    lengths = [k for k in range(n - 16, 15, -16)] if n % 16 == 0 else [16 * i for i in range((n - 1) // 16, 0, -1)]
    if n <= 128:
        lengths.append(8)
    if n <= 64:
        lengths.append(4)
    return [k for k in lengths if 1 <= k < n]


def grid_schedules(
    n: int, shape: ModelShape, *, position: str = "middle", grid: Sequence[tuple[int, float]] | None = None
) -> list[Schedule]:
    """The Table 9 schedules for input length ``n`` and the model's layer count, duplicates dropped."""
    grid = schedule_model.PAPER_GRID if grid is None else grid
    schedules: dict[tuple[int, ...], Schedule] = {}
    for prune_upto, p in grid:
        lengths = tuple(schedule_model.sequence_lengths(n, shape.num_layers, p, prune_upto))
        if lengths in schedules:
            continue
        schedules[lengths] = Schedule(
            label=f"p={p:g} u={prune_upto}",
            lengths=lengths,
            predicted_speedup=_predicted(n, lengths, shape, position),
            space_reduction=schedule_model.attention_space_reduction(n, lengths),
            p=float(p),
            prune_upto=int(prune_upto),
        )
    return list(schedules.values())


def truncation_schedules(
    n: int, shape: ModelShape, *, position: str = "middle", fractions: Sequence[float] | None = None
) -> list[Schedule]:
    """Input-first-k: one constant schedule per truncation length of :func:`input_truncations`, or per
    ``fractions`` of N (``k = round(f * N)``, duplicates dropped) when given."""
    schedules = []
    lengths = input_truncations(n) if fractions is None else list(dict.fromkeys(max(1, round(f * n)) for f in fractions))
    for k in lengths:
        lengths = tuple(schedule_model.constant_lengths(k, shape.num_layers))
        schedules.append(
            Schedule(
                label=f"k={k}",
                lengths=lengths,
                predicted_speedup=_predicted(n, lengths, shape, position, truncate_input=True),
                space_reduction=schedule_model.attention_space_reduction(n, lengths),
            )
        )
    return schedules


def pool_schedules(
    n: int, shape: ModelShape, *, position: str = "middle", windows: Sequence[int] = PAPER_POOL_WINDOWS
) -> list[Schedule]:
    """Average-pool: each window of ``windows`` at each single encoder layer (1-based in the label)."""
    schedules = []
    for layer in range(shape.num_layers):
        for window in windows:
            pool_windows = tuple(window if j == layer else 1 for j in range(shape.num_layers))
            lengths = tuple(schedule_model.pool_lengths(n, list(pool_windows)))
            schedules.append(
                Schedule(
                    label=f"w={window}@{layer + 1}",
                    lengths=None,
                    predicted_speedup=_predicted(n, lengths, shape, position),
                    space_reduction=schedule_model.attention_space_reduction(n, lengths),
                    pool_windows=pool_windows,
                )
            )
    return schedules


def method_schedules(
    method: str,
    n: int,
    shape: ModelShape,
    *,
    position: str = "middle",
    truncations: Sequence[float] | None = None,
    grid: Sequence[tuple[int, float]] | None = None,
) -> list[Schedule]:
    """All candidate schedules of ``method`` (see the module docstring); dense has one, the identity.

    ``truncations``: input_first_k's lengths as fractions of N instead of Appendix C's; ``grid``: the
    (prune_upto, p) pairs of the grid methods instead of Table 9's.
    """
    if method in GRID_METHODS:
        return grid_schedules(n, shape, position=position, grid=grid)
    if method == "input_first_k":
        return truncation_schedules(n, shape, position=position, fractions=truncations)
    if method == "average_pool":
        return pool_schedules(n, shape, position=position)
    if method == "dense":
        return [Schedule(label="dense", lengths=None, predicted_speedup=1.0, space_reduction=0.0)]
    raise ConfigError(f"method must be one of {', '.join(SWEEP_ACCEPTED_METHODS)}; got {method!r}")


def nearest_schedules(schedules: Sequence[Schedule], targets: Iterable[float]) -> list[Schedule]:
    """For each target predicted speedup, the schedule closest to it (each schedule at most once).

    Ties go to the schedule listed first. Returned in order of increasing predicted speedup.
    """
    chosen: list[Schedule] = []
    for target in targets:
        remaining = [s for s in schedules if s not in chosen]
        if not remaining:
            break
        chosen.append(min(remaining, key=lambda s: abs(s.predicted_speedup - target)))
    return sorted(chosen, key=lambda s: s.predicted_speedup)


@dataclass(frozen=True)
class MethodVariant:
    """A method with further selection options, swept over that method's schedules like a method of its own: its
    trials carry ``options`` (FinetuneConfig fields, e.g. ``(("merge", True),)``) and ``name`` as their ``variant``
    label, which reports use as the column (e.g. "CS+": coreset, m = 1, cosine distance, duplicity attention, merging).
    """

    name: str
    method: str
    options: tuple[tuple[str, Any], ...]
    m: int | float | None = 1


@dataclass(frozen=True)
class TrainingBudget:
    """How each trial trains and is measured.

    epochs, learning rate, train batch size (None = the task's default), example caps (None = all);
    inference batch for scoring and timing, timing repeats, and whether a training step is timed too.
    """

    epochs: float = 3.0
    lr: float = 2e-5
    batch_size: int | None = None
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    eval_batch_size: int = 128
    timing_repeats: int = 7
    time_train_step: bool = True


def plan_trials(
    *,
    tasks: dict[str, int],
    model: str,
    shape: ModelShape,
    methods: Sequence[str] = SWEEP_METHODS,
    coreset_ms: Sequence[int | float | None] = PAPER_CORESET_MS,
    seeds: Sequence[int] = (0,),
    position: str = "middle",
    speedup_targets: Sequence[float] | None = None,
    budget: TrainingBudget | None = None,
    device: str = "cpu",
    glue_dir: str | None = None,
    protocol: str = "paper",
    adapt_budget: TrainingBudget | None = None,
    method_targets: Mapping[str, Sequence[float]] | None = None,
    truncations: Sequence[float] | None = None,
    grid: Sequence[tuple[int, float]] | None = None,
    method_variants: Sequence[MethodVariant] = (),
) -> list[TrialSpec]:
    """The trials of a sweep, seed-major (all of seed 0 first) so early results cover every method.

    ``tasks`` maps task name -> input length N. With ``speedup_targets`` each method keeps only the
    schedules whose predicted speedup is nearest to the targets (``method_targets`` gives a method its own
    targets); otherwise every schedule is tried (the paper's full grid). ``truncations``: input_first_k's
    lengths as fractions of N (default: Appendix C's); ``grid``: (prune_upto, p) pairs for coreset, attention,
    first_k and random (default: Table 9's).

    ``method_variants``: further columns, each a method with options swept like the methods (after them; a variant's
    targets may come from ``method_targets`` under its name).

    ``protocol="paper"``: every trial fine-tunes the pretrained model with ``budget``. ``protocol="warm"``:
    per task and seed one dense trial fine-tunes the model with ``budget`` (planned first, even when
    ``methods`` leaves dense out), and every pyramid trial of that seed starts from its checkpoint
    (``init_from`` = its key) and trains with ``adapt_budget`` (default: ``budget``).
    """
    _check_plan(methods, tasks, seeds, coreset_ms, protocol)
    budget = budget or TrainingBudget()
    warm = protocol == "warm"
    ordered = (["dense"] if warm else []) + [m for m in methods if not (warm and m == "dense")]
    columns = [(method, None) for method in ordered] + [(v.method, v) for v in method_variants]
    trials: list[TrialSpec] = []
    for seed in seeds:
        for task, n in tasks.items():
            dense_key = None
            for method, variant in columns:
                name = variant.name if variant is not None else method
                targets = (method_targets or {}).get(name, speedup_targets)
                schedules = method_schedules(method, n, shape, position=position, truncations=truncations, grid=grid)
                if targets is not None and method != "dense":
                    schedules = nearest_schedules(schedules, targets)
                ms = _column_ms(method, variant, coreset_ms)
                common = dict(
                    task=task, model=model, method=method, position=position, seed=int(seed), device=device,
                    glue_dir=glue_dir, protocol=protocol, init_from=dense_key if method != "dense" else None,
                    **asdict(budget if method == "dense" or not warm else (adapt_budget or budget)),
                    **({"options": variant.options, "variant": variant.name} if variant is not None else {}),
                )  # fmt: skip
                for sched in schedules:
                    for m in ms:
                        spec = TrialSpec(
                            schedule=sched.label, lengths=sched.lengths, p=sched.p, prune_upto=sched.prune_upto,
                            pool_windows=sched.pool_windows, m=m, **common,
                        )  # fmt: skip
                        if warm and method == "dense":
                            dense_key = spec.key
                        trials.append(spec)
    return trials


def _column_ms(method: str, variant: MethodVariant | None, coreset_ms: Sequence[int | float | None]) -> list:
    """The values of m a column is tried with: a variant's own, the preset's for coreset, 1 otherwise."""
    if method != "coreset":
        return [1]
    return [parse_m(variant.m)] if variant is not None else [parse_m(m) for m in coreset_ms]


def _check_plan(
    methods: Sequence[str],
    tasks: dict[str, int],
    seeds: Sequence[int],
    coreset_ms: Sequence[int | float | None],
    protocol: str,
) -> None:
    for method in methods:
        if method not in SWEEP_ACCEPTED_METHODS:
            raise ConfigError(f"method must be one of {', '.join(SWEEP_ACCEPTED_METHODS)}; got {method!r}")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"--protocol must be one of {', '.join(PROTOCOLS)}; got {protocol!r}")
    if not tasks:
        raise ConfigError("tasks must name at least one task")
    if not seeds:
        raise ConfigError("seeds must hold at least one seed")
    if "coreset" in methods and not coreset_ms:
        raise ConfigError("coreset_ms must hold at least one value of m for the coreset method")


def _predicted(
    n: int, lengths: Sequence[int], shape: ModelShape, position: str, *, truncate_input: bool = False
) -> float:
    return schedule_model.predicted_speedup(
        n,
        list(lengths),
        hidden=shape.hidden,
        intermediate=shape.intermediate,
        num_layers=shape.num_layers,
        position=position,
        truncate_input=truncate_input,
    )
