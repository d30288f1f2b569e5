"""Seeded training and evaluation of from-scratch LRA classifiers on token-id arrays (CPU-friendly).

AdamW with linear warm-up then linear decay, gradient clipping, cross-entropy; the example order comes from a
``torch.Generator`` seeded with ``seed``, the weights from the model's own seed, so two runs with the same
inputs and thread count give the same losses on CPU.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from sklearn.metrics import accuracy_score
from torch import nn
from tqdm.auto import tqdm

from pyramid_bert.errors import ConfigError


@dataclass
class LraTrainConfig:
    """Hyper-parameters of :func:`train_lra_model`.

    Attributes:
        epochs: passes over the training examples (a float runs a fraction of the last epoch).
        lr: peak AdamW learning rate.
        batch_size: training batch size; eval_batch_size: evaluation batch size.
        weight_decay: AdamW weight decay.
        warmup_fraction: share of the steps with a linearly rising learning rate.
        max_grad_norm: gradient-norm clipping (0 disables it).
        seed: seed of the example order.
        progress: show tqdm bars.
    """

    epochs: float = 3.0
    lr: float = 1e-3
    batch_size: int = 32
    eval_batch_size: int = 128
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    max_grad_norm: float = 1.0
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs <= 0:
            raise ConfigError(f"epochs must be > 0, got {self.epochs}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        for name in ("batch_size", "eval_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be an int >= 1, got {value!r}")
        if not 0.0 <= self.warmup_fraction < 1.0:
            raise ConfigError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _as_tensors(
    tokens: np.ndarray | torch.Tensor, mask: np.ndarray | torch.Tensor | None, labels: np.ndarray | torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    ids = torch.as_tensor(tokens, dtype=torch.long)
    if ids.dim() != 2:
        raise ConfigError(f"tokens must be [n, N], got shape {tuple(ids.shape)}")
    mask_t = None if mask is None else torch.as_tensor(mask, dtype=torch.bool)
    if mask_t is not None and mask_t.shape != ids.shape:
        raise ConfigError(f"mask must have the shape of tokens {tuple(ids.shape)}, got {tuple(mask_t.shape)}")
    labels_t = None if labels is None else torch.as_tensor(labels, dtype=torch.long)
    if labels_t is not None and labels_t.shape != (ids.shape[0],):
        raise ConfigError(f"labels must be [n] = [{ids.shape[0]}], got {tuple(labels_t.shape)}")
    return ids, mask_t, labels_t


def train_lra_model(
    model: nn.Module,
    tokens: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    config: LraTrainConfig,
    mask: np.ndarray | torch.Tensor | None = None,
) -> list[float]:
    """Train ``model`` in place on ``tokens int [n, N]``, ``labels int [n]`` (``mask`` bool ``[n, N]``, None =
    all real). Returns the training loss of every step."""
    ids, mask_t, labels_t = _as_tensors(tokens, mask, labels)
    count = ids.shape[0]
    steps_per_epoch = math.ceil(count / config.batch_size)
    total_steps = max(1, round(config.epochs * steps_per_epoch))
    warmup_steps = round(config.warmup_fraction * total_steps)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    def schedule(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    order_generator = torch.Generator().manual_seed(config.seed)
    losses: list[float] = []
    model.train()
    bar = tqdm(total=total_steps, desc="train", disable=not config.progress, leave=False)
    while len(losses) < total_steps:
        order = torch.randperm(count, generator=order_generator)
        for start in range(0, count, config.batch_size):
            if len(losses) >= total_steps:
                break
            batch = order[start : start + config.batch_size]
            logits = model(ids[batch], None if mask_t is None else mask_t[batch])
            loss = nn.functional.cross_entropy(logits, labels_t[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.max_grad_norm > 0:
                nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    bar.close()
    model.eval()
    return losses


@torch.inference_mode()
def predict_lra(
    model: nn.Module,
    tokens: np.ndarray | torch.Tensor,
    mask: np.ndarray | torch.Tensor | None = None,
    *,
    batch_size: int = 128,
    progress: bool = False,
) -> np.ndarray:
    """Predicted class ids ``int64 [n]`` of ``tokens [n, N]`` (model in eval mode)."""
    ids, mask_t, _ = _as_tensors(tokens, mask, None)
    model.eval()
    predictions = []
    for start in tqdm(range(0, ids.shape[0], batch_size), desc="eval", disable=not progress, leave=False):
        end = start + batch_size
        logits = model(ids[start:end], None if mask_t is None else mask_t[start:end])
        predictions.append(logits.argmax(dim=-1))
    return torch.cat(predictions).numpy()


def evaluate_accuracy(
    model: nn.Module,
    tokens: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    mask: np.ndarray | torch.Tensor | None = None,
    *,
    batch_size: int = 128,
) -> float:
    """Accuracy of ``model`` on ``tokens [n, N]`` against ``labels [n]`` (scikit-learn's accuracy_score)."""

    predictions = predict_lra(model, tokens, mask, batch_size=batch_size)
    return float(accuracy_score(np.asarray(labels), predictions))
