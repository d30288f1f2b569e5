"""Evaluate a checkpoint: the task metric, measured vs predicted speedup, attention-space reduction, memory.

Speed follows the paper's Appendix C: speedup = T(dense) / T(pyramid) for inference, where the dense model
is the *same* checkpoint loaded without token selection (same weights), both fed the same batch (the first
``batch_size`` examples of the split, padded to the task's N), at the same thread count, in this one
process, warm-up first, repeats interleaved (:mod:`pyramid_bert.timing`); the median and inter-quartile
range of the paired ratios are reported. The training step (forward + backward on a train-size batch) is
timed the same way. Memory is measured in fresh processes (:mod:`pyramid_bert.memory`).

"Only infer" (the paper's Table 6): a densely fine-tuned checkpoint with token selection applied at
inference only, e.g. ``only_infer={"method": "coreset", "p": 0.25, "prune_upto": 2}``.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyramid_bert.errors import ConfigError, DataError
from pyramid_bert.run_config import (
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
from pyramid_bert.scoring import predict_logits, score_split, tokenize_for_model
from pyramid_bert.spec import METHODS, SelectionOptions

if TYPE_CHECKING:
    import torch

    from pyramid_bert.data import TaskData

__all__ = ["SELECTION_KEYS", "evaluate_checkpoint", "measure_memory_pair", "predict_logits", "score_split"]

#: The schedule of an only-infer selection, with its defaults; its options are :class:`SelectionOptions` fields.
_SCHEDULE_DEFAULTS = {
    "method": "coreset", "lengths": None, "p": None, "prune_upto": None, "pool_windows": None, "keep_ratios": None,
    "schedule": "fixed",
}  # fmt: skip
SELECTION_KEYS = (*_SCHEDULE_DEFAULTS, *SelectionOptions.names())


def _load_dense(path: Path) -> Any:
    """The checkpoint's weights without token selection (the dense twin of the speedup)."""
    from transformers import AutoModelForSequenceClassification

    from pyramid_bert import is_pyramidized, unpyramidize

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
) -> dict[str, Any]:
    """Score checkpoint ``path`` on ``split`` of its task (or ``task``) and measure its speed and memory.

    Args:
        path: a folder written by :func:`pyramid_bert.train.finetune`, or any ``save_pretrained`` folder of a
            (pyramid) sequence classifier (then ``task`` or ``task_data`` says what to evaluate it on).
        split: "dev" or "test".
        task: evaluate on another task than the one trained on (its labels must fit the head).
        measure_speed: time dense vs pyramid inference over the split under each batching mode (and a training
            step), interleaved repeats (:func:`pyramid_bert.speed.measure_split_speed`).
        measure_memory: peak memory of a training step and of inference, dense and pyramid (fresh processes).
        only_infer: selection applied at inference only to a densely fine-tuned checkpoint; keys among
            method, lengths, p, prune_upto, pool_windows, m, position.
        batch_size / max_examples / device / glue_dir: override the run's eval batch size (default 128),
            evaluate a seeded subset, run elsewhere, GLUE folder.
        timing_examples: time a seeded sample of this many examples of the evaluated ones (default: all).
        timing_dense_modes: the batchings the dense model is timed under (the pyramid: padded and sorted); sweeps
            drop ``dynamic`` to save time.
        task_data: use this task instead of loading one by name (tests).
        write_json: also write the result to ``<path>/eval-<split>[-only-infer].json`` (``result_json``), in folders
            written by ``finetune`` or ``compress`` only.

    Returns:
        A JSON-able dict: metric_name, metric, scores, examples, lengths, keep_ratios, predicted_speedup,
        space_reduction, speedup_median/q25/q75 (the paper's protocol: both models padded to N) and
        sorted_speedup_median/q25/q75 (both on length-sorted, dynamically padded batches: the realistic one;
        None without timing), predicted_speedup_padded / _sorted (FLOPs model on those batches), speed (every
        batching pair and the training step), memory, eval_seconds, ...
    """
    from transformers import AutoTokenizer

    from pyramid_bert import checkpoint, is_pyramidized, load_pyramid_model, pyramid_settings
    from pyramid_bert.data import load_task

    started = time.perf_counter()
    folder = Path(path)
    if folder.is_dir() and not (folder / checkpoint.RUN_FILE).is_file():  # a plain save_pretrained folder
        from pyramid_bert.model_folder import folder_run_info

        run_info, run_config = folder_run_info(folder, task or (task_data.name if task_data is not None else None))
    else:
        run_info = checkpoint.validate_checkpoint(folder)
        run_config = FinetuneConfig.from_dict(run_info["config"])
    torch_device = resolve_device(device or run_config.device)
    eval_batch_size = batch_size or run_config.eval_batch_size
    task_name = task or run_config.task
    if task_data is None:
        from pyramid_bert.data import TASK_NAMES

        if task_name not in TASK_NAMES:
            raise ConfigError(f"task: unknown task {task_name!r}; valid tasks: {', '.join(TASK_NAMES)}")
        task_data = load_task(task_name, glue_dir=glue_dir or run_config.glue_dir, seed=run_config.seed)
    if split not in task_data.splits:
        raise ConfigError(f"split: task {task_data.name} has no split {split!r}; valid: {', '.join(task_data.splits)}")

    tokenizer = AutoTokenizer.from_pretrained(folder)
    try:
        model = _load_dense(folder) if only_infer else load_pyramid_model(str(folder))
    except (OSError, ValueError, RuntimeError) as error:
        raise checkpoint.CheckpointError(f"checkpoint {folder}: cannot load the model ({error})") from error
    n = task_data.max_length
    method, lengths, position = run_config.method, run_info.get("lengths"), run_config.selection.position
    if run_info.get("model_folder"):
        from pyramid_bert.data.user_task import align_labels
        from pyramid_bert.model_folder import nominal_lengths

        lengths = nominal_lengths(run_info["pyramid"], n)
        if "files" in (task_data.notes or {}):  # the user's data: its label names map onto the model's
            task_data = align_labels(task_data, getattr(model.config, "id2label", None), str(folder))
    selection_spec = None
    if only_infer:
        if run_config.method != DENSE:
            raise ConfigError(
                f"only_infer: needs a densely fine-tuned checkpoint; {folder} was fine-tuned with {run_config.method}"
            )
        selection_config = _selection_config(run_config, only_infer)
        if selection_config.method not in METHODS:
            raise ConfigError(f"only_infer: unknown method {selection_config.method!r}; valid: {', '.join(METHODS)}")
        lengths = resolve_lengths(selection_config, n, model.config.num_hidden_layers)
        apply_selection(model, selection_config, lengths)
        method, position = selection_config.method, selection_config.selection.position
        selection_spec = pyramid_settings(model).to_dict()
    elif lengths is not None and n != run_info.get("task", {}).get("max_length", n):
        raise DataError(
            f"task {task_data.name}: input length N={n} differs from the N={run_info['task']['max_length']} the "
            f"schedule {lengths} was made for"
        )
    encodings = tokenize_for_model(model, tokenizer, task_data, split)  # for the metric (timing: _timing_inputs)
    check_labels_fit(task_data, model.config.num_labels, encodings["labels"], str(folder))
    encodings = take(encodings, subset_indices(len(encodings["labels"]), max_examples, run_config.seed))
    model.to(torch_device)

    logits = predict_logits(model, encodings, batch_size=eval_batch_size, device=torch_device)
    from pyramid_bert.metrics import class_shares, compute_metrics, predictions_from_logits

    predictions = predictions_from_logits(logits, is_regression=task_data.is_regression)
    scores = compute_metrics(task_data.metric, predictions, encodings["labels"].numpy())
    result: dict[str, Any] = {
        "checkpoint": str(folder), "task": task_data.name, "split": split, "examples": int(len(predictions)),
        "metric_name": task_data.metric, "metric": scores[task_data.metric], "scores": scores,
        "method": method, "lengths": lengths, "position": position, "n": n, "only_infer": only_infer or None,
        **pyramid_summary(model.config, n, lengths, method, position),
        "speedup_median": None, "speedup_q25": None, "speedup_q75": None, "sorted_speedup_median": None,
        "sorted_speedup_q25": None, "sorted_speedup_q75": None, "speed": None, "memory": None,
        "device": str(torch_device),
    }  # fmt: skip
    result.update(class_shares(predictions, encodings["labels"].numpy(), is_regression=task_data.is_regression))
    selected = lengths is not None and (only_infer or is_pyramidized(model))
    settings = pyramid_settings(model)
    result["keep_ratios"] = settings.keep_ratios if settings is not None else None
    if measure_speed and selected:
        timed = _timing_inputs(tokenizer, task_data, split, max_examples, timing_examples, run_config.seed)
        speed = _measure_speed(
            model, folder, timed, batch_size=eval_batch_size, device=torch_device, warmup=timing_warmup,
            repeats=timing_repeats, train_batch_size=run_config.resolved_batch_size() if time_train_step else None,
            dense_modes=timing_dense_modes,
        )  # fmt: skip
        result["speed"] = speed
        result.update({f"speedup_{key}": value for key, value in speed["paper_speedup"].items()})
        result.update({f"sorted_speedup_{key}": value for key, value in speed["real_speedup"].items()})
        result.update(predicted_speedup_padded=speed["paper_predicted"], predicted_speedup_sorted=speed["real_predicted"])
    elif measure_speed:
        ones = {"speedup_median": 1.0, "speedup_q25": 1.0, "speedup_q75": 1.0}
        result.update({**ones, **{f"sorted_{key}": value for key, value in ones.items()}})
    if measure_memory:
        from pyramid_bert.batching import real_lengths

        train_batch = run_config.resolved_batch_size()
        result["memory"] = measure_memory_pair(
            folder, n=n, batch_size=eval_batch_size, train_batch_size=train_batch,
            device=str(torch_device), selection=selection_spec, include_pyramid=bool(selected),
            dynamic_train_width=int(real_lengths(encodings)[:train_batch].max()),
        )  # fmt: skip
    result["eval_seconds"] = time.perf_counter() - started
    ours = not run_info.get("model_folder") or (folder / "compress.json").is_file()
    result["result_json"] = None
    if write_json and ours:  # a folder someone else saved gets nothing written into it (use --json-out)
        result["result_json"] = str(folder / f"eval-{split}{'-only-infer' if only_infer else ''}.json")
        checkpoint.atomic_write_json(result["result_json"], result)
    return result


def _timing_inputs(
    tokenizer: Any, task: TaskData, split: str, max_examples: int | None, timing_examples: int | None, seed: int
) -> dict[str, torch.Tensor]:
    """The timed examples as users have them: tokenized without Input-first-k's cut, which is the pyramid model's
    own work (it truncates its input to k itself), so the dense twin is timed on the whole sentences."""
    from pyramid_bert.data import tokenize_split

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
) -> dict[str, Any]:
    """Whole-split inference speed (every batching mode) and, optionally, a training step, against the dense twin."""
    from pyramid_bert.speed import measure_split_speed, measure_train_step_speed

    dense_model = _load_dense(folder).to(device)
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
) -> dict[str, Any]:
    """Peak memory (MB) of a training step and of inference, dense and pyramid, each in a fresh process.

    Keys ``train_dense``, ``infer_pyramid``, ... at N; with ``dynamic_train_width`` also ``train_dense_dynamic`` and
    ``train_pyramid_dynamic``: the training step on a batch padded to its longest example, of that many tokens.
    (Inference under dynamic or sorted batching peaks at the split's widest batch, usually N itself.)
    """
    from pyramid_bert.memory import measure_peak_memory

    memory: dict[str, Any] = {}
    variants = ("dense", "pyramid") if include_pyramid else ("dense",)
    for mode, size in (("train", train_batch_size), ("infer", batch_size)):
        for variant in variants:
            memory[f"{mode}_{variant}"] = measure_peak_memory(
                folder, mode=mode, variant=variant, batch_size=size, seq_len=n, device=device,
                selection=selection if variant == "pyramid" else None,
            )  # fmt: skip
    if dynamic_train_width is not None and dynamic_train_width < n:
        for variant in variants:
            memory[f"train_{variant}_dynamic"] = measure_peak_memory(
                folder, mode="train", variant=variant, batch_size=train_batch_size, seq_len=dynamic_train_width,
                device=device, selection=selection if variant == "pyramid" else None,
            )  # fmt: skip
    return memory
