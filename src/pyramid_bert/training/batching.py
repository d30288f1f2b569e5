"""How a split is cut into batches: padded to N (the paper's protocol) or padded per batch, as users batch.

- ``padded``: batches in split order, every example padded to the task's N (the paper's Appendix C);
- ``dynamic``: batches in split order, each padded only to its longest example (Hugging Face's
  ``DataCollatorWithPadding``);
- ``sorted``: the split sorted by length (longest first), then cut and padded per batch as ``dynamic`` (the
  usual way to batch for throughput).

Inputs are right-padded tokenizer outputs (``input_ids``, ``attention_mask``, ... ``[n, N]``), as
:func:`pyramid_bert.data.tokenize_split` makes them. Every batch carries the split positions of its examples,
so predictions can be put back in split order.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pyramid_bert.errors import ConfigError

BATCHING_MODES = ("padded", "dynamic", "sorted")


@dataclass
class Batch:
    """One batch: ``positions [b]`` of its examples in the split, ``inputs`` (``[b, width]`` each)."""

    positions: torch.Tensor
    inputs: dict[str, torch.Tensor]

    @property
    def width(self) -> int:
        """Token positions per example, padding included."""
        return int(self.inputs["input_ids"].shape[1])

    @property
    def longest(self) -> int:
        """Real tokens of the batch's longest example."""
        return int(self.inputs["attention_mask"].sum(dim=1).max()) if len(self.positions) else 0

    def to(self, device: torch.device | str) -> Batch:
        return Batch(self.positions, {key: value.to(device) for key, value in self.inputs.items()})


def check_batching(mode: str, flag: str = "--batching") -> str:
    """``mode`` if it is one of :data:`BATCHING_MODES`, else a ConfigError naming ``flag`` and the choices."""
    if mode not in BATCHING_MODES:
        raise ConfigError(f"{flag}: must be one of {', '.join(BATCHING_MODES)}; got {mode!r}")
    return mode


def real_lengths(encodings: dict[str, torch.Tensor]) -> torch.Tensor:
    """Real tokens per example ``[n]``; checks that padding is on the right (real tokens form a prefix)."""
    mask = encodings["attention_mask"].to(torch.bool)
    lengths = mask.sum(dim=1)
    prefix = torch.arange(mask.shape[1])[None, :] < lengths[:, None]
    if not torch.equal(mask, prefix):
        raise ConfigError("batching: inputs must be right-padded (real tokens first); set tokenizer.padding_side='right'")
    return lengths


def make_batches(
    encodings: dict[str, torch.Tensor], batch_size: int, mode: str = "padded", *, with_labels: bool = False
) -> list[Batch]:
    """Cut ``encodings`` (``[n, N]`` tensors, plus ``labels [n]``) into batches of ``batch_size`` per ``mode``.

    ``with_labels`` keeps ``labels`` in each batch's inputs (for training steps). ``dynamic`` and ``sorted`` trim
    every ``[b, N]`` tensor to ``[b, longest]``; ``sorted`` orders the split by decreasing length first (ties
    in split order).
    """
    check_batching(mode)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"--batch-size: must be an int >= 1, got {batch_size!r}")
    keys = [key for key in encodings if with_labels or key != "labels"]
    lengths = real_lengths(encodings)
    count = len(lengths)
    order = torch.sort(lengths, descending=True, stable=True).indices if mode == "sorted" else torch.arange(count)
    batches = []
    for start in range(0, count, batch_size):
        positions = order[start : start + batch_size]
        width = int(lengths[positions].max()) if mode != "padded" else None
        inputs = {}
        for key in keys:
            values = encodings[key][positions]
            inputs[key] = values[:, :width] if width is not None and values.dim() == 2 else values
        batches.append(Batch(positions, inputs))
    return batches


def batch_shapes(batches: list[Batch]) -> list[tuple[int, int, int]]:
    """``(batch_size, width, longest)`` per batch: what :func:`pyramid_bert.schedule.batches_flops` takes."""
    return [(len(batch.positions), batch.width, batch.longest) for batch in batches]


def restore_order(batches: list[Batch], outputs: list[torch.Tensor]) -> torch.Tensor:
    """Per-batch outputs ``[b, ...]`` -> one tensor ``[n, ...]`` in split order."""
    positions = torch.cat([batch.positions for batch in batches])
    stacked = torch.cat(outputs)
    result = torch.empty_like(stacked)
    result[positions] = stacked
    return result
