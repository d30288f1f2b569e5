"""The FLOPs model's geometry of a model config, per encoder family: the keyword arguments of
:func:`pyramid_bert.schedule.encoder_flops` (``hidden``, ``intermediate``, ``num_layers``, and where a family's
layer costs differ from BERT's, ``ffn_matrices`` and ``relative_positions``).

Pure Python (reads config attributes only), so the command line and the training loop can use it without torch.

- BERT, RoBERTa, XLM-R, CamemBERT, ELECTRA, ALBERT (per call of its shared layer): BERT's layer costs.
- DistilBERT: BERT's costs; its config names them ``dim`` / ``hidden_dim`` / ``n_layers``.
- DeBERTa-v2/v3: plus the relative-position terms: each token's query (c2p) or key (p2c) is scored against all
  ``2 x span`` relative position embeddings (span: ``position_buckets``, else ``max_relative_positions``, else
  ``max_position_embeddings``): ``relative_positions = 2 x span x terms``.
- ModernBERT: a gated FFN (``Wi``: H -> 2I, ``Wo``: I -> H): ``ffn_matrices = 3``. Its local layers' sliding
  window saves nothing in the eager and SDPA kernels (a mask over the full score matrix), so every layer's
  attention costs a full one.
"""

from __future__ import annotations

from typing import Any


def flops_geometry(config: Any) -> dict[str, int]:
    """``encoder_flops`` keywords for a model of this config (BERT's attribute names for unknown model types)."""
    model_type = getattr(config, "model_type", None)
    if model_type == "distilbert":
        return dict(hidden=config.dim, intermediate=config.hidden_dim, num_layers=config.n_layers)
    geometry = dict(
        hidden=config.hidden_size, intermediate=config.intermediate_size, num_layers=config.num_hidden_layers
    )
    if model_type == "deberta-v2" and getattr(config, "relative_attention", False):
        geometry["relative_positions"] = 2 * _deberta_span(config) * _deberta_terms(config)
    if model_type == "modernbert":
        geometry["ffn_matrices"] = 3
    return geometry


def _deberta_span(config: Any) -> int:
    buckets = getattr(config, "position_buckets", -1)
    if buckets > 0:
        return buckets
    span = getattr(config, "max_relative_positions", -1)
    return span if span >= 1 else config.max_position_embeddings


def _deberta_terms(config: Any) -> int:
    return len([kind for kind in (getattr(config, "pos_att_type", None) or []) if kind in ("c2p", "p2c")])
