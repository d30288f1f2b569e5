"""Score a model on a task split: batched logits and the task metric (used by fine-tuning and evaluation)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pyramid_bert.data import tokenize_split
from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.hf import pyramid_settings
from pyramid_bert.training.batching import make_batches, restore_order
from pyramid_bert.training.config import subset_indices, take
from pyramid_bert.training.metrics import class_shares, compute_metrics, predictions_from_logits

if TYPE_CHECKING:
    from pyramid_bert.data import TaskData


def input_truncation(model: Any) -> int | None:
    """Input-first-k's k when ``model`` is pyramidized with it (its inputs are cut at tokenization), else None."""

    try:
        settings = pyramid_settings(model)
    except ConfigError:  # not a BERT-family model: no selection
        return None
    if settings is None or settings.method != "input_first_k" or not settings.lengths:
        return None
    return settings.lengths[0]


def tokenize_for_model(model: Any, tokenizer: Any, task: TaskData, split: str) -> dict[str, torch.Tensor]:
    """:func:`~pyramid_bert.data.tokenize_split` as ``model`` needs it: ``[n, N]`` tensors, and for Input-first-k
    each sequence truncated to k tokens by the tokenizer ([SEP] kept, pairs ``longest_first``) and padded to N.

    The model still cuts its input after k positions (a no-op then), so FLOPs and timing are unchanged.
    """

    return tokenize_split(tokenizer, task, split, truncate_to=input_truncation(model))


def predict_logits(
    model: Any, encodings: dict[str, torch.Tensor], *, batch_size: int, device: Any, batching: str = "sorted"
) -> np.ndarray:
    """Logits ``[num_examples, num_labels]`` of ``model`` (eval mode, no grad), in split order.

    ``batching`` (see :mod:`pyramid_bert.training.batching`): ``sorted`` (default, the fastest), ``dynamic`` or ``padded``.
    Predictions do not depend on it beyond float rounding: padding is masked, and every selection method except
    Random-select keeps the same real tokens of an example whatever its batch is padded to.
    """

    was_training = model.training
    model.eval()
    batches = make_batches(encodings, batch_size, batching)
    chunks = []
    with torch.inference_mode():
        for batch in batches:
            chunks.append(model(**batch.to(device).inputs).logits.float().cpu())
    model.train(was_training)
    return restore_order(batches, chunks).numpy() if chunks else np.zeros((0, model.config.num_labels))


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
    keep_predictions: bool = False,
) -> dict[str, Any]:
    """The task metric (and companions) of ``model`` on ``split``; ``max_examples`` takes a seeded subset;
    ``keep_predictions`` adds ``predictions`` and ``labels`` (lists, in the split's order) for paired comparisons."""

    if split not in task.splits:
        raise ConfigError(f"split: task {task.name} has no split {split!r}; valid: {', '.join(task.splits)}")
    encodings = tokenize_for_model(model, tokenizer, task, split)
    encodings = take(encodings, subset_indices(len(encodings["labels"]), max_examples, seed))
    logits = predict_logits(model, encodings, batch_size=batch_size, device=device)
    predictions = predictions_from_logits(logits, is_regression=task.is_regression)
    labels = encodings["labels"].numpy()
    scores = compute_metrics(task.metric, predictions, labels)
    return {
        "split": split, "examples": int(len(predictions)), "metric_name": task.metric,
        "metric": scores[task.metric], "scores": scores,
        **class_shares(predictions, labels, is_regression=task.is_regression),
        **({"predictions": predictions.tolist(), "labels": labels.tolist()} if keep_predictions else {}),
    }  # fmt: skip
