"""ModernBERT: pre-LayerNorm layers with rotary position embeddings, alternating local (sliding window) and global
attention, a final LayerNorm, and CLS or mean pooling in its classifier.

The encoder is ``ModernBertModel`` itself (its ``layers`` are its own children), so its forward is the pyramid
one: embeddings, then the shared loop, then ``final_norm``. Per layer, from the kept tokens' ORIGINAL positions
``p [B, n]`` (``state.positions_in``: the input's ``position_ids``, or 0..N-1, followed through every selection):

- rotary embeddings: the model's own ``rotary_emb(x, p, layer_type)``, i.e. cos / sin at each kept token's original
  position (what gathering the dense cos / sin would give);
- local layers: the sliding window is over original positions, ``|p_i - p_j| <= config.sliding_window`` (the
  model's own rule), combined with the key-padding mask (and the duplicity bias); global layers get the key mask.

Attention-select reads the layer's probabilities: eager returns them; under SDPA they are computed from the layer's
own Q / K projection output (``Wqkv``, captured during the call), rotated by the same cos / sin and masked by the
same mask. ``classifier_pooling = "mean"``: the classifier averages the final kept tokens, each weighted by the
number of input tokens it stands for when sizes are tracked (duplicity / merge), so a merged token counts as the
tokens it absorbed. Refused: flash / flex attention and packed (unpadded) batches (their kernels take cumulative
sequence lengths instead of the per-layer masks of kept tokens), a precomputed dict of masks.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutput, SequenceClassifierOutput
from transformers.models.modernbert.modeling_modernbert import apply_rotary_pos_emb

from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.families.base import Family
from pyramid_bert.patch.masks import as_additive

PACKED_KEYS = ("cu_seq_lens_q", "cu_seq_lens_k", "cu_seqlens", "max_length_q", "max_length_k", "indices")


def modernbert_encoder(model: nn.Module) -> nn.Module | None:
    base = getattr(model, "base_model", model)
    if not isinstance(getattr(base, "layers", None), nn.ModuleList) or not hasattr(base, "rotary_emb"):
        return None
    return base


class ModernBertEncoderHooks:
    """``ModernBertModel.forward`` as a pyramid: masks, rotary embeddings and windows of kept tokens."""

    def _pyramid_layers(self) -> list[nn.Module]:
        return list(self.layers)

    def forward(
        self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None, inputs_embeds: torch.Tensor | None = None, **kwargs: Any,
    ) -> BaseModelOutput:  # fmt: skip
        """``input_ids [B, N]`` -> ``last_hidden_state [B, l_L, D]`` (final LayerNorm applied; CLS first)."""
        if (input_ids is None) ^ (inputs_embeds is not None):
            raise ValueError("You must specify exactly one of input_ids or inputs_embeds")
        _refuse_packed(attention_mask, kwargs)
        want_hidden = kwargs.pop("output_hidden_states", None) or self.config.output_hidden_states
        for unused in ("output_attentions", "return_dict", "use_cache"):
            kwargs.pop(unused, None)
        hidden = self.embeddings(input_ids=input_ids, inputs_embeds=inputs_embeds)
        batch, tokens, _ = hidden.shape
        key_mask = torch.ones(batch, tokens, dtype=torch.bool, device=hidden.device)
        if attention_mask is not None:
            key_mask = attention_mask.to(torch.bool)
        kind = "float" if self.config._attn_implementation == "eager" else "bool"
        positions = None if position_ids is None else position_ids.expand(batch, tokens)
        last, outputs = self._pyramid_run(
            hidden, key_mask, kind if attention_mask is not None else None, positions=positions, **kwargs
        )
        last = self.final_norm(last)
        every = (hidden, *outputs[:-1], last) if want_hidden else None
        return BaseModelOutput(last_hidden_state=last, hidden_states=every)

    def _pyramid_call(self, layer: nn.Module, hidden: torch.Tensor, layer_mask: Any, state: Any, kwargs: dict):
        """One layer with the rotary embeddings and the (windowed) mask of its tokens' original positions."""
        positions = state.positions_in
        if positions is None:  # 0..n-1 in every row
            positions = torch.arange(hidden.shape[1], device=hidden.device)[None]
        rotary = self.rotary_emb(hidden, positions, layer.attention_type)
        mask = layer_mask
        if layer.attention_type == "sliding_attention":
            mask = _windowed(layer_mask, positions, self.config.sliding_window, self.config._attn_implementation,
                             hidden.dtype)  # fmt: skip
        return layer(hidden, attention_mask=mask, position_embeddings=rotary, **kwargs)


def _windowed(mask: torch.Tensor | None, positions: torch.Tensor, window: int, implementation: str, dtype) -> Any:
    """The key mask (``[B, 1, 1, n]`` or None) within ``|p_i - p_j| <= window`` of original positions ``[B|1, n]``:
    ``[B, 1, n, n]``, bool for SDPA, additive for eager (and whenever ``mask`` is additive: the duplicity bias)."""
    inside = ((positions[:, :, None] - positions[:, None, :]).abs() <= window)[:, None]
    if mask is not None and mask.dtype == torch.bool:
        return inside & mask
    if mask is None and implementation != "eager":
        return inside
    bias = torch.zeros((), dtype=dtype, device=positions.device) if mask is None else mask
    return torch.where(inside, bias, torch.finfo(dtype).min)


def _refuse_packed(attention_mask: Any, kwargs: dict) -> None:
    if isinstance(attention_mask, dict):
        raise ConfigError("pyramidize: ModernBERT with a precomputed dict of attention masks is not supported")
    if attention_mask is not None and attention_mask.dim() != 2:
        raise ConfigError("pyramidize: ModernBERT takes a 2-D attention_mask [B, N] (1 = real token) here")
    packed = sorted(key for key in kwargs if key in PACKED_KEYS)
    if packed:
        raise ConfigError(
            f"pyramidize: ModernBERT's packed (unpadded) batches ({', '.join(packed)}) are not supported; pass a "
            "padded batch with its attention_mask (selection works on padded rows)"
        )


class ModernBertLayerHooks:
    """How a ``ModernBertEncoderLayer`` runs its two (pre-LayerNorm, residual) sublayers."""

    def _pyramid_attention(self, hidden: torch.Tensor, attention_mask: Any = None, position_embeddings: Any = None,
                           **kwargs):  # fmt: skip
        """``[B, n, D]`` -> (``hidden + attention(attn_norm(hidden))``, probabilities ``[B, H, n, n]`` or None)."""
        wanted = self._pyramid.settings.method == "attention" and self.config._attn_implementation != "eager"
        captured: list[torch.Tensor] = []
        handle = self.attn.Wqkv.register_forward_hook(lambda _m, _i, out: captured.append(out.detach())) if wanted else None
        try:
            output, weights = self.attn(self.attn_norm(hidden), position_embeddings=position_embeddings,
                                        attention_mask=attention_mask, **kwargs)  # fmt: skip
        finally:
            if handle is not None:
                handle.remove()
        if wanted:
            weights = self._pyramid_probabilities(captured[0], position_embeddings, attention_mask)
        return hidden + output, weights

    def _pyramid_probabilities(self, qkv: torch.Tensor, rotary: Any, mask: Any) -> torch.Tensor:
        """The layer's attention probabilities ``[B, H, n, n]`` from its ``Wqkv`` output ``[B, n, 3 * D]``."""
        batch, tokens, _ = qkv.shape
        heads, head_size = self._pyramid_heads()
        query, key, _ = qkv.view(batch, tokens, 3, heads, head_size).float().unbind(dim=2)
        cos, sin = rotary
        query, key = apply_rotary_pos_emb(query.transpose(1, 2), key.transpose(1, 2), cos.float(), sin.float())
        scores = torch.matmul(query, key.transpose(2, 3)) * head_size**-0.5
        if mask is not None:
            scores = scores + as_additive(mask, torch.float32).float()
        return scores.softmax(dim=-1)

    def _pyramid_ffn(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.mlp(self.mlp_norm(hidden))

    def _pyramid_query_key(self) -> None:
        return None  # _pyramid_attention returns the probabilities itself

    def _pyramid_heads(self) -> tuple[int, int]:
        return self.config.num_attention_heads, self.attn.head_dim


class ModernBertClassifierHooks:
    """``ModernBertForSequenceClassification`` with mean pooling over the final KEPT tokens (CLS pooling needs
    nothing: CLS is always kept, first)."""

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, inputs_embeds=None, labels=None,
                **kwargs):  # fmt: skip
        """``input_ids [B, N]`` -> logits ``[B, labels]``; mean pooling weighs each kept token by its size."""
        if self.config.classifier_pooling != "mean":
            return super().forward(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                                   inputs_embeds=inputs_embeds, labels=labels, **kwargs)  # fmt: skip
        kwargs.pop("return_dict", None)
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             inputs_embeds=inputs_embeds, **kwargs)  # fmt: skip
        hidden = outputs.last_hidden_state
        key_mask, sizes = self.model._pyramid_last
        weights = (sizes * key_mask if sizes is not None else key_mask).to(hidden.dtype)  # [B, k]
        pooled = (hidden * weights[:, :, None]).sum(dim=1) / weights.sum(dim=1, keepdim=True)
        logits = self.classifier(self.drop(self.head(pooled)))
        loss = None if labels is None else self.loss_function(labels, logits, self.config)
        return SequenceClassifierOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


MODERNBERT = Family(
    name="ModernBERT",
    model_types=("modernbert",),
    encoder=modernbert_encoder,
    encoder_hooks=ModernBertEncoderHooks,
    layer_hooks=ModernBertLayerHooks,
    head_hooks={"ModernBertForSequenceClassification": ModernBertClassifierHooks},
)
