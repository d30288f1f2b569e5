"""ONNX translations of the two operators of a pyramid forward that ``torch.onnx.export(dynamo=True)`` cannot
translate itself (torch 2.13, onnxscript 0.7): needs the ``[onnx]`` extra (``pip install "pyramid-bert[onnx]"``).

- ``aten.sort.stable`` (every selection method sorts with ``stable=True``): ONNX ``TopK`` over the whole axis.
  ``TopK`` breaks ties by the lower index, which is exactly a stable sort, ascending or descending.
- ``pyramid_bert::kcenter_rounds`` (the k-center rounds of coreset selection with m < k - 1, an opaque custom
  operator of compiled graphs, see :func:`pyramid_bert.selection.kcenter_greedy`): the same greedy rounds as
  :func:`pyramid_bert.selection._kcenter_rounds_torch`, as an ONNX ``Loop`` of ``ceil((k - 1) / m)`` rounds whose
  count is read at run time, so one graph serves every sequence length (``k`` and ``m`` may be symbolic).

:data:`TRANSLATIONS` is the ``custom_translation_table`` :mod:`pyramid_bert.export` hands the exporter.
"""

from __future__ import annotations

from collections.abc import Callable

import onnxscript
import torch
from onnxscript import BOOL, FLOAT, INT64
from onnxscript import opset18 as op

import pyramid_bert.selection  # noqa: F401 - registers torch.ops.pyramid_bert.kcenter_rounds

__all__ = ["TRANSLATIONS", "kcenter_rounds", "sort_stable"]


def sort_stable(self, stable: bool | None = None, dim: int = -1, descending: bool = False):  # noqa: ANN001, ANN201
    """``aten.sort.stable(self, stable, dim, descending) -> (values, indices)`` as one ``TopK`` over the axis."""
    size = op.Reshape(op.Gather(op.Shape(self), dim, axis=0), op.Constant(value_ints=[1]))
    return op.TopK(self, size, axis=dim, largest=descending, sorted=True)


@onnxscript.script(default_opset=op)
def kcenter_rounds(gram: FLOAT, mask: BOOL, k: INT64, per_round: INT64) -> INT64:
    """``gram [B, N, N]`` (float32 Gram matrix), ``mask [B, N]``, ``k``, ``per_round`` -> selection order ``[B, k]``.

    Distances as :func:`pyramid_bert.selection.sq_distances_from_dots` (clamped at 0, rounding noise below 1e-6 of
    the norms snapped to 0); score -1 for padding, -inf once chosen; each round takes the ``m`` highest scores (ties:
    lower index, TopK's rule) and lowers every score to the distance to its nearest new center. The last round may
    take more than needed: the result is cut to ``k`` (the first of a stable top-m are the top-take); ``m``
    above N counts as N (one round then takes every token it needs)."""
    eye = op.EyeLike(op.Gather(gram, 0, axis=0))
    sq_norms = op.ReduceSum(gram * eye, op.Constant(value_ints=[2]), keepdims=0)
    norm_sum = op.Unsqueeze(sq_norms, op.Constant(value_ints=[2])) + op.Unsqueeze(sq_norms, op.Constant(value_ints=[1]))
    dist = op.Max(norm_sum - op.Constant(value_float=2.0) * gram, op.Constant(value_float=0.0))
    dist = op.Where(dist <= op.Constant(value_float=1e-6) * norm_sum, op.Constant(value_float=0.0), dist)
    score = op.Where(mask, op.Gather(dist, op.Constant(value_int=0), axis=1), op.Constant(value_float=-1.0))
    cls = op.Expand(
        op.Constant(value_ints=[0]), op.Concat(op.Shape(gram, start=0, end=1), op.Constant(value_ints=[1]), axis=0)
    )
    minus_inf = op.Constant(value_float=float("-inf"))
    score = op.ScatterElements(score, cls, op.Expand(minus_inf, op.Shape(cls)), axis=1)
    tokens = op.Squeeze(op.Shape(gram, start=2, end=3))
    m = op.Min(op.Squeeze(op.Reshape(per_round, op.Constant(value_ints=[-1]))), tokens)  # TopK takes at most N
    rounds = op.Div(k + m - op.Constant(value_int=2), m)
    chosen = cls
    for _ in range(rounds):
        top, new = op.TopK(score, op.Reshape(m, op.Constant(value_ints=[1])), axis=1, largest=1, sorted=1)
        chosen = op.Concat(chosen, new, axis=1)
        score = op.ScatterElements(score, new, op.Expand(minus_inf, op.Shape(new)), axis=1)
        rows_at = op.Expand(
            op.Unsqueeze(new, op.Constant(value_ints=[2])),
            op.Concat(op.Shape(new), op.Shape(gram, start=2, end=3), axis=0),
        )
        nearest = op.ReduceMin(op.GatherElements(dist, rows_at, axis=1), op.Constant(value_ints=[1]), keepdims=0)
        score = op.Min(score, nearest)
    end = op.Reshape(k, op.Constant(value_ints=[1]))
    return op.Slice(chosen, op.Constant(value_ints=[0]), end, op.Constant(value_ints=[1]))


#: torch operator -> its ONNX translation (``torch.onnx.export(..., custom_translation_table=TRANSLATIONS)``).
TRANSLATIONS: dict[object, Callable] = {
    torch.ops.aten.sort.stable: sort_stable,
    torch.ops.pyramid_bert.kcenter_rounds.default: kcenter_rounds,
}
