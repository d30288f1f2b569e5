"""Evaluate a checkpoint: the task metric, measured vs predicted speedup, attention-space reduction, memory.

Speed follows the paper's Appendix C: speedup = T(dense) / T(pyramid) for inference, where the dense model
is the *same* checkpoint loaded without token selection (same weights), both fed the same batch (the first
``batch_size`` examples of the split, padded to the task's N), at the same thread count, in this one
process, warm-up first, repeats interleaved (:mod:`pyramid_bert.measure.timing`); the median and inter-quartile
range of the paired ratios are reported. The training step (forward + backward on a train-size batch) is
timed the same way. Memory is measured in fresh processes (:mod:`pyramid_bert.measure.memory`).

"Only infer" (the paper's Table 6): a densely fine-tuned checkpoint with token selection applied at
inference only, e.g. ``only_infer={"method": "coreset", "p": 0.25, "prune_upto": 2}``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import AutoModelForSequenceClassification, AutoTokenizer

from pyramid_bert import data  # data.load_task, looked up at call time (tests replace it)
from pyramid_bert.compiling import compile_model
from pyramid_bert.data import TASK_NAMES, tokenize_split
from pyramid_bert.data.user_task import align_labels
from pyramid_bert.errors import ConfigError, DataError
from pyramid_bert.io import atomic_write_json
from pyramid_bert.measure import memory as memory_probe
from pyramid_bert.measure.evaluation import SPEEDUP_PREFIXES, SPREAD_STATS, Evaluation
from pyramid_bert.measure.speed import measure_split_speed, measure_train_step_speed
from pyramid_bert.patch import hf
from pyramid_bert.patch.hf import is_pyramidized, pyramid_settings, unpyramidize
from pyramid_bert.patch.quantize import quantize
from pyramid_bert.precision import check_precision, stored_precision
from pyramid_bert.spec import METHODS, SelectionOptions
from pyramid_bert.training import checkpoint
from pyramid_bert.training.batching import real_lengths
from pyramid_bert.training.config import (
    DENSE,
    FinetuneConfig,
    apply_selection,
    check_labels_fit,
    pyramid_summary,
    resolve_device,
    resolve_lengths,
    subset_indices,
    take,
)
from pyramid_bert.training.metrics import class_shares, compute_metrics, predictions_from_logits
from pyramid_bert.training.model_folder import folder_run_info, nominal_lengths
from pyramid_bert.training.scoring import predict_logits, score_split, tokenize_for_model

if TYPE_CHECKING:
    import torch

    from pyramid_bert.data import TaskData

__all__ = ["SELECTION_KEYS", "evaluate_checkpoint", "measure_memory_pair", "predict_logits", "score_split"]

#: The schedule of an only-infer selection, with its defaults; its options are :class:`SelectionOptions` fields.
_SCHEDULE_DEFAULTS = {
    "method": "coreset", "lengths": None, "p": None, "prune_upto": None, "pool_windows": None, "keep_ratios": None,
    "schedule": "fixed", "keep_thresholds": None,
}  # fmt: skip
SELECTION_KEYS = (*_SCHEDULE_DEFAULTS, *SelectionOptions.names())


def _load_dense(path: Path) -> Any:
    """The checkpoint's weights without token selection (the dense twin of the speedup)."""

    model = AutoModelForSequenceClassification.from_pretrained(path)
    if is_pyramidized(model):
        unpyramidize(model)
    return model


def _selection_config(run_config: Any, only_infer: dict[str, Any]) -> Any:
    unknown = sorted(set(only_infer) - set(SELECTION_KEYS))
    if unknown:
        raise ConfigError(f"only_infer: unknown key(s) {unknown}; valid keys: {', '.join(SELECTION_KEYS)}")
    if only_infer.get("method", "coreset") == "dense":
        raise ConfigError("only_infer: method dense applies no selection; give a selection method")
    schedule = {**_SCHEDULE_DEFAULTS, **{k: v for k, v in only_infer.items() if k in _SCHEDULE_DEFAULTS}}
    return replace(run_config, **schedule, selection=SelectionOptions.from_dict(only_infer))


def evaluate_checkpoint(
    path: str | Path,
    *,
    split: str = "test",
    task: str | None = None,
    measure_speed: bool = True,
    measure_memory: bool = False,
    only_infer: dict[str, Any] | None = None,
    batch_size: int | None = None,
    max_examples: int | None = None,
    device: str | None = None,
    glue_dir: str | None = None,
    timing_repeats: int = 5,
    timing_warmup: int = 1,
    timing_examples: int | None = None,
    timing_dense_modes: tuple[str, ...] = ("padded", "dynamic", "sorted"),
    time_train_step: bool = True,
    task_data: TaskData | None = None,
    write_json: bool = True,
    precision: str | None = None,
    compile: bool = False,
) -> dict[str, Any]:
    """Score checkpoint ``path`` on ``split`` of its task (or ``task``) and measure its speed and memory.

    Args:
        path: a folder written by :func:`pyramid_bert.training.loop.finetune`, or any ``save_pretrained`` folder of a
            (pyramid) sequence classifier (then ``task`` or ``task_data`` says what to evaluate it on).
        split: "dev" or "test".
        task: evaluate on another task than the one trained on (its labels must fit the head).
        measure_speed: time dense vs pyramid inference over the split under each batching mode (and a training
            step), interleaved repeats (:func:`pyramid_bert.measure.speed.measure_split_speed`).
        measure_memory: peak memory of a training step and of inference, dense and pyramid (fresh processes).
        only_infer: selection applied at inference only to a densely fine-tuned checkpoint; keys among
            method, lengths, p, prune_upto, pool_windows, m, position.
        batch_size / max_examples / device / glue_dir: override the run's eval batch size (default 128),
            evaluate a seeded subset, run elsewhere, GLUE folder.
        timing_examples: time a seeded sample of this many examples of the evaluated ones (default: all).
        timing_dense_modes: the batchings the dense model is timed under (the pyramid: padded and sorted); sweeps
            drop ``dynamic`` to save time.
        task_data: use this task instead of loading one by name (tests).
        write_json: also write the result to ``<path>/eval-<split>[-only-infer][-int8].json`` (``result_json``), in
            folders written by ``finetune`` or ``compress`` only.
        precision: run the model (and its dense twin in the speed measurement) at ``fp32`` or ``int8``
            (:mod:`pyramid_bert.precision`; None: the precision the folder's config names, else fp32).
        compile: score and time the model (and its dense twin) under ``torch.compile``
            (:func:`pyramid_bert.compiling.compile_model`).

    Returns:
        An :class:`~pyramid_bert.measure.evaluation.Evaluation`: the metric and scores, the schedule and its cost
        model (predicted speedup, attention-space reduction), the measured speedup under the paper's protocol (both
        models padded to N) and the sorted one (both on length-sorted, dynamically padded batches: the realistic
        one), the speed of every batching pair and the training step, memory; ``to_row()`` gives it as JSON.
    """
    started = time.perf_counter()
    run = _load_run(Path(path), task=task, task_data=task_data, glue_dir=glue_dir, split=split, only_infer=only_infer)
    run.precision = check_precision(precision) if precision else stored_precision(run.model.config)
    torch_device = resolve_device(device or run.config.device)
    eval_batch_size = batch_size or run.config.eval_batch_size
    encodings = tokenize_for_model(run.model, run.tokenizer, run.task, split)  # for the metric (timing: _timing_inputs)
    check_labels_fit(run.task, run.model.config.num_labels, encodings["labels"], str(run.folder))
    encodings = take(encodings, subset_indices(len(encodings["labels"]), max_examples, run.config.seed))
    _to_runtime(run, torch_device, compile)
    result = _score(run, encodings, split=split, batch_size=eval_batch_size, device=torch_device)
    result.only_infer = only_infer or None
    if measure_speed:
        timing = dict(warmup=timing_warmup, repeats=timing_repeats, examples=timing_examples, dense_modes=timing_dense_modes)
        _measure_speed_into(
            result, run, split, max_examples, batch_size=eval_batch_size, device=torch_device,
            time_train_step=time_train_step, compile=compile, **timing,
        )  # fmt: skip
    if measure_memory:
        train_batch = run.config.resolved_batch_size()
        result.memory = measure_memory_pair(
            run.folder, n=run.task.max_length, batch_size=eval_batch_size, train_batch_size=train_batch,
            device=str(torch_device), selection=run.selection_spec, include_pyramid=run.selected,
            dynamic_train_width=int(real_lengths(encodings)[:train_batch].max()), precision=run.precision,
        )  # fmt: skip
    result.eval_seconds = time.perf_counter() - started
    result.result_json = _write_result(result, run, split, only_infer) if write_json else None
    return result


def _to_runtime(run: _Run, device: Any, compile: bool) -> None:
    """Move the run's model to ``device``, at its precision, under ``torch.compile`` if asked."""
    quantize(run.model.to(device), run.precision)
    if compile:
        compile_model(run.model)


@dataclass
class _Run:
    """What an evaluation works on: the checkpoint, its run config, the task, the model (pyramid, or dense with the
    only-infer selection applied) and the schedule it runs."""

    folder: Path
    run_info: dict[str, Any]
    config: FinetuneConfig
    task: TaskData
    tokenizer: Any
    model: Any
    method: str
    lengths: list[int] | None
    position: str
    selection_spec: dict[str, Any] | None = None  # an only-infer selection's settings (memory re-applies them)
    precision: str = "fp32"

    @property
    def selected(self) -> bool:
        """Whether the model selects tokens (then it is timed against its dense twin)."""

        return self.lengths is not None and (self.selection_spec is not None or is_pyramidized(self.model))


def _load_run(
    folder: Path, *, task: str | None, task_data: TaskData | None, glue_dir: str | None, split: str,
    only_infer: dict[str, Any] | None,
) -> _Run:  # fmt: skip
    """Read the checkpoint's run config, load the task and the model, and apply an only-infer selection."""

    if folder.is_dir() and not (folder / checkpoint.RUN_FILE).is_file():  # a plain save_pretrained folder

        run_info, run_config = folder_run_info(folder, task or (task_data.name if task_data is not None else None))
    else:
        run_info = checkpoint.validate_checkpoint(folder)
        run_config = FinetuneConfig.from_dict(run_info["config"])
    if task_data is None:
        task_data = _load_task(task or run_config.task, glue_dir or run_config.glue_dir, run_config.seed)
    if split not in task_data.splits:
        raise ConfigError(f"split: task {task_data.name} has no split {split!r}; valid: {', '.join(task_data.splits)}")
    try:
        model = _load_dense(folder) if only_infer else hf.load_pyramid_model(str(folder), precision="fp32")
    except (OSError, ValueError, RuntimeError) as error:
        raise checkpoint.CheckpointError(f"checkpoint {folder}: cannot load the model ({error})") from error
    run = _Run(folder, run_info, run_config, task_data, AutoTokenizer.from_pretrained(folder), model,
               run_config.method, run_info.get("lengths"), run_config.selection.position)  # fmt: skip
    if only_infer:
        _apply_only_infer(run, only_infer)
    else:
        _check_schedule_fits(run)
    return run


def _load_task(name: str, glue_dir: str | None, seed: int) -> TaskData:
    if name not in TASK_NAMES:
        raise ConfigError(f"task: unknown task {name!r}; valid tasks: {', '.join(TASK_NAMES)}")
    return data.load_task(name, glue_dir=glue_dir, seed=seed)


def _apply_only_infer(run: _Run, only_infer: dict[str, Any]) -> None:
    """Apply ``only_infer``'s selection to the dense checkpoint's model (the paper's Table 6)."""

    if run.config.method != DENSE:
        raise ConfigError(
            f"only_infer: needs a densely fine-tuned checkpoint; {run.folder} was fine-tuned with {run.config.method}"
        )
    selection_config = _selection_config(run.config, only_infer)
    if selection_config.method not in METHODS:
        raise ConfigError(f"only_infer: unknown method {selection_config.method!r}; valid: {', '.join(METHODS)}")
    run.lengths = resolve_lengths(selection_config, run.task.max_length, run.model.config.num_hidden_layers)
    apply_selection(run.model, selection_config, run.lengths)
    run.method, run.position = selection_config.method, selection_config.selection.position
    run.selection_spec = pyramid_settings(run.model).to_dict()


def _check_schedule_fits(run: _Run) -> None:
    """A model folder's nominal lengths at the task's N; a finetune run's schedule must have been made for that N."""
    n = run.task.max_length
    if run.run_info.get("model_folder"):
        run.lengths = nominal_lengths(run.run_info["pyramid"], n)
        if "files" in (run.task.notes or {}):  # the user's data: its label names map onto the model's
            run.task = align_labels(run.task, getattr(run.model.config, "id2label", None), str(run.folder))
    elif run.lengths is not None and n != run.run_info.get("task", {}).get("max_length", n):
        raise DataError(
            f"task {run.task.name}: input length N={n} differs from the N={run.run_info['task']['max_length']} the "
            f"schedule {run.lengths} was made for"
        )


def _score(
    run: _Run, encodings: dict[str, torch.Tensor], *, split: str, batch_size: int, device: torch.device
) -> Evaluation:
    """The task metric and the cost-model figures of the run's schedule (speed and memory still unmeasured)."""

    task, n = run.task, run.task.max_length
    logits = predict_logits(run.model, encodings, batch_size=batch_size, device=device)
    predictions = predictions_from_logits(logits, is_regression=task.is_regression)
    labels = encodings["labels"].numpy()
    scores = compute_metrics(task.metric, predictions, labels)
    settings = pyramid_settings(run.model)
    return Evaluation(
        checkpoint=str(run.folder), task=task.name, split=split, examples=int(len(predictions)),
        metric_name=task.metric, metric=scores[task.metric], scores=scores, method=run.method, lengths=run.lengths,
        position=run.position, n=n, device=str(device), precision=run.precision,
        **pyramid_summary(run.model.config, n, run.lengths, run.method, run.position),
        **class_shares(predictions, labels, is_regression=task.is_regression),
        keep_ratios=settings.keep_ratios if settings is not None else None,
    )  # fmt: skip


def _measure_speed_into(
    result: Evaluation, run: _Run, split: str, max_examples: int | None, *, batch_size: int, device: torch.device,
    warmup: int, repeats: int, examples: int | None, dense_modes: tuple[str, ...], time_train_step: bool,
    compile: bool = False,
) -> None:  # fmt: skip
    """Speed against the dense twin (both protocols, and a training step), or 1.0 for a model that selects nothing."""
    if not run.selected:
        result.speedup = {protocol: dict.fromkeys(SPREAD_STATS, 1.0) for protocol in SPEEDUP_PREFIXES}
        return
    timed = _timing_inputs(run.tokenizer, run.task, split, max_examples, examples, run.config.seed)
    speed = _measure_speed(
        run.model, run.folder, timed, batch_size=batch_size, device=device, warmup=warmup, repeats=repeats,
        train_batch_size=run.config.resolved_batch_size() if time_train_step and run.precision == "fp32" else None,
        dense_modes=dense_modes, precision=run.precision, compile=compile,
    )  # fmt: skip
    result.speed = speed
    result.speedup = {"paper": dict(speed["paper_speedup"]), "sorted": dict(speed["real_speedup"])}
    result.predicted_speedup_padded, result.predicted_speedup_sorted = speed["paper_predicted"], speed["real_predicted"]


def _write_result(result: Evaluation, run: _Run, split: str, only_infer: dict[str, Any] | None) -> str | None:
    """Write ``result`` into the checkpoint folder when we made it (finetune or compress); returns the path."""

    if run.run_info.get("model_folder") and not (run.folder / "compress.json").is_file():
        return None  # a folder someone else saved gets nothing written into it (use --json-out)
    suffix = ("-only-infer" if only_infer else "") + ("" if run.precision == "fp32" else f"-{run.precision}")
    path = str(run.folder / f"eval-{split}{suffix}.json")
    atomic_write_json(path, {**result.to_row(), "result_json": path})
    return path


def _timing_inputs(
    tokenizer: Any, task: TaskData, split: str, max_examples: int | None, timing_examples: int | None, seed: int
) -> dict[str, torch.Tensor]:
    """The timed examples as users have them: tokenized without Input-first-k's cut, which is the pyramid model's
    own work (it truncates its input to k itself), so the dense twin is timed on the whole sentences."""

    encodings = tokenize_split(tokenizer, task, split)
    encodings = take(encodings, subset_indices(len(encodings["labels"]), max_examples, seed))
    return take(encodings, subset_indices(len(encodings["labels"]), timing_examples, seed))


def _measure_speed(
    model: Any,
    folder: Path,
    encodings: dict[str, torch.Tensor],
    *,
    batch_size: int,
    device: torch.device,
    warmup: int,
    repeats: int,
    train_batch_size: int | None,
    dense_modes: tuple[str, ...],
    precision: str = "fp32",
    compile: bool = False,
) -> dict[str, Any]:
    """Whole-split inference speed (every batching mode) and, optionally, a training step, against the dense twin
    (at the same ``precision``; a quantized model has no training step)."""

    dense_model = quantize(_load_dense(folder).to(device), precision)
    if compile:
        compile_model(dense_model)
    speed = measure_split_speed(
        model, dense_model, encodings, batch_size=batch_size, device=device, warmup=warmup, repeats=repeats,
        dense_modes=dense_modes,
    )  # fmt: skip
    if train_batch_size:
        speed["train_step"] = measure_train_step_speed(
            model, dense_model, encodings, batch_size=train_batch_size, device=device, repeats=repeats
        )
    return speed


def measure_memory_pair(
    folder: Path,
    *,
    n: int,
    batch_size: int,
    train_batch_size: int,
    device: str,
    selection: dict[str, Any] | None,
    include_pyramid: bool,
    dynamic_train_width: int | None = None,
    precision: str = "fp32",
) -> dict[str, Any]:
    """Peak memory (MB) of a training step and of inference, dense and pyramid, each in a fresh process.

    Keys ``train_dense``, ``infer_pyramid``, ... at N; with ``dynamic_train_width`` also ``train_dense_dynamic`` and
    ``train_pyramid_dynamic``: the training step on a batch padded to its longest example, of that many tokens.
    Inference runs at ``precision``; training steps at float32.
    (Inference under dynamic or sorted batching peaks at the split's widest batch, usually N itself.)
    """

    memory: dict[str, Any] = {}
    variants = ("dense", "pyramid") if include_pyramid else ("dense",)
    for mode, size in (("train", train_batch_size), ("infer", batch_size)):
        for variant in variants:
            memory[f"{mode}_{variant}"] = memory_probe.measure_peak_memory(
                folder, mode=mode, variant=variant, batch_size=size, seq_len=n, device=device,
                selection=selection if variant == "pyramid" else None, precision=precision,
            )  # fmt: skip
    if dynamic_train_width is not None and dynamic_train_width < n:
        for variant in variants:
            memory[f"train_{variant}_dynamic"] = memory_probe.measure_peak_memory(
                folder, mode="train", variant=variant, batch_size=train_batch_size, seq_len=dynamic_train_width,
                device=device, selection=selection if variant == "pyramid" else None,
            )  # fmt: skip
    return memory
