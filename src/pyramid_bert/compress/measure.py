"""What ``compress`` measures for one model: the dense start, dev and test metrics, and the real speedup.

The real speedup is :func:`pyramid_bert.measure.speed.measure_split_speed`'s ``real`` pair: the pyramid model and its
dense twin (the same weights without selection) on the same length-sorted batches, each padded to its longest
example, interleaved repeats in this process, median of the paired ratios.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import AutoConfig, AutoModelForSequenceClassification

from pyramid_bert.data import tokenize_split
from pyramid_bert.errors import CheckpointError
from pyramid_bert.measure.speed import measure_split_speed
from pyramid_bert.patch.hf import is_pyramidized, unpyramidize
from pyramid_bert.training.config import subset_indices, take
from pyramid_bert.training.scoring import score_split

if TYPE_CHECKING:
    from pyramid_bert.data import TaskData


def is_fine_tuned_classifier(source: str | Path, task: TaskData) -> bool:
    """Whether ``source`` already is a sequence classifier with a head for ``task`` (then it is the dense model)."""

    try:
        config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"--model: cannot read the config of {source} ({error})") from None
    has_head = any(name.endswith("ForSequenceClassification") for name in config.architectures or [])
    return has_head and config.num_labels == task.num_labels


def load_dense(path: str | Path) -> Any:
    """The sequence classifier at ``path`` without token selection (eval mode)."""

    model = AutoModelForSequenceClassification.from_pretrained(path)
    if is_pyramidized(model):
        unpyramidize(model)
    return model.eval()


def metric_of(model: Any, tokenizer: Any, task: TaskData, split: str, *, batch_size: int, device: Any) -> dict[str, Any]:
    """The task metric of ``model`` on ``split`` (``metric``) and its ``predictions`` and ``labels``."""

    scored = score_split(model, tokenizer, task, split, batch_size=batch_size, device=device, keep_predictions=True)
    return {"metric": float(scored["metric"]), "predictions": scored["predictions"], "labels": scored["labels"]}


def real_speedup(
    pyramid: Any,
    dense: Any,
    tokenizer: Any,
    task: TaskData,
    *,
    examples: int,
    batch_size: int,
    repeats: int,
    device: Any,
    seed: int = 0,
) -> dict[str, float]:
    """``{"speedup", "speedup_q25", "speedup_q75", "predicted", "examples"}`` over a seeded sample of dev."""

    encodings = tokenize_split(tokenizer, task, "dev")
    encodings = take(encodings, subset_indices(len(encodings["labels"]), examples, seed))
    speed = measure_split_speed(
        pyramid.to(device), dense.to(device), encodings, batch_size=batch_size, device=device,
        dense_modes=("padded", "sorted"), warmup=1, repeats=repeats,
    )  # fmt: skip
    real = speed["real_speedup"]
    return {
        "speedup": float(real["median"]), "speedup_q25": float(real["q25"]), "speedup_q75": float(real["q75"]),
        "predicted": float(speed["real_predicted"]), "examples": int(speed["examples"]),
    }  # fmt: skip
