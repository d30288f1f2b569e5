"""``compress``: from a model and labelled data to the fastest pyramid model that meets a speed or accuracy goal.

Steps (the paper's Section 5 workflow, on the warm protocol):

1. the dense model: ``--model`` itself when it already is a sequence classifier for the task's labels (warm start),
   else a dense fine-tune of it (``dense_epochs``);
2. each :class:`~pyramid_bert.compress.candidates.Candidate` adapted from the dense model (``adapt_epochs``), its
   real speedup measured on dev and its dev and test metric scored;
   With ``precisions`` ``("fp32", "int8")`` every configuration is also scored and timed at int8 (the same weights,
   dynamically quantized, :mod:`pyramid_bert.patch.quantize`), and the dense model at int8 is one more row: precision
   is one more axis of the candidates, each row timed against the float32 dense model;
   With ``length_drop`` > 0 (``--length-drop``), step 2 trains ONE LengthDrop model per group of candidates that
   differ only in their keep-ratio schedule (:mod:`pyramid_bert.compress.shared`) and measures every candidate with
   that model at the candidate's schedule (rows marked ``[LengthDrop]``, with ``shared_model``): no fine-tune per
   schedule;
3. the choice (:func:`pyramid_bert.compress.choose.choose`) on dev; test is only reported;
4. ``out``: a Hugging Face folder (config with the pyramid settings and labels, safetensors weights, tokenizer with
   ``model_max_length`` = N) plus ``README.md`` (model card), ``report.md``, ``pareto.png`` and ``compress.json``.

Everything in between lives in ``<out>.work/``; its ``state.json`` is rewritten (atomically) after every
configuration, and each fine-tune resumes from its own ``.partial`` state, so a killed run continues where it
stopped. Changing only the goal (``--target-speedup`` / ``--max-drop``) re-chooses without training again.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoTokenizer

from pyramid_bert.compress import measure
from pyramid_bert.compress.candidates import DEFAULT_CANDIDATES, Candidate
from pyramid_bert.compress.choose import Compare, choose
from pyramid_bert.compress.dev_noise import DevDifference, dev_difference
from pyramid_bert.compress.measure import is_fine_tuned_classifier, metric_of
from pyramid_bert.compress.output import write_output
from pyramid_bert.compress.shared import SharedModel, plan_shared_models
from pyramid_bert.data import resolve_model
from pyramid_bert.data.user_task import align_labels
from pyramid_bert.errors import ConfigError
from pyramid_bert.io import atomic_write_json, check_output_dir
from pyramid_bert.length_drop import check_length_drop
from pyramid_bert.patch.hf import load_pyramid_model
from pyramid_bert.patch.reschedule import set_keep_ratios
from pyramid_bert.precision import check_precision
from pyramid_bert.training import checkpoint, loop
from pyramid_bert.training.config import FinetuneConfig, resolve_device, validate_config

if TYPE_CHECKING:
    from pyramid_bert.data import TaskData

STATE_FILE = "state.json"
#: How often a fine-tune in progress saves its resume state (a kill loses at most this much training).
SAVE_EVERY_SECONDS = 120.0
#: How the label of a row measured with a shared LengthDrop model says so.
SHARED_MARK = "[LengthDrop]"
#: Settings that change only the choice, not what is trained and measured.
CHOICE_FIELDS = ("out", "target_speedup", "max_drop", "device")


@dataclass
class CompressSettings:
    """One compress run (defaults sized so that ~2000 labelled sentences take a few minutes on 2 CPU cores)."""

    model: str
    out: str
    target_speedup: float | None = None
    max_drop: float | None = None
    candidates: tuple[Candidate, ...] = DEFAULT_CANDIDATES
    dense_epochs: float = 2.0
    adapt_epochs: float = 0.5
    lr: float = 1e-4
    batch_size: int = 32
    eval_batch_size: int = 128
    timing_examples: int = 256
    timing_repeats: int = 3
    max_train_examples: int | None = None
    seed: int = 0
    device: str = "cpu"
    precisions: tuple[str, ...] = ("fp32",)
    #: > 0: one LengthDrop model per group of candidates (:mod:`pyramid_bert.compress.shared`), trained once with this
    #: bound (:mod:`pyramid_bert.length_drop`) and run at every candidate's schedule; 0: one fine-tune per candidate.
    length_drop: float = 0.0

    def check(self) -> None:
        """Ranges and the goal, before any data or model is read."""
        if (self.target_speedup is None) == (self.max_drop is None):
            raise ConfigError("--target-speedup / --max-drop: give exactly one goal")
        if self.target_speedup is not None and not self.target_speedup > 0:
            raise ConfigError(f"--target-speedup: must be > 0 (e.g. 2 for twice as fast), got {self.target_speedup}")
        if self.max_drop is not None and not self.max_drop >= 0:
            raise ConfigError(f"--max-drop: points of dev metric (x100) you accept to lose, >= 0; got {self.max_drop}")
        for name in ("dense_epochs", "adapt_epochs", "lr"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"--{name.replace('_', '-')}: must be > 0, got {getattr(self, name)}")
        for name in ("batch_size", "eval_batch_size", "timing_examples", "timing_repeats"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: must be an int >= 1, got {getattr(self, name)}")
        if not self.candidates:
            raise ConfigError("--candidates: give at least one configuration to try")
        for precision in self.precisions:
            check_precision(precision)
        if "int8" in self.precisions and not self.device.startswith("cpu"):
            raise ConfigError(f"--precision int8: runs on the CPU only; got --device {self.device}")
        check_length_drop(self.length_drop)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "candidates": [c.to_dict() for c in self.candidates]}

    def identity(self) -> dict[str, Any]:
        """What the trained and measured results depend on (all but the goal, ``out`` and the device; ``precisions``
        only when int8 is tried and ``length_drop`` only when on, so work files of runs before them stay valid)."""
        identity = {key: value for key, value in self.to_dict().items() if key not in CHOICE_FIELDS}
        if tuple(identity["precisions"]) == ("fp32",):
            del identity["precisions"]
        if identity["length_drop"] == 0:
            del identity["length_drop"]
        return identity


@dataclass
class CompressResult:
    """What a finished run wrote: the output folder, every tried row, the chosen row and why."""

    out: Path
    rows: list[dict[str, Any]]
    dense: dict[str, Any]
    chosen: int
    reason: str
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def chosen_row(self) -> dict[str, Any]:
        return self.rows[self.chosen]


def task_fingerprint(task: TaskData) -> str:
    """SHA-256 of the task's splits, labels and N: a resumed run must see the same data."""
    payload = {name: [split.text_a, split.text_b, split.labels] for name, split in task.splits.items()}
    payload["_"] = [task.max_length, task.label_names, task.metric]
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def compress(
    settings: CompressSettings, task: TaskData, *, progress: bool = True, force: bool = False
) -> CompressResult:
    """Run the steps of the module docstring and write ``settings.out``; returns what was chosen.

    An existing ``out`` is replaced as a whole, so it is refused (before any training) unless compress wrote it and it
    holds nothing else (a re-run re-chooses, e.g. for a new goal), or ``force`` is given.
    """

    settings.check()
    out = Path(settings.out)
    work = out.with_name(out.name + ".work")
    with checkpoint.run_folder_lock(out):
        checkpoint.remove_stale_temporaries(out)
        check_output_dir(out, "--out", kind="compress", force=force, whole=True)
        started = time.perf_counter()
        task, warm = _warm_start(settings, task)
        shared = _shared_models(settings)  # before any training: a bound that misses a candidate stops here
        state = _load_state(work, settings, task)
        trainings = len(shared) if shared is not None else len(settings.candidates)
        with _Progress(settings, task, progress, train_dense=not warm, trainings=trainings) as bar:
            dense = _dense_stage(settings, task, work, state, bar, warm)
            rows = _dense_int8_rows(settings, task, work, state, dense)
            if shared is not None:
                for model in shared:
                    rows += _shared_stage(settings, task, work, state, dense, model, bar)
            else:
                for candidate in settings.candidates:
                    rows += _candidate_stage(settings, task, work, state, dense, candidate, bar)
        state["seconds"] = state.get("seconds", 0.0) + time.perf_counter() - started
        _save_state(work, state)
        compare = _with_dev_intervals(rows, dense, task.metric, settings.seed)
        choice = choose(rows, dense_dev=dense["dev"], target_speedup=settings.target_speedup,
                        max_drop=settings.max_drop, compare=compare)  # fmt: skip
        if choice.warning:
            print(f"compress: warning: {choice.warning}", file=sys.stderr)
        result = CompressResult(out, rows, dense, choice.index, choice.reason, _notes(settings, task, state))
        write_output(result, settings, task, Path(rows[choice.index]["checkpoint"]))
    return result


def _with_dev_intervals(rows: list[dict], dense: dict, metric: str, seed: int) -> Compare | None:
    """Add each row's paired dev difference to dense (``dev_vs_dense``), and return the paired comparison of two
    rows for the choice; None when the work files predate dev predictions (the choice then uses point estimates)."""
    if any("dev_predictions" not in row for row in (*rows, dense)):
        return None
    labels = dense["dev_labels"]
    for row in rows:
        row["dev_vs_dense"] = dev_difference(row["dev_predictions"], dense["dev_predictions"], labels, metric,
                                             seed=seed).to_dict()  # fmt: skip
    cache: dict[tuple[int, int], DevDifference] = {}

    def compare(i: int, j: int) -> DevDifference:
        if (i, j) not in cache:
            cache[i, j] = dev_difference(rows[i]["dev_predictions"], rows[j]["dev_predictions"], labels, metric, seed=seed)
        return cache[i, j]

    return compare


def _notes(settings: CompressSettings, task: TaskData, state: dict[str, Any]) -> dict[str, Any]:
    return {
        "task": task.name, "metric": task.metric, "max_length": task.max_length, "label_names": task.label_names,
        "splits": {name: len(split) for name, split in task.splits.items()}, "data_notes": task.notes,
        "warm_start": state["dense"]["warm_start"], "seconds": state["seconds"], "threads": torch.get_num_threads(),
        "settings": settings.to_dict(),
    }  # fmt: skip


def _load_state(work: Path, settings: CompressSettings, task: TaskData) -> dict[str, Any]:
    fingerprint = task_fingerprint(task)
    path = work / STATE_FILE
    if not path.is_file():
        return {"identity": settings.identity(), "task": fingerprint, "dense": None, "candidates": {}}
    state = json.loads(path.read_text())
    if state.get("identity") != settings.identity() or state.get("task") != fingerprint:
        raise ConfigError(
            f"--out: {work} holds a compress run of other settings or data; delete it or choose another --out"
        )
    return state


def _save_state(work: Path, state: dict[str, Any]) -> None:
    atomic_write_json(work / STATE_FILE, state)


def _finetune_config(settings: CompressSettings, task: TaskData, model: str, out: Path, **selection: Any) -> Any:
    dense = selection.get("method", "dense") == "dense"
    return FinetuneConfig(
        task=task.name, model=model, epochs=settings.dense_epochs if dense else settings.adapt_epochs,
        lr=settings.lr, batch_size=settings.batch_size, eval_batch_size=settings.eval_batch_size,
        max_train_examples=settings.max_train_examples, seed=settings.seed, device=settings.device, out=str(out),
        **({"method": "dense"} | selection),
    )  # fmt: skip


def _warm_start(settings: CompressSettings, task: TaskData) -> tuple[TaskData, bool]:
    """Whether ``--model`` is already a classifier for the task (then the task's label ids follow its id2label)."""

    source = str(resolve_model(settings.model))
    if not is_fine_tuned_classifier(source, task):
        return task, False
    return align_labels(task, AutoConfig.from_pretrained(source).id2label, settings.model), True


def _dense_stage(
    settings: CompressSettings, task: TaskData, work: Path, state: dict[str, Any], bar: _Progress, warm: bool
) -> dict:
    """The dense model (warm start or a dense fine-tune) and its dev/test metric; cached in ``state``."""

    if state["dense"] is None:
        if warm:
            bar.write(f"warm start: {settings.model} is already a classifier for these labels; it is the dense model")
            path = str(resolve_model(settings.model))
        else:
            bar.stage("dense fine-tune", settings.dense_epochs)
            config = _finetune_config(settings, task, settings.model, work / "dense")
            path = str(loop.finetune(config, task_data=task, progress=False, step_callback=bar.step, evaluate_dev=False,
                             save_every_seconds=SAVE_EVERY_SECONDS))
        state["dense"] = {"label": "dense", "checkpoint": path, "warm_start": warm, "speedup": 1.0,
                          **_scores(measure.load_dense(path), path, task, settings)}  # fmt: skip
        _save_state(work, state)
    elif not warm:
        bar.skip(settings.dense_epochs)
    return state["dense"]


def _scores(model: Any, path: str, task: TaskData, settings: CompressSettings) -> dict[str, Any]:
    """Dev and test metric, and the dev predictions and labels (the paired dev intervals of the choice)."""

    tokenizer, device = AutoTokenizer.from_pretrained(path), resolve_device(settings.device)
    model.to(device)
    dev, test = (metric_of(model, tokenizer, task, split, batch_size=settings.eval_batch_size, device=device)
                 for split in ("dev", "test"))  # fmt: skip
    return {"dev": dev["metric"], "test": test["metric"], "dev_predictions": dev["predictions"],
            "dev_labels": dev["labels"]}  # fmt: skip


def _candidate_stage(
    settings: CompressSettings, task: TaskData, work: Path, state: dict[str, Any], dense: dict, candidate: Candidate,
    bar: _Progress,
) -> list[dict[str, Any]]:  # fmt: skip
    """One candidate adapted from the dense model, its speedup and metrics at each precision (one row each); cached
    in ``state``."""

    keys = [_row_key(candidate.key, precision) for precision in settings.precisions]
    if all(key in state["candidates"] for key in keys):
        bar.skip(settings.adapt_epochs)
        return [state["candidates"][key] for key in keys]
    bar.stage(candidate.label, settings.adapt_epochs)
    config = _finetune_config(settings, task, dense["checkpoint"], work / candidate.key, **candidate.finetune_fields())
    validate_config(config, check_task_name=False)
    path = str(loop.finetune(config, task_data=task, progress=False, step_callback=bar.step, evaluate_dev=False,
                             save_every_seconds=SAVE_EVERY_SECONDS))
    for key, precision in zip(keys, settings.precisions, strict=True):
        if key not in state["candidates"]:
            row = {"label": _row_label(candidate.label, precision), "key": key, "candidate": candidate.to_dict(),
                   "checkpoint": path, "precision": precision, **_measured(settings, task, path, precision)}  # fmt: skip
            state["candidates"][key] = row
            _save_state(work, state)
    return [state["candidates"][key] for key in keys]


def _shared_models(settings: CompressSettings) -> list[SharedModel] | None:
    """With ``--length-drop``: the LengthDrop models that serve the candidates (None without it)."""
    if settings.length_drop == 0:
        return None
    num_layers = AutoConfig.from_pretrained(resolve_model(settings.model)).num_hidden_layers
    return plan_shared_models(settings.candidates, num_layers, settings.length_drop)


def _shared_stage(
    settings: CompressSettings, task: TaskData, work: Path, state: dict[str, Any], dense: dict, model: SharedModel,
    bar: _Progress,
) -> list[dict[str, Any]]:  # fmt: skip
    """One LengthDrop model trained from the dense model, then each of its candidates measured with that model at the
    candidate's schedule and each precision (one row each, saying the model it shares); cached in ``state``."""

    keys = [[_row_key(candidate.key, precision) for precision in settings.precisions] for candidate in model.candidates]
    if all(key in state["candidates"] for row_keys in keys for key in row_keys):
        bar.skip(settings.adapt_epochs)
        return [state["candidates"][key] for row_keys in keys for key in row_keys]
    bar.stage(model.label, settings.adapt_epochs)
    config = _finetune_config(settings, task, dense["checkpoint"], work / model.key, **model.finetune_fields())
    validate_config(config, check_task_name=False)
    path = str(loop.finetune(config, task_data=task, progress=False, step_callback=bar.step, evaluate_dev=False,
                             save_every_seconds=SAVE_EVERY_SECONDS))
    shared = {"shared_model": model.key, "shared_by": len(model.candidates), "trained_keep_ratios": model.smallest}
    for candidate, ratios, row_keys in zip(model.candidates, model.ratios, keys, strict=True):
        for key, precision in zip(row_keys, settings.precisions, strict=True):
            if key not in state["candidates"]:
                state["candidates"][key] = {
                    "label": _row_label(f"{candidate.label} {SHARED_MARK}", precision), "key": key,
                    "candidate": candidate.to_dict(), "checkpoint": path, "precision": precision,
                    "keep_ratios": list(ratios), **shared, **_measured(settings, task, path, precision, list(ratios)),
                }  # fmt: skip
                _save_state(work, state)
    return [state["candidates"][key] for row_keys in keys for key in row_keys]


def _dense_int8_rows(
    settings: CompressSettings, task: TaskData, work: Path, state: dict[str, Any], dense: dict
) -> list[dict[str, Any]]:
    """With int8 among the precisions: the dense model itself at int8, as one more row (cached in ``state``)."""
    if "int8" not in settings.precisions:
        return []
    key = _row_key("dense", "int8")
    if key not in state["candidates"]:
        path = dense["checkpoint"]
        state["candidates"][key] = {"label": "dense int8", "key": key, "candidate": None, "checkpoint": path,
                                    "precision": "int8", **_measured(settings, task, path, "int8")}  # fmt: skip
        _save_state(work, state)
    return [state["candidates"][key]]


def _measured(
    settings: CompressSettings, task: TaskData, path: str, precision: str, keep_ratios: list[float] | None = None
) -> dict[str, Any]:
    """The real speedup of the model at ``path`` run at ``precision`` (and at ``keep_ratios``, when given, instead of
    its stored schedule) against the float32 dense model (same weights, no selection), and its dev and test scores."""
    model, tokenizer = load_pyramid_model(path, precision=precision), AutoTokenizer.from_pretrained(path)
    if keep_ratios is not None:
        set_keep_ratios(model, keep_ratios)
    speed = measure.real_speedup(
        model, measure.load_dense(path), tokenizer, task, examples=settings.timing_examples,
        batch_size=settings.eval_batch_size, repeats=settings.timing_repeats, device=resolve_device(settings.device),
        seed=settings.seed,
    )  # fmt: skip
    return {**speed, **_scores(model, path, task, settings)}


def _row_key(key: str, precision: str) -> str:
    """A row's key in the work files: the candidate's (fp32, as before precisions existed) or ``<key>-int8``."""
    return key if precision == "fp32" else f"{key}-{precision}"


def _row_label(label: str, precision: str) -> str:
    return label if precision == "fp32" else f"{label} {precision}"


class _Progress:
    """One bar over every planned training step of the run (ETA), the current configuration as its postfix."""

    def __init__(
        self, settings: CompressSettings, task: TaskData, enabled: bool, *, train_dense: bool, trainings: int
    ) -> None:
        examples = len(task.splits["train"])
        if settings.max_train_examples is not None:
            examples = min(examples, settings.max_train_examples)
        self.steps_per_epoch = math.ceil(examples / settings.batch_size)
        total = (self._steps(settings.dense_epochs) if train_dense else 0) + trainings * self._steps(settings.adapt_epochs)
        self.bar = tqdm(total=total, desc="compress", unit="step", disable=not enabled, dynamic_ncols=True)
        self.base = 0

    def _steps(self, epochs: float) -> int:
        return max(1, math.ceil(epochs * self.steps_per_epoch))

    def stage(self, label: str, epochs: float) -> None:
        self.base = self.bar.n
        self.bar.set_postfix_str(label)

    def step(self, done: int) -> None:
        self.bar.update(self.base + done - self.bar.n)

    def skip(self, epochs: float) -> None:
        self.bar.update(self._steps(epochs))

    def write(self, text: str) -> None:
        self.bar.write(text)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
