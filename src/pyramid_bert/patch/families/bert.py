"""BERT and the encoders built like it (RoBERTa, XLM-R, CamemBERT, ELECTRA): ``encoder.layer[j]`` with
``attention`` (self-attention, residual, LayerNorm) and ``feed_forward_chunk`` (intermediate + output, residual,
LayerNorm)."""

from __future__ import annotations

import torch
from torch import nn
from transformers.pytorch_utils import apply_chunking_to_forward

from pyramid_bert.patch.families.base import Family


def bert_encoder(model: nn.Module) -> nn.Module | None:
    """``model.base_model.encoder`` when its layers have the BERT structure, else None."""
    encoder = getattr(getattr(model, "base_model", model), "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not isinstance(layers, nn.ModuleList) or not all(
        hasattr(layer, "attention") and hasattr(layer, "feed_forward_chunk") for layer in layers
    ):
        return None
    return encoder


class BertEncoderHooks:
    """The encoder's layers, one module per schedule index (the shared forward is BERT's)."""

    def _pyramid_layers(self) -> list[nn.Module]:
        return list(self.layer)


class BertLayerHooks:
    """How a BERT layer runs its two sublayers."""

    def _pyramid_attention(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs):
        """``[B, n, D]`` -> (attention sublayer output ``[B, n, D]``, probabilities ``[B, H, n, n]`` or None)."""
        return self.attention(hidden, attention_mask, **kwargs)

    def _pyramid_ffn(self, hidden: torch.Tensor) -> torch.Tensor:
        return apply_chunking_to_forward(self.feed_forward_chunk, self.chunk_size_feed_forward, self.seq_len_dim, hidden)

    def _pyramid_query_key(self) -> tuple[nn.Module, nn.Module]:
        return self.attention.self.query, self.attention.self.key

    def _pyramid_heads(self) -> tuple[int, int]:
        return self.attention.self.num_attention_heads, self.attention.self.attention_head_size


BERT = Family(
    name="BERT",
    model_types=("bert", "roberta", "xlm-roberta", "camembert", "electra"),
    encoder=bert_encoder,
    encoder_hooks=BertEncoderHooks,
    layer_hooks=BertLayerHooks,
)
