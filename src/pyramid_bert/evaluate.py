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

import numpy as np

from pyramid_bert.errors import ConfigError, DataError

if TYPE_CHECKING:
    import torch

    from pyramid_bert.data import TaskData

SELECTION_KEYS = ("method", "lengths", "p", "prune_upto", "pool_windows", "m", "position")


def predict_logits(model: Any, encodings: dict[str, torch.Tensor], *, batch_size: int, device: Any) -> np.ndarray:
    """Logits ``[num_examples, num_labels]`` of ``model`` (eval mode, no grad) in batches of ``batch_size``."""
    import torch

    inputs = {key: value for key, value in encodings.items() if key != "labels"}
    count = len(next(iter(inputs.values())))
    was_training = model.training
    model.eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, count, batch_size):
            batch = {key: value[start : start + batch_size].to(device) for key, value in inputs.items()}
            chunks.append(model(**batch).logits.float().cpu())
    model.train(was_training)
    return torch.cat(chunks).numpy() if chunks else np.zeros((0, model.config.num_labels))


def score_split(
    model: Any,
    tokenizer: Any,
    task: TaskData,
    split: str,
    *,
    batch_size: int = 128,
    max_examples: int | None = None,
    device: Any = "cpu",
    seed: int = 0,
) -> dict[str, Any]:
    """The task metric (and companions) of ``model`` on ``split``; ``max_examples`` takes a seeded subset."""
    from pyramid_bert.data import tokenize_split
    from pyramid_bert.metrics import compute_metrics, predictions_from_logits
    from pyramid_bert.train import subset_indices, take

    if split not in task.splits:
        raise ConfigError(f"split: task {task.name} has no split {split!r}; valid: {', '.join(task.splits)}")
    encodings = tokenize_split(tokenizer, task, split)
    encodings = take(encodings, subset_indices(len(encodings["labels"]), max_examples, seed))
    logits = predict_logits(model, encodings, batch_size=batch_size, device=device)
    predictions = predictions_from_logits(logits, is_regression=task.is_regression)
    scores = compute_metrics(task.metric, predictions, encodings["labels"].numpy())
    return {
        "split": split, "examples": int(len(predictions)), "metric_name": task.metric,
        "metric": scores[task.metric], "scores": scores,
    }  # fmt: skip


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
    blank = {"method": "coreset", "lengths": None, "p": None, "prune_upto": None, "pool_windows": None, "m": 1,
             "position": "middle"}  # fmt: skip
    return replace(run_config, **{**blank, **only_infer})


def time_speed(
    pyramid_model: Any,
    dense_model: Any,
    encodings: dict[str, torch.Tensor],
    *,
    batch_size: int,
    train_batch_size: int | None,
    device: Any,
    warmup: int = 2,
    repeats: int = 7,
) -> dict[str, Any]:
    """Interleaved timing of dense vs pyramid: inference on one batch, and optionally a forward+backward step."""
    import torch

    from pyramid_bert.timing import speedup_stats, time_interleaved

    def batch_of(size: int, with_labels: bool) -> dict[str, torch.Tensor]:
        keys = [k for k in encodings if with_labels or k != "labels"]
        return {k: encodings[k][:size].to(device) for k in keys}

    infer_inputs = batch_of(batch_size, with_labels=False)
    for model in (pyramid_model, dense_model):
        model.eval()

    def infer(model: Any) -> Any:
        def run() -> None:
            with torch.inference_mode():
                model(**infer_inputs)
            if device.type == "cuda":
                torch.cuda.synchronize()

        return run

    timings = time_interleaved({"dense": infer(dense_model), "pyramid": infer(pyramid_model)}, warmup=warmup,
                               repeats=repeats)  # fmt: skip
    speed: dict[str, Any] = {
        "batch_size": int(len(infer_inputs["input_ids"])), "seq_len": int(infer_inputs["input_ids"].shape[1]),
        "threads": torch.get_num_threads(), "warmup": warmup, "repeats": repeats,
        "dense_seconds": timings["dense"].to_dict(), "pyramid_seconds": timings["pyramid"].to_dict(),
        "speedup": speedup_stats(timings["dense"], timings["pyramid"]).to_dict(),
    }  # fmt: skip
    if train_batch_size:
        train_inputs = batch_of(train_batch_size, with_labels=True)

        def train_step(model: Any) -> Any:
            def run() -> None:
                model.train()
                model(**train_inputs).loss.backward()
                model.zero_grad(set_to_none=True)
                if device.type == "cuda":
                    torch.cuda.synchronize()

            return run

        step_timings = time_interleaved(
            {"dense": train_step(dense_model), "pyramid": train_step(pyramid_model)}, warmup=1, repeats=repeats
        )
        for model in (pyramid_model, dense_model):
            model.eval()
        speed["train_step"] = {
            "what": "forward + backward of one training batch (optimizer step excluded)",
            "batch_size": int(len(train_inputs["input_ids"])),
            "dense_seconds": step_timings["dense"].to_dict(), "pyramid_seconds": step_timings["pyramid"].to_dict(),
            "speedup": speedup_stats(step_timings["dense"], step_timings["pyramid"]).to_dict(),
        }  # fmt: skip
    return speed


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
    timing_repeats: int = 7,
    timing_warmup: int = 2,
    time_train_step: bool = True,
    task_data: TaskData | None = None,
    write_json: bool = True,
) -> dict[str, Any]:
    """Score checkpoint ``path`` on ``split`` of its task (or ``task``) and measure its speed and memory.

    Args:
        path: a folder written by :func:`pyramid_bert.train.finetune`.
        split: "dev" or "test".
        task: evaluate on another task than the one trained on (its labels must fit the head).
        measure_speed: time dense vs pyramid inference (and a training step) with interleaved repeats.
        measure_memory: peak memory of a training step and of inference, dense and pyramid (fresh processes).
        only_infer: selection applied at inference only to a densely fine-tuned checkpoint; keys among
            method, lengths, p, prune_upto, pool_windows, m, position.
        batch_size / max_examples / device / glue_dir: override the run's eval batch size (default 128),
            evaluate a seeded subset, run elsewhere, GLUE folder.
        task_data: use this task instead of loading one by name (tests).
        write_json: also write the result to ``<path>/eval-<split>[-only-infer].json``.

    Returns:
        A JSON-able dict: metric_name, metric, scores, examples, lengths, predicted_speedup, space_reduction,
        speedup_median/q25/q75 (None without timing), speed, train_step speedup, memory, eval_seconds, ...
    """
    from transformers import AutoTokenizer

    from pyramid_bert import checkpoint, is_pyramidized, load_pyramid_model, train
    from pyramid_bert.data import load_task, tokenize_split

    started = time.perf_counter()
    folder = Path(path)
    run_info = checkpoint.validate_checkpoint(folder)
    run_config = train.FinetuneConfig.from_dict(run_info["config"])
    torch_device = train.resolve_device(device or run_config.device)
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
    method, lengths, position = run_config.method, run_info.get("lengths"), run_config.position
    selection_spec = None
    if only_infer:
        if run_config.method != train.DENSE:
            raise ConfigError(
                f"only_infer: needs a densely fine-tuned checkpoint; {folder} was fine-tuned with {run_config.method}"
            )
        selection_config = _selection_config(run_config, only_infer)
        from pyramid_bert import METHODS
        from pyramid_bert.schedule import POSITIONS

        if selection_config.method not in METHODS:
            raise ConfigError(f"only_infer: unknown method {selection_config.method!r}; valid: {', '.join(METHODS)}")
        if selection_config.position not in POSITIONS:
            raise ConfigError(f"only_infer: position must be one of {', '.join(POSITIONS)}")
        lengths = train.resolve_lengths(selection_config, n, model.config.num_hidden_layers)
        train.apply_selection(model, selection_config, lengths)
        method, position = selection_config.method, selection_config.position
        selection_spec = {
            "lengths": lengths, "method": method, "m": selection_config.m, "position": position,
            "pool_windows": selection_config.pool_windows, "seed": selection_config.seed,
        }  # fmt: skip
    elif lengths is not None and n != run_info.get("task", {}).get("max_length", n):
        raise DataError(
            f"task {task_data.name}: input length N={n} differs from the N={run_info['task']['max_length']} the "
            f"schedule {lengths} was made for"
        )
    encodings = tokenize_split(tokenizer, task_data, split)
    train.check_labels_fit(task_data, model.config.num_labels, encodings["labels"], str(folder))
    encodings = train.take(encodings, train.subset_indices(len(encodings["labels"]), max_examples, run_config.seed))
    model.to(torch_device)

    logits = predict_logits(model, encodings, batch_size=eval_batch_size, device=torch_device)
    from pyramid_bert.metrics import class_shares, compute_metrics, predictions_from_logits

    predictions = predictions_from_logits(logits, is_regression=task_data.is_regression)
    scores = compute_metrics(task_data.metric, predictions, encodings["labels"].numpy())
    result: dict[str, Any] = {
        "checkpoint": str(folder), "task": task_data.name, "split": split, "examples": int(len(predictions)),
        "metric_name": task_data.metric, "metric": scores[task_data.metric], "scores": scores,
        "method": method, "lengths": lengths, "position": position, "n": n, "only_infer": only_infer or None,
        **train.pyramid_summary(model.config, n, lengths, method, position),
        "speedup_median": None, "speedup_q25": None, "speedup_q75": None, "speed": None, "memory": None,
        "device": str(torch_device),
    }  # fmt: skip
    result.update(class_shares(predictions, encodings["labels"].numpy(), is_regression=task_data.is_regression))
    selected = lengths is not None and (only_infer or is_pyramidized(model))
    if measure_speed and selected:
        dense_model = _load_dense(folder).to(torch_device)
        train_batch = run_config.resolved_batch_size() if time_train_step else None
        speed = time_speed(
            model, dense_model, encodings, batch_size=eval_batch_size, train_batch_size=train_batch,
            device=torch_device, warmup=timing_warmup, repeats=timing_repeats,
        )  # fmt: skip
        result["speed"] = speed
        result.update({f"speedup_{key}": value for key, value in speed["speedup"].items()})
        del dense_model
    elif measure_speed:
        result.update({"speedup_median": 1.0, "speedup_q25": 1.0, "speedup_q75": 1.0})
    if measure_memory:
        result["memory"] = measure_memory_pair(
            folder, n=n, batch_size=eval_batch_size, train_batch_size=run_config.resolved_batch_size(),
            device=str(torch_device), selection=selection_spec, include_pyramid=bool(selected),
        )  # fmt: skip
    result["eval_seconds"] = time.perf_counter() - started
    if write_json:
        suffix = "-only-infer" if only_infer else ""
        checkpoint.atomic_write_json(folder / f"eval-{split}{suffix}.json", result)
    return result


def measure_memory_pair(
    folder: Path,
    *,
    n: int,
    batch_size: int,
    train_batch_size: int,
    device: str,
    selection: dict[str, Any] | None,
    include_pyramid: bool,
) -> dict[str, Any]:
    """Peak memory (MB) of a training step and of inference, dense and pyramid, each in a fresh process."""
    from pyramid_bert.memory import measure_peak_memory

    memory: dict[str, Any] = {}
    variants = ("dense", "pyramid") if include_pyramid else ("dense",)
    for mode, size in (("train", train_batch_size), ("infer", batch_size)):
        for variant in variants:
            memory[f"{mode}_{variant}"] = measure_peak_memory(
                folder, mode=mode, variant=variant, batch_size=size, seq_len=n, device=device,
                selection=selection if variant == "pyramid" else None,
            )  # fmt: skip
    return memory
