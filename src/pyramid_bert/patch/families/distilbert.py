"""DistilBERT: ``transformer.layer[j]`` is a ``TransformerBlock``: ``attention`` (self-attention, output projection)
then ``sa_layer_norm`` over its residual; ``ffn`` then ``output_layer_norm`` over its residual. Its config names the
geometry ``dim`` / ``hidden_dim`` / ``n_layers``; its attention costs what BERT's does."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput

from pyramid_bert.patch.families.base import Family
from pyramid_bert.patch.masks import key_padding_mask


def distilbert_encoder(model: nn.Module) -> nn.Module | None:
    transformer = getattr(getattr(model, "base_model", model), "transformer", None)
    return transformer if isinstance(getattr(transformer, "layer", None), nn.ModuleList) else None


class DistilBertEncoderHooks:
    """``Transformer.forward``: the model's 4-D mask (or None) in, ``BaseModelOutput`` out."""

    def _pyramid_layers(self) -> list[nn.Module]:
        return list(self.layer)

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any):
        """``hidden_states [B, N, D]`` -> ``last_hidden_state [B, l_L, D]`` (CLS first, original order)."""
        batch, tokens, _ = hidden_states.shape
        key_mask, kind = key_padding_mask(attention_mask, batch, tokens, hidden_states.device)
        hidden_states, _ = self._pyramid_run(hidden_states, key_mask, kind, **kwargs)
        return BaseModelOutput(last_hidden_state=hidden_states)


class DistilBertLayerHooks:
    """How a ``TransformerBlock`` runs its two sublayers (post-LayerNorm, as BERT)."""

    def _pyramid_attention(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs):
        """``[B, n, D]`` -> (``sa_layer_norm(attention + hidden)`` ``[B, n, D]``, probabilities or None)."""
        output, weights = self.attention(hidden, attention_mask=attention_mask, **kwargs)
        return self.sa_layer_norm(output + hidden), weights

    def _pyramid_ffn(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.output_layer_norm(self.ffn(hidden) + hidden)

    def _pyramid_query_key(self) -> tuple[nn.Module, nn.Module]:
        return self.attention.q_lin, self.attention.k_lin

    def _pyramid_heads(self) -> tuple[int, int]:
        return self.attention.n_heads, self.attention.attention_head_size


DISTILBERT = Family(
    name="DistilBERT",
    model_types=("distilbert",),
    encoder=distilbert_encoder,
    encoder_hooks=DistilBertEncoderHooks,
    layer_hooks=DistilBertLayerHooks,
)
