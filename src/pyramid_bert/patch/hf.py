"""``pyramidize`` / ``unpyramidize`` for Hugging Face BERT-family encoders.

The patch swaps the class of the model's encoder in place (weights untouched) for a subclass whose forward
runs each layer's attention sublayer, keeps ``l_j`` tokens, then runs the FFN on them.

Modifications of the encoder (``BertEncoder``, ``RobertaEncoder``, ...):
- before layer 1, Input-first-k truncates the sequence to ``lengths[0]`` tokens;
- in layer j, after the attention sublayer's residual + LayerNorm ("middle", the paper's choice) or after the
  FFN ("end"), the hidden states ``[B, n, D]`` shrink to ``[B, min(l_j, n), D]`` by gathering the selected
  tokens in their original order (CLS first), and the key-padding mask shrinks with them;
- each layer gets an attention mask ``[B, 1, 1, n]`` built for its own length (None when nothing is padded),
  in the format the model's attention implementation expects (additive float for eager, bool for SDPA).

Everything else (embeddings, pooler, heads, attention kernels) is the model's own code.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from transformers.modeling_outputs import BaseModelOutputWithPastAndCrossAttentions
from transformers.pytorch_utils import apply_chunking_to_forward

from pyramid_bert.errors import ConfigError
from pyramid_bert.schedule import POSITIONS, validate_lengths
from pyramid_bert.selection import (
    attention_select,
    attention_significance,
    average_pool,
    first_k,
    gather_tokens,
    kcenter_greedy,
    random_select,
    resolve_m,
)

METHODS = ("coreset", "attention", "average_pool", "first_k", "input_first_k", "random")
SUPPORTED_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "camembert", "electra")
CONFIG_KEY = "pyramid"


@dataclass
class PyramidSettings:
    """What a pyramidized model does; stored as ``model.config.pyramid`` (a plain dict) for save/load."""

    lengths: list[int]
    method: str = "coreset"
    m: int | float | None = 1
    position: str = "middle"
    pool_windows: list[int] | None = None
    seed: int = 0
    version: int = field(default=1)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PyramidSettings:
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


def pyramidize(
    model: nn.Module,
    lengths: list[int] | tuple[int, ...] | None = None,
    *,
    method: str = "coreset",
    m: int | float | None = 1,
    position: str = "middle",
    pool_windows: list[int] | tuple[int, ...] | None = None,
    seed: int = 0,
) -> nn.Module:
    """Make ``model`` a Pyramid-BERT in place and return it.

    Args:
        model: a Hugging Face BERT-family model (base or ``*ForSequenceClassification`` etc.) of a supported
            ``model_type`` (see ``SUPPORTED_MODEL_TYPES``).
        lengths: tokens kept after each encoder layer, one non-increasing int per layer (e.g. from
            :func:`pyramid_bert.schedule.sequence_lengths`). Input-first-k needs a constant schedule (the input
            is truncated once to ``lengths[0]``). Average-pool takes ``pool_windows`` instead.
        method: one of ``METHODS``.
        m: core-set centers per round (int >= 1; float in (0, 1) for ``ceil(m * k)``; None for ``k - 1``).
        position: "middle" (after the attention sublayer, before the FFN) or "end" (after the FFN).
        pool_windows: Average-pool only: one window (= stride) per layer, 1 meaning no pooling at that layer.
        seed: seeds Random-select's generator.

    A second call replaces the first; :func:`unpyramidize` restores the dense model.
    """
    encoder = find_encoder(model)
    num_layers = len(encoder.layer)
    settings = make_settings(
        num_layers, lengths, method=method, m=m, position=position, pool_windows=pool_windows, seed=seed
    )
    if is_pyramidized(model):
        unpyramidize(model)
    encoder._pyramid_original_class = encoder.__class__
    encoder.__class__ = _pyramid_class(encoder.__class__)
    encoder._pyramid_settings = settings
    encoder._pyramid_generators = {}
    encoder._pyramid_hooks = []
    encoder._pyramid_captured = {}
    if settings.method == "attention":
        _capture_queries_and_keys(encoder)
    model.config.pyramid = settings.to_dict()
    return model


def unpyramidize(model: nn.Module) -> nn.Module:
    """Undo :func:`pyramidize` in place (a no-op on a dense model) and return the model."""
    encoder = find_encoder(model)
    if not isinstance(encoder, PyramidEncoderMixin):
        return model
    for handle in encoder._pyramid_hooks:
        handle.remove()
    encoder.__class__ = encoder._pyramid_original_class
    for name in (
        "_pyramid_original_class",
        "_pyramid_settings",
        "_pyramid_generators",
        "_pyramid_hooks",
        "_pyramid_captured",
    ):
        delattr(encoder, name)
    if hasattr(model.config, CONFIG_KEY):
        delattr(model.config, CONFIG_KEY)
    return model


def is_pyramidized(model: nn.Module) -> bool:
    """Whether ``model``'s encoder currently runs the pyramid forward."""
    return isinstance(find_encoder(model), PyramidEncoderMixin)


def pyramid_settings(model: nn.Module) -> PyramidSettings | None:
    """The settings of a pyramidized model, or None for a dense one."""
    encoder = find_encoder(model)
    return encoder._pyramid_settings if isinstance(encoder, PyramidEncoderMixin) else None


def load_pyramid_model(path: str, **from_pretrained_kwargs: Any) -> nn.Module:
    """Load a sequence classifier saved with ``save_pretrained`` and re-apply its stored pyramid settings."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(path, **from_pretrained_kwargs)
    stored = getattr(model.config, CONFIG_KEY, None)
    if stored:
        settings = PyramidSettings.from_dict(stored)
        pyramidize(
            model,
            settings.lengths if settings.method != "average_pool" else None,
            method=settings.method,
            m=settings.m,
            position=settings.position,
            pool_windows=settings.pool_windows,
            seed=settings.seed,
        )
    return model


def make_settings(
    num_layers: int,
    lengths: list[int] | tuple[int, ...] | None,
    *,
    method: str,
    m: int | float | None,
    position: str,
    pool_windows: list[int] | tuple[int, ...] | None,
    seed: int,
) -> PyramidSettings:
    """Validate pyramidize's arguments for a model with ``num_layers`` encoder layers."""
    if method not in METHODS:
        raise ConfigError(f"method must be one of {', '.join(METHODS)}; got {method!r}")
    if position not in POSITIONS:
        raise ConfigError(f"position must be one of {', '.join(POSITIONS)}; got {position!r}")
    if method == "coreset":
        resolve_m(m, 2)  # validates m
    if method == "average_pool":
        if pool_windows is None or lengths is not None:
            raise ConfigError(
                "method 'average_pool' takes pool_windows (one window per layer, 1 = none) and no lengths"
            )
        windows = [int(w) if not isinstance(w, bool) and isinstance(w, int) else w for w in pool_windows]
        if len(windows) != num_layers or any(not isinstance(w, int) or w < 1 for w in windows):
            raise ConfigError(
                f"pool_windows must be {num_layers} ints >= 1 (one per layer, 1 = none); got {list(pool_windows)}"
            )
        return PyramidSettings([0] * num_layers, method, m, position, windows, int(seed))
    if pool_windows is not None:
        raise ConfigError(f"pool_windows applies only to method 'average_pool', not {method!r}")
    if lengths is None:
        raise ConfigError(f"method {method!r} needs lengths: one kept length per encoder layer ({num_layers} layers)")
    lengths = validate_lengths(
        [int(x) if isinstance(x, int) and not isinstance(x, bool) else x for x in lengths], num_layers
    )
    if method == "input_first_k" and len(set(lengths)) != 1:
        raise ConfigError(f"method 'input_first_k' truncates the input once: lengths must be constant, got {lengths}")
    return PyramidSettings(lengths, method, m, position, None, int(seed))


def find_encoder(model: nn.Module) -> nn.Module:
    """The encoder module (with ``.layer``) of a supported BERT-family model, or a clear ConfigError."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ConfigError(
            f"unsupported model {type(model).__name__} (model_type {model_type!r}); pyramidize supports model types "
            f"{', '.join(SUPPORTED_MODEL_TYPES)} (e.g. BertModel, BertForSequenceClassification, RobertaModel, ...)"
        )
    if getattr(config, "is_decoder", False):
        raise ConfigError("pyramidize supports encoder models only; this config has is_decoder=True")
    base = getattr(model, "base_model", model)
    encoder = getattr(base, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not isinstance(layers, nn.ModuleList) or not all(
        hasattr(layer, "attention") and hasattr(layer, "feed_forward_chunk") for layer in layers
    ):
        raise ConfigError(
            f"{type(model).__name__}: its encoder does not have the BERT layer structure pyramidize needs"
        )
    return encoder


class PyramidEncoderMixin:
    """Forward of a pyramid encoder; mixed in front of the model's own encoder class by :func:`pyramidize`."""

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        past_key_values: Any = None,
        use_cache: bool | None = None,
        **kwargs: Any,
    ) -> BaseModelOutputWithPastAndCrossAttentions:
        """``hidden_states [B, N, D]`` -> ``last_hidden_state [B, l_L, D]`` (CLS first, original order)."""
        settings: PyramidSettings = self._pyramid_settings
        batch, tokens, _ = hidden_states.shape
        key_mask, mask_kind = _key_padding_mask(attention_mask, batch, tokens, hidden_states.device)
        if settings.method == "input_first_k":
            hidden_states, key_mask = hidden_states[:, : settings.lengths[0]], key_mask[:, : settings.lengths[0]]
        padded = mask_kind is not None and not bool(key_mask.all())
        for index, layer in enumerate(self.layer):
            layer_mask = _layer_attention_mask(key_mask, mask_kind, hidden_states.dtype) if padded else None
            attention_output, attention_weights = layer.attention(hidden_states, layer_mask, **kwargs)
            if settings.position == "middle":
                attention_output, key_mask = self._pyramid_reduce(index, attention_output, key_mask, attention_weights)
            hidden_states = apply_chunking_to_forward(
                layer.feed_forward_chunk, layer.chunk_size_feed_forward, layer.seq_len_dim, attention_output
            )
            if settings.position == "end":
                hidden_states, key_mask = self._pyramid_reduce(index, hidden_states, key_mask, attention_weights)
        return BaseModelOutputWithPastAndCrossAttentions(last_hidden_state=hidden_states)

    def _pyramid_reduce(
        self, index: int, hidden: torch.Tensor, key_mask: torch.Tensor, attention_weights: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Layer ``index``'s selection: ``[B, n, D], [B, n]`` -> ``[B, k, D], [B, k]``."""
        settings: PyramidSettings = self._pyramid_settings
        method = settings.method
        if method == "input_first_k":
            return hidden, key_mask
        if method == "average_pool":
            window = settings.pool_windows[index]
            return average_pool(hidden, key_mask, window) if window > 1 else (hidden, key_mask)
        tokens = hidden.shape[1]
        k = min(settings.lengths[index], tokens)
        if k == tokens:
            return hidden, key_mask
        with torch.no_grad():
            if method == "coreset":
                indices = kcenter_greedy(hidden, k, m=settings.m, mask=key_mask)
            elif method == "attention":
                significance = self._pyramid_significance(index, key_mask, attention_weights)
                indices = attention_select(significance, k, key_mask)
            elif method == "first_k":
                indices = first_k(key_mask, k)
            else:  # random
                indices = random_select(key_mask, k, self._pyramid_generator(hidden.device))
        kept, kept_mask, _ = gather_tokens(hidden, key_mask, indices)
        return kept, kept_mask

    def _pyramid_significance(
        self, index: int, key_mask: torch.Tensor, attention_weights: torch.Tensor | None
    ) -> torch.Tensor:
        """Attention received per key ``[B, n]``, from the layer's probabilities or its captured Q and K."""
        if attention_weights is None:  # SDPA and other fused kernels return no probabilities
            query, key = self._pyramid_captured.pop(index)
            attention = self.layer[index].attention.self
            heads, head_size = attention.num_attention_heads, attention.attention_head_size
            batch, tokens, _ = query.shape
            query = query.view(batch, tokens, heads, head_size).transpose(1, 2).float()
            key = key.view(batch, tokens, heads, head_size).transpose(1, 2).float()
            scores = torch.matmul(query, key.transpose(2, 3)) / math.sqrt(head_size)
            scores = scores.masked_fill(~key_mask[:, None, None, :], -math.inf)
            attention_weights = scores.softmax(dim=-1)
        self._pyramid_captured.pop(index, None)
        return attention_significance(attention_weights, key_mask)

    def _pyramid_generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        if key not in self._pyramid_generators:
            self._pyramid_generators[key] = torch.Generator(device=device).manual_seed(self._pyramid_settings.seed)
        return self._pyramid_generators[key]


_CLASS_CACHE: dict[type, type] = {}


def _pyramid_class(encoder_class: type) -> type:
    if encoder_class not in _CLASS_CACHE:
        _CLASS_CACHE[encoder_class] = type(f"Pyramid{encoder_class.__name__}", (PyramidEncoderMixin, encoder_class), {})
    return _CLASS_CACHE[encoder_class]


def _capture_queries_and_keys(encoder: nn.Module) -> None:
    """Attention-select under SDPA: keep each layer's Q and K projections (no recomputation)."""
    for index, layer in enumerate(encoder.layer):
        attention = layer.attention.self
        store: dict[int, Any] = encoder._pyramid_captured

        def keep_query(_module, _inputs, output, index=index, store=store):
            store[index] = (output.detach(), None)

        def keep_key(_module, _inputs, output, index=index, store=store):
            store[index] = (store[index][0], output.detach())

        encoder._pyramid_hooks.append(attention.query.register_forward_hook(keep_query))
        encoder._pyramid_hooks.append(attention.key.register_forward_hook(keep_key))


def _key_padding_mask(
    attention_mask: torch.Tensor | None, batch: int, tokens: int, device: torch.device
) -> tuple[torch.Tensor, str | None]:
    """Key-padding mask ``[B, N]`` (True = real) from the model's 4-D mask, and that mask's kind.

    The model hands the encoder None (nothing padded), a bool ``[B, 1, N, N]`` (SDPA) or an additive float
    ``[B, 1, N, N]`` (eager); the query row of CLS says which keys are real.
    """
    if attention_mask is None:
        return torch.ones(batch, tokens, dtype=torch.bool, device=device), None
    if attention_mask.dim() == 2:
        return attention_mask.to(torch.bool), "bool"
    row = attention_mask[:, 0, 0, :]
    if attention_mask.dtype == torch.bool:
        return row, "bool"
    return row == 0, "float"


def _layer_attention_mask(key_mask: torch.Tensor, kind: str | None, dtype: torch.dtype) -> torch.Tensor:
    """``[B, n]`` -> ``[B, 1, 1, n]`` in the model's mask format."""
    if kind == "bool":
        return key_mask[:, None, None, :]
    additive = torch.zeros(key_mask.shape, dtype=dtype, device=key_mask.device)
    return additive.masked_fill_(~key_mask, torch.finfo(dtype).min)[:, None, None, :]
