"""DeBERTa-v2 and v3 (``deberta-v2`` code): disentangled attention scores each query-key pair by content and by
their RELATIVE POSITION (content-to-position and position-to-content terms over log-bucketed distances).

After selection the kept tokens are no longer at positions 0..k-1: the encoder follows each kept token's original
input position (``state.positions_in [B, n]``) and builds every layer's relative positions from those,
``rel[b, i, j] = bucket(p[b, i] - p[b, j])``, exactly as ``build_relative_position`` builds them from 0..n-1 for
the dense model. They differ per example, so they are handed to the model's own ``disentangled_attention_bias`` in
its per-(example, head) form ``[1, B * H, n, n]`` (its gathers index ``[B * H, n, n]``). While no layer has
dropped a token yet the model builds them itself, as in the dense forward.

Also: the layer mask is DeBERTa's pairwise bool ``[B, 1, n, n]`` (query and key real); Attention-select reads the
layer's own probabilities (``output_attentions``; DeBERTa has no SDPA path). Refused, with the reason: the
``conv`` layer of DeBERTa-v2 xlarge / xxlarge (``conv_kernel_size > 0``), ``z_steps > 1`` (enhanced mask decoder
re-runs), and duplicity attention (DeBERTa's attention takes a boolean mask: no place for the log-size bias).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.deberta_v2.modeling_deberta_v2 import make_log_bucket_position

from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.families.base import Family
from pyramid_bert.patch.masks import key_padding_mask
from pyramid_bert.spec import PyramidSettings


def deberta_encoder(model: nn.Module) -> nn.Module | None:
    encoder = getattr(getattr(model, "base_model", model), "encoder", None)
    if not isinstance(getattr(encoder, "layer", None), nn.ModuleList) or not hasattr(encoder, "get_rel_embedding"):
        return None
    return encoder


def relative_positions(positions: torch.Tensor, heads: int, buckets: int, max_position: int) -> torch.Tensor:
    """Relative positions of kept tokens from their original positions ``[B, n]`` -> ``[1, B * heads, n, n]``
    (query minus key, log-bucketed as the model buckets them), the form DeBERTa's attention bias indexes by."""
    relative = positions[:, :, None] - positions[:, None, :]
    if buckets > 0 and max_position > 0:
        relative = make_log_bucket_position(relative, buckets, max_position)
    batch, tokens, _ = relative.shape
    return relative.to(torch.long)[:, None].expand(batch, heads, tokens, tokens).reshape(1, batch * heads, tokens, -1)


class DebertaEncoderHooks:
    """``DebertaV2Encoder.forward``: 2-D mask in; every layer's output (the model reads ``hidden_states``) out."""

    def _pyramid_layers(self) -> list[nn.Module]:
        return list(self.layer)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor, output_hidden_states: bool = True,
        output_attentions: bool = False, query_states: Any = None, relative_pos: Any = None, return_dict: bool = True,
    ):  # fmt: skip
        """``hidden_states [B, N, D]`` -> ``last_hidden_state [B, l_L, D]``, ``hidden_states`` (input + each layer)."""
        if query_states is not None or relative_pos is not None:
            raise ConfigError("pyramidize: DeBERTa's query_states / relative_pos re-runs (z_steps) are not supported")
        batch, tokens, _ = hidden_states.shape
        key_mask, kind = key_padding_mask(attention_mask, batch, tokens, hidden_states.device)
        last, outputs = self._pyramid_run(hidden_states, key_mask, kind, rel_embeddings=self.get_rel_embedding())
        every = (hidden_states, *outputs)
        if not return_dict:
            return (last, every)
        return BaseModelOutput(last_hidden_state=last, hidden_states=every)

    def _pyramid_call(self, layer: nn.Module, hidden: torch.Tensor, layer_mask: Any, state: Any, kwargs: dict):
        """One layer with DeBERTa's pairwise mask and the relative positions of its tokens' original positions."""
        key_mask = state.key_mask_in
        pairwise = key_mask[:, None, :, None] & key_mask[:, None, None, :]  # [B, 1, n, n]
        relative = None  # the model's own 0..n-1 while every row still holds its input in order
        if self.relative_attention and state.positions_in is not None:
            heads = layer.attention.self.num_attention_heads
            relative = relative_positions(state.positions_in, heads, self.position_buckets, self.max_relative_positions)
        wants_probabilities = state.settings.method == "attention"
        return layer(hidden, pairwise, relative_pos=relative, output_attentions=wants_probabilities, **kwargs)


class DebertaLayerHooks:
    """How a ``DebertaV2Layer`` runs its two sublayers."""

    def _pyramid_attention(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, relative_pos: torch.Tensor | None = None,
        rel_embeddings: torch.Tensor | None = None, output_attentions: bool = False,
    ):  # fmt: skip
        """``[B, n, D]`` -> (attention sublayer output ``[B, n, D]``, probabilities ``[B, H, n, n]`` or None)."""
        return self.attention(
            hidden, attention_mask, output_attentions=output_attentions, relative_pos=relative_pos,
            rel_embeddings=rel_embeddings,
        )  # fmt: skip

    def _pyramid_ffn(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.output(self.intermediate(hidden), hidden)

    def _pyramid_query_key(self) -> None:
        return None  # the layer returns its probabilities: nothing to capture

    def _pyramid_heads(self) -> tuple[int, int]:
        return self.attention.self.num_attention_heads, self.attention.self.attention_head_size


def check_deberta(model: nn.Module, settings: PyramidSettings) -> None:
    config = model.config
    if getattr(config, "conv_kernel_size", 0) > 0:
        raise ConfigError(
            "pyramidize: DeBERTa-v2 with conv_kernel_size > 0 (xlarge / xxlarge) is not supported: its convolution "
            "after layer 1 runs over the full input sequence"
        )
    if getattr(model.base_model, "z_steps", 0) > 1:
        raise ConfigError("pyramidize: DeBERTa with z_steps > 1 (re-runs of the last layer) is not supported")
    if settings.options.duplicity_attention:
        raise ConfigError(
            "--duplicity-attention: not supported for DeBERTa (its attention takes a boolean mask, with no place "
            "for the log-size bias); --merge works"
        )


DEBERTA = Family(
    name="DeBERTa-v2/v3",
    model_types=("deberta-v2",),
    encoder=deberta_encoder,
    encoder_hooks=DebertaEncoderHooks,
    layer_hooks=DebertaLayerHooks,
    check=check_deberta,
    attention_implementations=("eager",),
)
