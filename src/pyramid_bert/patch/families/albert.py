"""ALBERT: one set of layer weights shared by every layer. ``AlbertTransformer`` maps the embeddings to the hidden
size, then calls ``albert_layer_groups[g]`` ``num_hidden_layers`` times; with one layer per group (every released
ALBERT: ``inner_group_num = 1``) that is ONE ``AlbertLayer`` module called at every schedule index, each call at its
own length. So the pyramid state is per call: the encoder gives the shared module the state of schedule index j
right before call j (``layer._pyramid = states[j]``), and the module's class is patched once.

An ``AlbertLayer``: ``attention`` (self-attention, dense, residual, LayerNorm), then ``ff_chunk`` and
``full_layer_layer_norm`` over its residual. Per call it costs what a BERT layer costs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput
from transformers.pytorch_utils import apply_chunking_to_forward

from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.families.base import Family
from pyramid_bert.patch.masks import key_padding_mask
from pyramid_bert.spec import PyramidSettings


def albert_encoder(model: nn.Module) -> nn.Module | None:
    encoder = getattr(getattr(model, "base_model", model), "encoder", None)
    return encoder if isinstance(getattr(encoder, "albert_layer_groups", None), nn.ModuleList) else None


class AlbertEncoderHooks:
    """``AlbertTransformer.forward`` over the shared layer, one schedule index per call."""

    def _pyramid_layers(self) -> list[nn.Module]:
        """The module of each of the ``num_hidden_layers`` calls (repeats: the weights are shared)."""
        layers, groups = self.config.num_hidden_layers, self.config.num_hidden_groups
        return [self.albert_layer_groups[int(i / (layers / groups))].albert_layers[0] for i in range(layers)]

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs: Any):
        """Embeddings ``[B, N, E]`` -> ``last_hidden_state [B, l_L, D]`` (CLS first, original order)."""
        hidden_states = self.embedding_hidden_mapping_in(hidden_states)
        batch, tokens, _ = hidden_states.shape
        key_mask, kind = key_padding_mask(attention_mask, batch, tokens, hidden_states.device)
        hidden_states, _ = self._pyramid_run(hidden_states, key_mask, kind, **kwargs)
        return BaseModelOutput(last_hidden_state=hidden_states)


class AlbertLayerHooks:
    """How an ``AlbertLayer`` runs its two sublayers."""

    def _pyramid_attention(self, hidden: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs):
        return self.attention(hidden, attention_mask, **kwargs)

    def _pyramid_ffn(self, hidden: torch.Tensor) -> torch.Tensor:
        output = apply_chunking_to_forward(self.ff_chunk, self.chunk_size_feed_forward, self.seq_len_dim, hidden)
        return self.full_layer_layer_norm(output + hidden)

    def _pyramid_query_key(self) -> tuple[nn.Module, nn.Module]:
        return self.attention.query, self.attention.key

    def _pyramid_heads(self) -> tuple[int, int]:
        return self.attention.num_attention_heads, self.attention.attention_head_size


def check_albert(model: nn.Module, settings: PyramidSettings) -> None:
    """One layer per group: selection sits inside a layer, and a group of several would need a schedule per
    inner layer."""
    inner = model.config.inner_group_num
    if inner != 1:
        raise ConfigError(
            f"pyramidize: ALBERT with inner_group_num={inner} is not supported (selection sits in each layer call; "
            "every released ALBERT checkpoint has inner_group_num=1)"
        )


ALBERT = Family(
    name="ALBERT",
    model_types=("albert",),
    encoder=albert_encoder,
    encoder_hooks=AlbertEncoderHooks,
    layer_hooks=AlbertLayerHooks,
    check=check_albert,
)
