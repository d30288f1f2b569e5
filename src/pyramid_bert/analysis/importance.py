"""Token importance by core-set order (the paper's Figures 4-5, Section 6.3).

In a densely fine-tuned model, at encoder j: take the embeddings right after the attention sublayer (where
Pyramid-BERT selects, ``position="middle"``), order the real tokens by ``kcenter_greedy`` (selection order =
importance order, CLS first), remove the k-th token of that order, run the rest of the model (layer j's FFN and
every later layer) on the remaining tokens, and compare the pruned model's predictions with the dense model's
by their mutual information (scikit-learn's ``mutual_info_score``, natural log: at most ``ln 2`` for a
balanced binary task). The paper expects MI to rise with k (less important tokens matter less).

An input with fewer than k real tokens has no k-th token: its prediction is the dense one (the token removed
would be padding, which is masked). So MI at large k is pulled towards the entropy of the dense predictions;
``mi_affected`` gives the MI over the inputs that do have a k-th token, beside the paper's MI over all inputs.

Removal really shrinks the tensors (as pyramidize does). :func:`pruned_logits` is the batched path; the
test compares it with :func:`pruned_logits_reference`, one input at a time without padding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.metrics import mutual_info_score
from tqdm.auto import tqdm

from pyramid_bert.errors import ConfigError
from pyramid_bert.selection import kcenter_greedy

#: Model types whose classification head reads the whole sequence (CLS inside the head) rather than a pooler.
_SEQUENCE_HEADS = ("roberta", "xlm-roberta", "camembert", "electra")


def mutual_information(predictions: np.ndarray, reference: np.ndarray) -> float:
    """Mutual information (nats) between two label vectors ``[n]``: scikit-learn's ``mutual_info_score``."""

    return float(mutual_info_score(reference, predictions))


def entropy(labels: np.ndarray) -> float:
    """Entropy (nats) of a label vector ``[n]``: the MI of the labels with themselves."""
    _, counts = np.unique(labels, return_counts=True)
    shares = counts / counts.sum()
    return float(-(shares * np.log(shares)).sum())


def _additive_mask(mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``[B, n]`` (True = real) -> additive ``[B, 1, 1, n]`` (0 or the dtype's minimum)."""
    additive = torch.zeros(mask.shape, dtype=dtype, device=mask.device)
    return additive.masked_fill_(~mask, torch.finfo(dtype).min)[:, None, None, :]


def _parts(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.ModuleList]:
    base = model.base_model
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if not isinstance(layers, torch.nn.ModuleList) or not hasattr(model, "classifier"):
        raise ConfigError(f"--model: analyze importance needs a BERT-family classifier; got {type(model).__name__}")
    return base, layers


def to_middle(model: torch.nn.Module, inputs: dict[str, torch.Tensor], layer: int) -> torch.Tensor:
    """Embeddings after the attention sublayer of encoder ``layer`` (1-based): ``[B, N, D]``.

    ``inputs``: ``input_ids``, ``attention_mask`` (and ``token_type_ids``) ``[B, N]``.
    """
    base, layers = _parts(model)
    if not 1 <= layer <= len(layers):
        raise ConfigError(f"--layers: encoder {layer} is out of range; valid: 1..{len(layers)}")
    embed_args = {"input_ids": inputs["input_ids"]}
    if "token_type_ids" in inputs:
        embed_args["token_type_ids"] = inputs["token_type_ids"]
    hidden = base.embeddings(**embed_args)
    mask = _additive_mask(inputs["attention_mask"].bool(), hidden.dtype)
    for block in layers[: layer - 1]:
        hidden = _layer_output(block(hidden, mask))
    return layers[layer - 1].attention(hidden, mask)[0]


def from_middle(model: torch.nn.Module, middle: torch.Tensor, mask: torch.Tensor, layer: int) -> torch.Tensor:
    """Logits ``[B, C]`` from ``middle [B, n, D]`` (after encoder ``layer``'s attention; ``mask [B, n]``, CLS at 0)."""
    base, layers = _parts(model)
    hidden = layers[layer - 1].feed_forward_chunk(middle)
    additive = _additive_mask(mask.bool(), hidden.dtype)
    for block in layers[layer:]:
        hidden = _layer_output(block(hidden, additive))
    if model.config.model_type in _SEQUENCE_HEADS:
        return model.classifier(hidden)
    pooled = base.pooler(hidden) if base.pooler is not None else hidden[:, 0]
    return model.classifier(model.dropout(pooled))


def _layer_output(output: torch.Tensor | tuple) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


def selection_order(middle: torch.Tensor, mask: torch.Tensor, m: int | float | None) -> torch.Tensor:
    """Every token in core-set selection order: ``[B, n]`` indices, CLS first, real tokens before padding."""

    return kcenter_greedy(middle, middle.shape[1], m=m, mask=mask.bool())


def pruned_logits(
    model: torch.nn.Module, middle: torch.Tensor, mask: torch.Tensor, order: torch.Tensor, k: int, layer: int
) -> torch.Tensor:
    """Logits ``[B, C]`` with the ``k``-th token (1-based) of ``order [B, n]`` removed from ``middle [B, n, D]``."""
    batch, n, _ = middle.shape
    keep = torch.cat([order[:, : k - 1], order[:, k:]], dim=1).sort(dim=1).values  # original order, [B, n-1]
    kept = middle.gather(1, keep[:, :, None].expand(-1, -1, middle.shape[2]))
    return from_middle(model, kept, mask.gather(1, keep), layer)


def pruned_logits_reference(
    model: torch.nn.Module, middle: torch.Tensor, order: torch.Tensor, k: int, layer: int
) -> torch.Tensor:
    """The obvious path for one input without padding: ``middle [1, n, D]``, ``order [1, n]`` -> ``[1, C]``."""
    position = int(order[0, k - 1])
    kept = torch.cat([middle[:, :position], middle[:, position + 1 :]], dim=1)
    return from_middle(model, kept, torch.ones(1, kept.shape[1], dtype=torch.bool), layer)


@dataclass
class ImportanceCurve:
    """One curve of Figure 4/5: for encoder ``layer`` and ``m``, per k = 1..N: MI over all inputs, MI over the
    inputs that have a k-th real token, how many do, and the agreement with the dense predictions."""

    layer: int
    m: int | float | None
    mi: list[float]
    mi_affected: list[float]
    affected: list[int]
    agreement: list[float]


def importance_curves(
    model: torch.nn.Module,
    inputs: dict[str, torch.Tensor],
    *,
    layers: Sequence[int],
    ms: Sequence[int | float | None],
    batch_size: int = 64,
    progress: bool = False,
) -> tuple[list[ImportanceCurve], float]:
    """Every (layer, m) curve over ``inputs`` (``[n, N]`` tensors) and the entropy of the dense predictions.

    Inputs are sorted by real length and each batch is cut to its longest input; only the inputs with a k-th
    real token are recomputed for each k.
    """

    lengths = inputs["attention_mask"].sum(dim=1)
    sort = torch.argsort(lengths, descending=True, stable=True)
    n_max = int(inputs["attention_mask"].shape[1])
    count = int(lengths.shape[0])
    model.eval()
    with torch.inference_mode():
        dense = _dense_predictions(model, inputs, sort, batch_size)
        curves = []
        bar = tqdm(total=len(layers) * len(ms) * count, desc="importance", unit="input", disable=not progress)
        for layer in layers:
            for m in ms:
                pruned = np.repeat(dense[None, :], n_max, axis=0)  # [N, n]: k-1 -> predictions
                for start in range(0, count, batch_size):
                    rows = sort[start : start + batch_size]
                    width = int(lengths[rows].max())
                    batch = {key: value[rows, :width] for key, value in inputs.items() if key != "labels"}
                    mask = batch["attention_mask"].bool()
                    middle = to_middle(model, batch, layer)
                    order = selection_order(middle, mask, m)
                    for k in range(1, width + 1):
                        has = lengths[rows] >= k
                        if not bool(has.any()):
                            continue
                        logits = pruned_logits(model, middle[has], mask[has], order[has], k, layer)
                        pruned[k - 1, rows[has].numpy()] = logits.argmax(dim=1).numpy()
                    bar.update(len(rows))
                curves.append(_curve(layer, m, pruned, dense, lengths.numpy()))
        bar.close()
    return curves, entropy(dense)


def _dense_predictions(
    model: torch.nn.Module, inputs: dict[str, torch.Tensor], sort: torch.Tensor, batch_size: int
) -> np.ndarray:
    lengths = inputs["attention_mask"].sum(dim=1)
    predictions = np.zeros(len(sort), dtype=np.int64)
    for start in range(0, len(sort), batch_size):
        rows = sort[start : start + batch_size]
        width = int(lengths[rows].max())
        batch = {key: value[rows, :width] for key, value in inputs.items() if key != "labels"}
        predictions[rows.numpy()] = model(**batch).logits.argmax(dim=1).numpy()
    return predictions


def _curve(
    layer: int, m: int | float | None, pruned: np.ndarray, dense: np.ndarray, lengths: np.ndarray
) -> ImportanceCurve:
    mi, mi_affected, affected, agreement = [], [], [], []
    for k in range(1, pruned.shape[0] + 1):
        row = pruned[k - 1]
        hit = lengths >= k
        mi.append(mutual_information(row, dense))
        mi_affected.append(mutual_information(row[hit], dense[hit]) if hit.sum() > 1 else float("nan"))
        affected.append(int(hit.sum()))
        agreement.append(float((row == dense).mean()))
    return ImportanceCurve(layer, m, mi, mi_affected, affected, agreement)
