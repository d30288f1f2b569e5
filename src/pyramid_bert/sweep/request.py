"""Plan a sweep from what a user asks for: :class:`SweepRequest` -> :func:`plan_sweep` -> :class:`SweepSetup`.

A request names a preset and what to override of it (tasks or the user's data files, methods, seeds, protocol,
budgets, threads); planning checks it, reads the model's shape and the tasks' input lengths, and lists the trials
(:mod:`pyramid_bert.sweep.plan`, or the preset's named variants) with the settings a report prints. No store is
touched. ``pyramid-bert sweep`` and ``reproduce`` build the request from their flags.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pyramid_bert.data import TASK_NAMES, resolve_model, task_spec
from pyramid_bert.errors import ConfigError, DataError
from pyramid_bert.geometry import flops_geometry
from pyramid_bert.spec import format_m
from pyramid_bert.sweep.budget import estimate_pass_seconds, estimate_wall_seconds, provisional_trials
from pyramid_bert.sweep.executors import default_workers
from pyramid_bert.sweep.plan import ModelShape, TrainingBudget, plan_trials
from pyramid_bert.sweep.presets import DEFAULT_PRESET, Preset, get_preset
from pyramid_bert.sweep.spec import PROTOCOLS, SWEEP_ACCEPTED_METHODS, TrialSpec, with_data
from pyramid_bert.sweep.speed_plan import SpeedGroup, SpeedPass, speed_groups
from pyramid_bert.sweep.variants import plan_variant_trials

DEFAULT_MODEL = "minilm-l6"
STORE_NAME = "results.sqlite"
#: Encoder sizes of the built-in model, so that synthetic sweeps need no download.
_KNOWN_SHAPES = {"minilm-l6": (6, 384, 1536)}


@dataclass(frozen=True)
class SweepRequest:
    """What to sweep; None means "the preset's". ``data``: the user's files (:attr:`TrialSpec.data`) instead of
    ``tasks``. ``workers`` / ``executor`` only inform the time estimate and the recorded settings."""

    preset: str = DEFAULT_PRESET
    tasks: tuple[str, ...] | None = None
    data: dict[str, Any] | None = None
    model: str = DEFAULT_MODEL
    methods: tuple[str, ...] | None = None
    seeds: int | None = None
    protocol: str | None = None
    epochs: float | None = None
    adapt_epochs: float | None = None
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    threads: int | None = None
    workers: int | None = None
    executor: str = "local"
    device: str = "cpu"
    glue_dir: str | None = None
    synthetic: bool = False
    out: str = "runs/sweep"


@dataclass
class SweepSetup:
    """A planned sweep and where it goes."""

    out: Path
    store_path: Path
    #: The trials to train; with a speed pass that chooses schedules, the dense trials and a provisional choice (by
    #: the FLOPs model) that :meth:`after_speed_pass` replaces with the choice on measured speed.
    trials: list[TrialSpec]
    settings: dict[str, Any]
    #: Estimated wall minutes on this kind of machine (cost model of :mod:`pyramid_bert.sweep.budget`).
    estimated_minutes: float | None = None
    #: The separate timing pass (None: each trial times itself) and the groups of configurations it times.
    speed_pass: SpeedPass | None = None
    speed_groups: list[SpeedGroup] | None = None

    def after_speed_pass(self, timed_trials: list[TrialSpec]) -> None:
        """Train the dense trials and ``timed_trials`` (what :func:`pyramid_bert.sweep.speed_pass.run_speed_pass`
        returned), dense first, seed-major."""
        dense = [trial for trial in self.trials if trial.method == "dense"]
        self.trials = sorted(dense + timed_trials, key=lambda trial: (trial.seed, trial.method != "dense"))


def plan_sweep(request: SweepRequest) -> SweepSetup:
    """Check ``request`` and plan its trials (ConfigError naming the flag for anything out of range)."""
    preset = get_preset(request.preset)
    if request.data is not None:
        task_lengths = {Path(request.data["train"]).name: int(request.data["max_length"])}
    else:
        task_lengths = {task: task_length(task) for task in (request.tasks or preset.tasks)}
    named_variants = {variant.name: variant for variant in preset.method_variants}
    methods = list(request.methods or (*preset.methods, *named_variants))
    unknown = [method for method in methods if method not in SWEEP_ACCEPTED_METHODS and method not in named_variants]
    if unknown:
        valid = ", ".join((*SWEEP_ACCEPTED_METHODS, *named_variants))
        raise ConfigError(f"--methods: unknown method {unknown[0]!r}; valid methods: {valid}")
    method_variants = tuple(named_variants[name] for name in methods if name in named_variants)
    methods = [method for method in methods if method in SWEEP_ACCEPTED_METHODS]
    seeds = preset.seeds if request.seeds is None else request.seeds
    _check_at_least_one(("--seeds", seeds), ("--threads", request.threads), ("--workers", request.workers))
    protocol = request.protocol or preset.protocol
    if protocol not in PROTOCOLS:
        raise ConfigError(f"--protocol must be one of {', '.join(PROTOCOLS)}; got {protocol!r}")
    budget, adapt_budget = _budgets(preset, request)
    shape = ModelShape(*model_shape(request.model, synthetic=request.synthetic))
    if preset.variants is not None:
        trials = _plan_variants(preset, task_lengths, request, shape, seeds, budget, adapt_budget)
    else:
        trials = plan_trials(
            tasks=task_lengths, model=request.model, shape=shape, methods=methods, coreset_ms=preset.coreset_ms,
            seeds=range(seeds), speedup_targets=preset.speedup_targets, budget=budget, device=request.device,
            glue_dir=request.glue_dir, protocol=protocol, adapt_budget=adapt_budget,
            method_targets=preset.method_targets, truncations=preset.truncations, grid=preset.grid,
            method_variants=method_variants,
        )  # fmt: skip
    if request.data is not None:
        trials = with_data(trials, request.data)
    threads = preset.threads if request.threads is None else request.threads
    settings = _settings(preset, request, list(task_lengths), methods, seeds, protocol, budget, adapt_budget, threads)
    settings["method_variants"] = [variant.name for variant in method_variants] or None
    groups = speed_groups(trials)[1] if preset.speed_pass is not None else None
    if preset.speed_pass is not None and preset.speed_pass.targets is not None:
        trials = provisional_trials(trials, groups, preset.speed_pass.targets, next(iter(task_lengths.values())), shape)
    estimate = None
    if request.executor == "local" and len(task_lengths) == 1:
        workers = request.workers or default_workers(threads)
        n = next(iter(task_lengths.values()))
        estimate = (estimate_wall_seconds(trials, n, shape, workers) + estimate_pass_seconds(groups, preset.speed_pass, n, shape)) / 60
    out = Path(request.out)
    return SweepSetup(out=out, store_path=out / STORE_NAME, trials=trials, settings=settings, estimated_minutes=estimate,
                      speed_pass=preset.speed_pass, speed_groups=groups)  # fmt: skip


def _check_at_least_one(*values: tuple[str, int | None]) -> None:
    for name, value in values:
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be >= 1, got {value}")


def _budgets(preset: Preset, request: SweepRequest) -> tuple[TrainingBudget, TrainingBudget]:
    """The preset's budgets of the dense (or every paper-protocol) trial and of each warm adaptation, overridden."""
    overrides = {"max_train_examples": request.max_train_examples, "max_eval_examples": request.max_eval_examples}
    given = {name: value for name, value in overrides.items() if value is not None}
    budget = replace(preset.budget, **given, **({"epochs": request.epochs} if request.epochs is not None else {}))
    adapt_epochs = {"epochs": request.adapt_epochs} if request.adapt_epochs is not None else {}
    adapt_budget = replace(preset.adapt_budget or preset.budget, **given, **adapt_epochs)
    for name, value in (("--epochs", budget.epochs), ("--adapt-epochs", adapt_budget.epochs)):
        if not value > 0:
            raise ConfigError(f"{name} must be > 0, got {value}")
    return budget, adapt_budget


def _settings(
    preset: Preset, request: SweepRequest, tasks: list[str], methods: list[str], seeds: int, protocol: str,
    budget: TrainingBudget, adapt_budget: TrainingBudget, threads: int | None,
) -> dict[str, Any]:  # fmt: skip
    """What the report prints of the sweep (stored in the store's meta)."""
    variants = {task: [v.name for v in preset.variants[task]] for task in tasks} if preset.variants else None
    return {
        "preset": preset.name, "tasks": tasks, **({"data": request.data} if request.data is not None else {}),
        "model": request.model, "methods": methods, "seeds": seeds,
        "coreset_ms": [format_m(m) if m is None else m for m in preset.coreset_ms],
        "speedup_targets": preset.speedup_targets, "budget": budget.__dict__, "protocol": protocol,
        **({"adapt_budget": adapt_budget.__dict__} if protocol == "warm" else {}),
        "method_targets": {k: list(v) for k, v in (preset.method_targets or {}).items()},
        "executor": request.executor, "workers": request.workers, "threads": threads,
        "synthetic": bool(request.synthetic), **({"variants": variants} if variants else {}),
        "speed_pass": preset.speed_pass.to_dict() if preset.speed_pass is not None else None,
    }  # fmt: skip


def _plan_variants(
    preset: Preset, task_lengths: dict[str, int], request: SweepRequest, shape: ModelShape, seeds: int,
    budget: TrainingBudget, adapt_budget: TrainingBudget,
) -> list[TrialSpec]:  # fmt: skip
    """A variants preset: per task its named configurations, the dense model of each seed first."""
    if request.methods:
        raise ConfigError(f"--methods: preset {preset.name} compares named configurations; it takes no --methods")
    if request.protocol not in (None, "warm"):
        raise ConfigError(f"--protocol: preset {preset.name} adapts every configuration from dense (warm only)")
    unknown = [task for task in task_lengths if task not in preset.variants]
    if unknown:
        raise ConfigError(f"--task: preset {preset.name} has configurations for {', '.join(preset.variants)} only")
    trials = []
    for task, n in task_lengths.items():
        trials += plan_variant_trials(
            variants=preset.variants[task], tasks={task: n}, model=request.model, shape=shape, seeds=range(seeds),
            budget=budget, adapt_budget=adapt_budget, device=request.device, glue_dir=request.glue_dir,
        )  # fmt: skip
    return sorted(trials, key=lambda trial: trial.seed)  # seed-major, stable: each dense before its variants


def task_length(task: str) -> int:
    """The task's input length N, from the data catalog (no data is read); lists valid names if unknown."""

    if task not in TASK_NAMES:
        raise ConfigError(f"--task: unknown task {task!r}; valid tasks: {', '.join(TASK_NAMES)}")
    return int(task_spec(task).max_length)


def model_shape(model: str, *, synthetic: bool) -> tuple[int, int, int]:
    """(layers, hidden, intermediate) of ``model`` from its config.json."""
    if synthetic and model in _KNOWN_SHAPES:
        return _KNOWN_SHAPES[model]

    config_path = Path(resolve_model(model)) / "config.json"
    if not config_path.is_file():
        raise DataError(
            f"--model: {model!r} has no config.json at {config_path} (give a catalog name or a local folder)"
        )
    config = json.loads(config_path.read_text())
    try:
        geometry = flops_geometry(SimpleNamespace(**config))  # each family's own names (DistilBERT: dim, n_layers)
    except AttributeError as missing:
        raise DataError(f"--model: {config_path} lacks {missing.name!r}; is it a BERT-family encoder?") from None
    return int(geometry["num_layers"]), int(geometry["hidden"]), int(geometry["intermediate"])
