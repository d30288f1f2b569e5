"""Distillation from a fine-tuned dense teacher while a pyramid model fine-tunes (off by default).

``loss = (1 - w) * task loss + w * distillation loss``; for classification the distillation loss is
``T^2 * KL(softmax(teacher / T) || softmax(student / T))`` (Hinton et al.'s scaling keeps its gradients comparable
across temperatures), for regression the mean squared error between the two models' outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModelForSequenceClassification

from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.hf import is_pyramidized, unpyramidize


def distillation_loss(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float, *, regression: bool = False
) -> torch.Tensor:
    """``student``, ``teacher`` logits ``[B, C]`` (``[B, 1]`` for regression) -> a scalar loss (batch mean)."""
    if regression:
        return F.mse_loss(student.float(), teacher.float())
    log_student = F.log_softmax(student.float() / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher.float() / temperature, dim=-1)
    return F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True) * temperature**2


def distillation_loss_reference(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float, *, regression: bool = False
) -> torch.Tensor:
    """Slow :func:`distillation_loss`: the KL divergence summed term by term, one example at a time."""
    if regression:
        return ((student.double() - teacher.double()) ** 2).mean()
    total = torch.zeros((), dtype=torch.float64)
    for s_row, t_row in zip(student.double(), teacher.double(), strict=True):
        p = torch.softmax(t_row / temperature, dim=-1)
        q = torch.softmax(s_row / temperature, dim=-1)
        total = total + sum(p[c] * (torch.log(p[c]) - torch.log(q[c])) for c in range(len(p)))
    return total / len(student) * temperature**2


def combined_loss(task_loss: torch.Tensor, distill: torch.Tensor, weight: float) -> torch.Tensor:
    """``(1 - weight) * task_loss + weight * distill``."""
    return (1.0 - weight) * task_loss + weight * distill


def load_teacher(source: str | Path, num_labels: int, device: torch.device) -> Any:
    """A fine-tuned sequence classifier from ``source``, dense, in eval mode on ``device``, without gradients."""

    config = AutoConfig.from_pretrained(source)
    if not any(name.endswith("ForSequenceClassification") for name in config.architectures or []):
        raise ConfigError(
            f"--teacher: {source} is not a fine-tuned sequence classifier (no classification head); distillation "
            "needs one, e.g. the dense model of a warm start (--model runs/dense) or --teacher runs/dense"
        )
    if config.num_labels != num_labels:
        raise ConfigError(f"--teacher: {source} has {config.num_labels} outputs; the task has {num_labels}")
    teacher = AutoModelForSequenceClassification.from_pretrained(source)
    if is_pyramidized(teacher):
        unpyramidize(teacher)
    teacher.requires_grad_(False)
    return teacher.to(device).eval()
