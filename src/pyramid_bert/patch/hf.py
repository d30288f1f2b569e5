"""``pyramidize`` / ``unpyramidize`` for Hugging Face encoders: BERT and its kin, DistilBERT, ALBERT, ...

The patch swaps, in place and with weights untouched, the classes of the model's encoder and of its layers for
subclasses (in the manner of ToMe's patches). What differs between encoder families (where the layers are, how a
layer calls its attention and FFN, what a layer needs besides its mask) lives in :mod:`pyramid_bert.patch.families`;
the pyramid logic below is shared.

Modifications of the encoder (``BertEncoder``, DistilBERT's ``Transformer``, ``AlbertTransformer``, ...):
- before layer 1, Input-first-k truncates the sequence to ``lengths[0]`` tokens;
- before layer 1, it plans what every layer keeps of the batch (:func:`pyramid_bert.patch.plan.plan_batch`: widths
  and per-example counts from the attention mask, so no layer reads a tensor value on the host);
- it carries a key-padding mask ``[B, n]`` from layer to layer and gives each layer an attention mask
  ``[B, 1, 1, n]`` for its own length (None when nothing is padded), in the format the model's attention
  implementation expects (additive float for eager, bool for SDPA);
- it follows each kept token's original input position (``LayerState.positions_in``) for families whose layers
  need it (relative positions, rotary embeddings, sliding windows);
- a family whose layer weights are shared (ALBERT) gets one state per schedule index, handed to the shared module
  before each call.

Modifications of each layer (``BertLayer``, ...):
- after the attention sublayer's residual + LayerNorm ("middle", the paper's choice) or after the FFN ("end"),
  the hidden states ``[B, n, D]`` shrink to ``[B, min(l_j, n), D]`` by gathering the selected tokens in their
  original order (CLS first); the layer leaves the shrunk key-padding mask for the encoder;
- with a keep-ratio schedule, example b keeps ``ceil(r_j * n_b)`` tokens (n_b: its real tokens at the input) and the
  batch shrinks to its widest example's count; the other slots of shorter examples become padding.

Everything else (embeddings, attention kernels, pooler, heads, Hugging Face's output capture) is the model's
own code, so ``output_hidden_states`` / ``output_attentions`` report every layer at its own length.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForSequenceClassification
from transformers.modeling_outputs import BaseModelOutputWithPastAndCrossAttentions

from pyramid_bert.duplicity import assign_to_centers, cluster_sizes, initial_sizes, merge_clusters, size_bias
from pyramid_bert.energy import energy_merge, layer_margin
from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.families import SUPPORTED_MODEL_TYPES, Family, find_family
from pyramid_bert.patch.masks import key_padding_mask, layer_attention_mask
from pyramid_bert.patch.plan import BatchPlan, LayerPlan, plan_batch
from pyramid_bert.patch.quantize import quantize
from pyramid_bert.patch.saved_config import mark_config, unmark_config
from pyramid_bert.precision import PrecisionNotAppliedWarning, stored_precision
from pyramid_bert.selection import (
    attention_select,
    attention_significance,
    average_pool,
    first_k,
    gather_tokens,
    kcenter_greedy,
    random_order,
)
from pyramid_bert.spec import METHODS, RATIO_METHODS, SIZE_METHODS, PyramidSettings, SelectionOptions
from pyramid_bert.thresholds import (
    relative_scores,
    soft_keep_weights,
    soft_key_bias,
    threshold_counts,
)

__all__ = [
    "METHODS", "RATIO_METHODS", "SIZE_METHODS", "SUPPORTED_MODEL_TYPES", "PyramidSettings", "find_encoder",
    "is_pyramidized", "kept_input_positions", "load_pyramid_model", "pyramid_settings", "pyramidize",
    "selection_generators", "threshold_scores", "unpyramidize",
]  # fmt: skip

CONFIG_KEY = "pyramid"


def pyramidize(
    model: nn.Module,
    lengths: list[int] | tuple[int, ...] | None = None,
    *,
    settings: PyramidSettings | None = None,
    method: str = "coreset",
    pool_windows: list[int] | tuple[int, ...] | None = None,
    seed: int = 0,
    keep_ratios: list[float] | tuple[float, ...] | None = None,
    keep_thresholds: list[float] | tuple[float, ...] | None = None,
    soft_threshold_temperature: float = 0.0,
    **options: Any,
) -> nn.Module:
    """Make ``model`` a Pyramid-BERT in place and return it.

    Either ``settings`` (a :class:`~pyramid_bert.spec.PyramidSettings`, e.g. read back from a config) alone, or the
    keyword form below, which builds them.

    Args:
        model: a Hugging Face BERT-family model (base or ``*ForSequenceClassification`` etc.) of a supported
            ``model_type`` (see ``SUPPORTED_MODEL_TYPES``).
        lengths: tokens kept after each encoder layer, one non-increasing int per layer (e.g. from
            :func:`pyramid_bert.schedule.sequence_lengths`). Input-first-k needs a constant schedule (the input
            is truncated once to ``lengths[0]``). Average-pool takes ``pool_windows`` instead.
        method: one of ``METHODS``; "energy" is PiToMe's energy-aware merging (:mod:`pyramid_bert.energy`): every
            removed token is merged into a kept one, sizes are tracked, CLS never merges.
        pool_windows: Average-pool only: one window (= stride) per layer, 1 meaning no pooling at that layer.
        seed: seeds Random-select's generator.
        keep_ratios: instead of ``lengths``, one non-increasing ratio in (0, 1] per layer (e.g. from
            :func:`pyramid_bert.schedule.sequence_ratios`): each example keeps ``ceil(r_j * n)`` tokens after layer
            j, n being its own number of real tokens (at least 1, never more than it has), and a batch is as wide
            as its widest example needs. Every method but Input-first-k and Average-pool. The kept tokens of an
            example do not depend on the other examples of its batch (except for Random-select, and for a
            fractional ``m``, which is resolved against the batch's widest keep count).
        keep_thresholds, soft_threshold_temperature: Attention-select's adaptive schedule and its soft mask in
            training (see :class:`~pyramid_bert.spec.PyramidSettings` and :mod:`pyramid_bert.thresholds`).
        **options: fields of :class:`~pyramid_bert.spec.SelectionOptions` (defaults: the paper's algorithm):
            ``m`` (core-set centers per round: int >= 1; float in (0, 1) for ``ceil(m * k)``; None for ``k - 1``),
            ``position`` ("middle": after the attention sublayer, before the FFN; "end": after the FFN),
            ``distance`` (of core-set selection and of assigning dropped tokens to kept ones: "euclidean", the
            paper's; "cosine"; "standardized"), ``duplicity_attention`` (the paper's Remark 1 made practical: each
            kept token carries the number of input tokens it stands for, accumulated over layers, and attention adds
            ``log(count)`` to the keys' logits), ``merge`` (each kept token becomes the count-weighted mean of the
            tokens assigned to it, CLS excepted; with ``duplicity_attention``, ToMe-style merging): ``distance``
            and ``merge`` for methods in ``NEAREST_METHODS``, ``duplicity_attention`` for ``SIZE_METHODS`` (the
            former and "energy"); ``energy_margin`` (energy only: a cosine in [-1, 1], or "auto" for PiToMe's
            ``0.9 - 0.9 * layer / layers``).

    A second call replaces the first; :func:`unpyramidize` restores the dense model.
    """
    family, encoder = find_family(model)
    if settings is None:
        thresholds = dict(keep_thresholds=keep_thresholds, soft_threshold_temperature=soft_threshold_temperature)
        settings = PyramidSettings(lengths, method, pool_windows, seed, keep_ratios, _options(options), **thresholds)
    elif lengths is not None or keep_ratios is not None or pool_windows is not None or keep_thresholds or options:
        raise ConfigError("pyramidize: give settings alone, or the keyword form (lengths, method, ...), not both")
    if is_pyramidized(model):
        unpyramidize(model)
    layers = family.layers(encoder)
    settings = settings.validated(len(layers))
    family.check_model(model, settings)
    encoder._pyramid_original_class = encoder.__class__
    encoder.__class__ = _pyramid_class(encoder.__class__, family.encoder_hooks, PyramidEncoderMixin)
    encoder._pyramid_settings = settings
    encoder._pyramid_hooks = []
    generators: dict[str, torch.Generator] = {}
    encoder._pyramid_states = [
        LayerState(index=i, settings=settings, generators=generators) for i in range(len(layers))
    ]
    for layer in _unique(layers):
        layer._pyramid_original_class = layer.__class__
        layer.__class__ = _pyramid_class(layer.__class__, family.layer_hooks, PyramidLayerMixin)
        layer._pyramid = encoder._pyramid_states[layers.index(layer)]
        if settings.method == "attention":
            _capture_queries_and_keys(layer, encoder._pyramid_hooks)
    _patch_head(model, family)
    model.config.pyramid = settings.to_dict()
    mark_config(model.config)  # saved as model_type "pyramid-bert": Auto classes load it pyramidized (saved_config)
    return model


def unpyramidize(model: nn.Module) -> nn.Module:
    """Undo :func:`pyramidize` in place (a no-op on a dense model) and return the model."""
    encoder = find_encoder(model)
    if not isinstance(encoder, PyramidEncoderMixin):
        return model
    for handle in encoder._pyramid_hooks:
        handle.remove()
    for module in encoder.modules():
        module.__dict__.pop("_pyramid_output", None)  # Attention-select's captures (see _capture_queries_and_keys)
    for layer in _unique(encoder._pyramid_layers()):
        layer.__class__ = layer._pyramid_original_class
        del layer._pyramid_original_class, layer._pyramid
    encoder.__class__ = encoder._pyramid_original_class
    del encoder._pyramid_original_class, encoder._pyramid_settings, encoder._pyramid_hooks, encoder._pyramid_states
    if hasattr(encoder, "_pyramid_last"):
        del encoder._pyramid_last
    if hasattr(model, "_pyramid_original_class"):  # a task head patched for the family's pooling
        model.__class__ = model._pyramid_original_class
        del model._pyramid_original_class
    if hasattr(model.config, CONFIG_KEY):
        delattr(model.config, CONFIG_KEY)
    unmark_config(model.config)
    return model


def is_pyramidized(model: nn.Module) -> bool:
    """Whether ``model``'s encoder currently runs the pyramid forward."""
    return isinstance(find_encoder(model), PyramidEncoderMixin)


def pyramid_settings(model: nn.Module) -> PyramidSettings | None:
    """The settings of a pyramidized model, or None for a dense one."""
    encoder = find_encoder(model)
    return encoder._pyramid_settings if isinstance(encoder, PyramidEncoderMixin) else None


def selection_generators(model: nn.Module) -> dict[str, torch.Generator]:
    """Random-select's generators of a pyramidized ``model``, keyed by device string (``"cpu"``, ``"cuda:0"``).

    One dict shared by every layer, filled on first use; empty for a dense model. Saving their states and putting
    them back (``generators[device] = restored``) makes a resumed training run draw what the original would have.
    """
    encoder = find_encoder(model)
    if not isinstance(encoder, PyramidEncoderMixin) or not encoder._pyramid_states:
        return {}
    return encoder._pyramid_states[0].generators


def threshold_scores(model: nn.Module) -> list[torch.Tensor | None]:
    """After a forward of a model with keep thresholds: per layer, the relative scores ``[B, n_j]`` of its input
    slots (see :mod:`pyramid_bert.thresholds`; padding slots hold 0), None for a layer that kept everything."""
    encoder = find_encoder(model)
    if not isinstance(encoder, PyramidEncoderMixin) or encoder._pyramid_settings.keep_thresholds is None:
        raise ConfigError("threshold_scores: the model is not pyramidized with keep_thresholds")
    return [state.scores for state in encoder._pyramid_states]


def kept_input_positions(model: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor] | None]:
    """After a forward of a pyramidized ``model``: per layer, ``(positions [B, n_j], real [B, n_j])``: the input
    positions of the tokens that leave it (CLS first, original order) and which slots are real tokens (the others
    are padding); None for every layer of Average-pool (its tokens are not a subset of the input's). For
    inspecting what a method keeps (which words, [SEP], punctuation, ...)."""
    encoder = find_encoder(model)
    if not isinstance(encoder, PyramidEncoderMixin):
        raise ConfigError("kept_input_positions: the model is not pyramidized")
    states: list[LayerState] = encoder._pyramid_states
    if encoder._pyramid_settings.method == "average_pool":
        return [None] * len(states)
    first = states[0]
    if first.key_mask_in is None:
        raise ConfigError("kept_input_positions: run a forward pass first")
    batch, tokens = first.key_mask_in.shape
    positions = torch.arange(tokens, device=first.key_mask_in.device).expand(batch, tokens)
    real, result = first.key_mask_in, []
    for state in states:
        if state.kept_order is not None:
            positions, real = positions.gather(1, state.kept_order), state.kept_mask
        result.append((positions, real))
    return result


def load_pyramid_model(path: str, precision: str | None = None, **from_pretrained_kwargs: Any) -> nn.Module:
    """Load a sequence classifier saved with ``save_pretrained`` and re-apply its stored pyramid settings, at
    ``precision`` (``fp32`` or ``int8``, see :mod:`pyramid_bert.precision`; None: the one its config names, else fp32).

    A folder saved by this version (model_type "pyramid-bert") comes back pyramidized from
    ``AutoModelForSequenceClassification`` itself; one saved before (model_type "bert" and a ``pyramid`` entry) loads
    dense there and is pyramidized here (saving it again writes the new form)."""

    with warnings.catch_warnings():  # the precision is applied right below
        warnings.simplefilter("ignore", PrecisionNotAppliedWarning)
        model = AutoModelForSequenceClassification.from_pretrained(path, **from_pretrained_kwargs)
    quantize(model, precision or stored_precision(model.config))
    stored = getattr(model.config, CONFIG_KEY, None)
    if stored and not is_pyramidized(model):
        pyramidize(model, settings=PyramidSettings.from_dict(stored))
    return model


def _options(options: dict[str, Any]) -> SelectionOptions:
    """pyramidize's ``**options`` as SelectionOptions; an unknown name is a ConfigError naming the valid ones."""
    unknown = sorted(set(options) - set(SelectionOptions.names()))
    if unknown:
        raise ConfigError(f"pyramidize: unknown option(s) {unknown}; valid: {', '.join(SelectionOptions.names())}")
    return SelectionOptions.from_dict(options)


def find_encoder(model: nn.Module) -> nn.Module:
    """The encoder module (the one whose layers pyramidize patches) of a supported model, or a clear ConfigError."""
    return find_family(model)[1]


def _unique(layers: list[nn.Module]) -> list[nn.Module]:
    """Each module once, in order (ALBERT calls one module at every schedule index)."""
    return list({id(layer): layer for layer in layers}.values())


def _patch_head(model: nn.Module, family: Family) -> None:
    """Give a task model the family's pyramid pooling where it needs one (e.g. mean pooling over kept tokens)."""
    hooks = family.head_hooks.get(type(model).__name__)
    if hooks is not None:
        model._pyramid_original_class = model.__class__
        model.__class__ = _pyramid_class(model.__class__, hooks)


@dataclass
class LayerState:
    """What one pyramid layer knows: its index, the shared settings and generators, and its masks in and out."""

    index: int
    settings: PyramidSettings
    generators: dict[str, torch.Generator]
    key_mask_in: torch.Tensor | None = None
    key_mask_out: torch.Tensor | None = None
    plan: LayerPlan | None = None  # what this layer keeps of the current batch (set by the encoder)
    random_draws: torch.Tensor | None = None  # [B, n] Random-select's draws for the current batch
    sizes_in: torch.Tensor | None = None  # [B, n] input tokens each token stands for (duplicity / merge)
    sizes_out: torch.Tensor | None = None
    kept_order: torch.Tensor | None = None  # [B, k] positions (in this layer's input) kept by the last forward
    kept_mask: torch.Tensor | None = None  # [B, k] which of those slots are real tokens
    positions_in: torch.Tensor | None = None  # [B, n] original input position of each input slot; None: 0..n-1
    soft_in: torch.Tensor | None = None  # [B, n] soft keep weights (keep thresholds, training); None: hard pruning
    soft_out: torch.Tensor | None = None
    scores: torch.Tensor | None = None  # [B, n] keep thresholds: the relative scores of the last forward


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
        batch, tokens, _ = hidden_states.shape
        key_mask, mask_kind = key_padding_mask(attention_mask, batch, tokens, hidden_states.device)
        hidden_states, _ = self._pyramid_run(hidden_states, key_mask, mask_kind, **kwargs)
        return BaseModelOutputWithPastAndCrossAttentions(last_hidden_state=hidden_states)

    def _pyramid_run(
        self, hidden_states: torch.Tensor, key_mask: torch.Tensor, mask_kind: str | None,
        positions: torch.Tensor | None = None, **kwargs: Any,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:  # fmt: skip
        """The layers over ``hidden_states [B, N, D]`` with key-padding mask ``[B, N]`` (of the model's mask kind,
        None: nothing padded) -> (last layer's output ``[B, l_L, D]``, every layer's output at its own length).
        ``positions [B, N]``: the input's own position ids, if it has any; None means 0..N-1 in every row."""
        settings: PyramidSettings = self._pyramid_settings
        if settings.method == "input_first_k":
            hidden_states, key_mask = hidden_states[:, : settings.lengths[0]], key_mask[:, : settings.lengths[0]]
            positions = None if positions is None else positions[:, : settings.lengths[0]]
        plan = plan_batch(settings, key_mask, mask_kind is not None, len(self._pyramid_states))
        draws = random_draws(plan, key_mask, self._pyramid_states[0]) if settings.method == "random" else None
        sizes = initial_sizes(key_mask) if settings.tracks_sizes else None
        soft = initial_sizes(key_mask) if self.training and settings.soft_threshold_temperature > 0 else None
        outputs = []
        for index, layer in enumerate(self._pyramid_layers()):
            state: LayerState = self._pyramid_states[index]
            layer._pyramid = state  # a module shared by several indices (ALBERT) takes this call's state
            if settings.options.duplicity_attention and index > 0:  # at layer 1 every size is 1: log 1 = 0
                layer_mask = size_bias(sizes, key_mask, hidden_states.dtype)
            else:
                layer_mask = layer_attention_mask(key_mask, mask_kind, hidden_states.dtype) if plan.padded else None
            if soft is not None and index > 0:  # soft keep weights count as fractional keys (at layer 1 all 1)
                duplicity = sizes if settings.options.duplicity_attention else None
                layer_mask = _with_soft_bias(soft, duplicity, hidden_states.dtype)
            state.key_mask_in, state.plan, state.sizes_in, state.soft_in = key_mask, plan.layers[index], sizes, soft
            state.random_draws = draws[index] if draws else None
            state.positions_in = positions
            hidden_states = self._pyramid_call(layer, hidden_states, layer_mask, state, kwargs)
            positions = _positions_out(positions, state, key_mask.shape[1])
            key_mask, sizes, soft = state.key_mask_out, state.sizes_out, state.soft_out
            state.key_mask_out = state.sizes_out = state.soft_out = None  # the inputs stay: checkpointing re-runs
            outputs.append(hidden_states)
        self._pyramid_last = (key_mask, sizes)  # [B, l_L] and sizes (or None): for pooling over the kept tokens
        return hidden_states, outputs

    def _pyramid_call(
        self, layer: nn.Module, hidden: torch.Tensor, layer_mask: torch.Tensor | None, state: LayerState,
        kwargs: dict[str, Any],
    ) -> torch.Tensor:  # fmt: skip
        """Call one layer with its attention mask ``[B, 1, 1, n]`` (families that need more override this)."""
        return layer(hidden, layer_mask, **kwargs)


def _with_soft_bias(soft: torch.Tensor, sizes: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor:
    """The additive mask ``[B, 1, 1, n]`` of a layer under soft keep weights ``soft [B, n]`` (0 for padding):
    ``log(w)`` per key, plus ``log(size)`` with duplicity attention (``sizes``)."""
    weights = soft if sizes is None else soft * sizes.clamp_min(1.0)
    return soft_key_bias(weights, dtype)[:, None, None, :]


def _positions_out(positions: torch.Tensor | None, state: LayerState, tokens: int) -> torch.Tensor | None:
    """The original positions ``[B, k]`` of the tokens a layer hands on, from those of its ``tokens`` inputs
    (None: 0..n-1 in every row). Average-pool's pooled token takes the position of its window's first token."""
    settings = state.settings
    if settings.method == "average_pool":
        window = settings.pool_windows[state.index]
        if window == 1:
            return positions
        if positions is None:
            positions = torch.arange(tokens, device=state.key_mask_in.device).expand(state.key_mask_in.shape[0], -1)
        return torch.cat([positions[:, :1], positions[:, 1::window]], dim=1)
    if state.kept_order is None:
        return positions
    if positions is None:
        return state.kept_order
    return positions.gather(1, state.kept_order)


class PyramidLayerMixin:
    """Forward of a pyramid encoder layer; mixed in front of the model's own layer class by :func:`pyramidize`.

    The encoder sets ``self._pyramid.key_mask_in`` ``[B, n]`` before the call and reads ``key_mask_out`` after it.
    ``key_mask_in`` (and Random-select's draws) are kept until the next forward, so gradient checkpointing can
    re-run the layer and select the same tokens.
    """

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs):
        """``hidden_states [B, n, D]`` -> ``[B, min(l_j, n), D]`` (or pooled lengths for Average-pool); ``args`` and
        ``kwargs`` (the attention mask, ...) go to the family's attention sublayer."""
        state: LayerState = self._pyramid
        key_mask = state.key_mask_in
        state.sizes_out = state.sizes_in  # a layer that keeps every token passes the sizes on
        state.soft_out = state.soft_in
        state.kept_order = state.scores = None
        attention_output, attention_weights = self._pyramid_attention(hidden_states, *args, **kwargs)
        if state.settings.options.position == "middle":
            attention_output, key_mask = self._pyramid_reduce(attention_output, key_mask, attention_weights)
        layer_output = self._pyramid_ffn(attention_output)
        if state.settings.options.position == "end":
            layer_output, key_mask = self._pyramid_reduce(layer_output, key_mask, attention_weights)
        state.key_mask_out = key_mask
        if state.settings.method == "attention":
            _drop_captures(self)
        return layer_output

    def _pyramid_reduce(
        self, hidden: torch.Tensor, key_mask: torch.Tensor, attention_weights: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """This layer's selection: ``[B, n, D], [B, n]`` -> ``[B, k, D], [B, k]`` (see :func:`reduce_tokens`)."""
        return reduce_tokens(
            hidden, key_mask, self._pyramid, lambda: self._pyramid_significance(key_mask, attention_weights)
        )

    def _pyramid_significance(self, key_mask: torch.Tensor, attention_weights: torch.Tensor | None) -> torch.Tensor:
        """Attention received per key ``[B, n]``, from the layer's probabilities or its captured Q and K."""
        if attention_weights is None:  # SDPA and other fused kernels return no probabilities
            query, key = _captured_projections(self)
            heads, head_size = self._pyramid_heads()
            batch, tokens, _ = query.shape
            query = query.view(batch, tokens, heads, head_size).transpose(1, 2).float()
            key = key.view(batch, tokens, heads, head_size).transpose(1, 2).float()
            scores = torch.matmul(query, key.transpose(2, 3)) / math.sqrt(head_size)
            scores = scores.masked_fill(~key_mask[:, None, None, :], -math.inf)
            if self._pyramid.settings.options.duplicity_attention and self._pyramid.sizes_in is not None:
                scores = scores + torch.log(self._pyramid.sizes_in.clamp_min(1.0))[:, None, None, :].float()
            if self._pyramid.soft_in is not None:  # the layer's own attention weighs keys by their soft weights
                scores = scores + soft_key_bias(self._pyramid.soft_in, torch.float32)[:, None, None, :]
            attention_weights = scores.softmax(dim=-1)
        queries = key_mask if self._pyramid.soft_in is None else self._pyramid.soft_in  # soft: weighted queries
        significance = attention_significance(attention_weights, queries)
        if self._pyramid.settings.keep_thresholds is not None:
            return relative_scores(significance, attention_weights.shape[1])
        return significance


def reduce_tokens(
    hidden: torch.Tensor, key_mask: torch.Tensor, state: LayerState, significance: Callable[[], torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """One layer's token selection, whatever the model family: ``hidden [B, n, D]``, ``key_mask [B, n]`` ->
    ``[B, k, D], [B, k]`` with k from ``state.plan``; CLS first, kept tokens in their original order.

    ``significance()`` gives Attention-select's scores ``[B, n]`` (called for that method only). Sets
    ``state.kept_order``, ``state.kept_mask`` and, with sizes tracked, ``state.sizes_out``. Reads no tensor value
    on the host: the plan (:func:`pyramid_bert.patch.plan.plan_batch`) holds the width and per-example counts.
    """
    settings, plan = state.settings, state.plan
    if plan.keeps_all:
        return hidden, key_mask
    if settings.method == "average_pool":
        return average_pool(hidden, key_mask, settings.pool_windows[state.index])
    if state.soft_in is not None:
        return _soft_threshold(hidden, key_mask, state, significance), key_mask
    if settings.method == "energy":
        return merge_by_energy(hidden, key_mask, state)
    with torch.no_grad():
        if settings.keep_thresholds is not None:
            indices, counts = _select_by_threshold(key_mask, plan.width, state, significance)
        else:
            indices, counts = _select(hidden, key_mask, plan.width, state, significance), plan.counts
    kept, kept_mask, ordered = gather_tokens(hidden, key_mask, indices, counts)
    state.kept_order, state.kept_mask = ordered, kept_mask
    if settings.tracks_sizes:
        kept = _assign_sizes(hidden, key_mask, ordered, kept, kept_mask, state)
    return kept, kept_mask


def _select(
    hidden: torch.Tensor, key_mask: torch.Tensor, k: int, state: LayerState, significance: Callable[[], torch.Tensor]
) -> torch.Tensor:
    """The ``k`` positions ``[B, k]`` the layer's method selects, in selection order."""
    method, options = state.settings.method, state.settings.options
    if method == "coreset":
        return kcenter_greedy(hidden, k, m=options.m, mask=key_mask, distance=options.distance)
    if method == "attention":
        return attention_select(significance(), k, key_mask)
    if method == "first_k":
        return first_k(key_mask, k)
    return random_order(key_mask, k, state.random_draws)


def _select_by_threshold(
    key_mask: torch.Tensor, bound: int, state: LayerState, significance: Callable[[], torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep thresholds: ``(indices [B, k], counts [B])``: CLS and the real tokens whose relative score reaches the
    layer's threshold, in selection order (highest score first), k the batch's largest count. Eager: k from one
    host read of the counts; under ``torch.compile`` k is ``bound`` (from the shape) and the slots beyond an
    example's count are padding."""
    scores = state.scores = significance()
    counts = threshold_counts(scores, key_mask, state.settings.keep_thresholds[state.index])
    width = bound if torch.compiler.is_compiling() else int(counts.max())  # the layer's one host read
    return attention_select(scores, width, key_mask), counts.clamp_max(width)


def _soft_threshold(
    hidden: torch.Tensor, key_mask: torch.Tensor, state: LayerState, significance: Callable[[], torch.Tensor]
) -> torch.Tensor:
    """Keep thresholds in training with a soft mask: every token stays, weighed by its keep weight
    ``sigmoid((s - t) / T)`` times those of the layers before (``state.soft_out [B, n]``, also the keys' weights
    in the next layers' attention). ``hidden [B, n, D]`` -> ``[B, n, D]``."""
    settings = state.settings
    with torch.no_grad():
        weights = soft_keep_weights(
            significance(), key_mask, settings.keep_thresholds[state.index], settings.soft_threshold_temperature
        )
    state.soft_out = state.soft_in * weights
    return hidden * state.soft_out[:, :, None].to(hidden.dtype)


def _assign_sizes(
    hidden: torch.Tensor, key_mask: torch.Tensor, ordered: torch.Tensor, kept: torch.Tensor, kept_mask: torch.Tensor,
    state: LayerState,
) -> torch.Tensor:  # fmt: skip
    """Assign dropped tokens to their nearest kept token: sets ``state.sizes_out [B, k]``; merges if asked."""
    sizes = state.sizes_in
    with torch.no_grad():
        slots = assign_to_centers(hidden, key_mask, ordered, kept_mask, state.settings.options.distance)
    state.sizes_out = cluster_sizes(sizes, key_mask, slots, ordered.shape[1])
    if state.settings.options.merge:
        kept = merge_clusters(hidden, sizes, key_mask, slots, kept)
    return kept


def merge_by_energy(hidden: torch.Tensor, key_mask: torch.Tensor, state: LayerState) -> tuple[torch.Tensor, torch.Tensor]:
    """Energy-aware merging (:mod:`pyramid_bert.energy`): ``[B, n, D], [B, n]`` -> ``[B, k, D], [B, k]``, each kept
    token the size-weighted mean of the tokens merged into it (CLS its own embedding). Sets ``state.kept_order``,
    ``state.kept_mask`` and ``state.sizes_out``; the merge steps and widths come from ``state.plan``."""
    settings, plan = state.settings, state.plan
    margin = layer_margin(settings.options.energy_margin, state.index, len(settings.keep_ratios or settings.lengths))
    with torch.no_grad():
        ordered, kept_mask, slots = energy_merge(
            hidden, key_mask, state.sizes_in, plan.width, plan.merge_steps, margin, counts=plan.counts
        )
    kept = hidden.gather(1, ordered[:, :, None].expand(-1, -1, hidden.shape[-1]))
    state.kept_order, state.kept_mask = ordered, kept_mask
    state.sizes_out = cluster_sizes(state.sizes_in, key_mask, slots, plan.width)
    return merge_clusters(hidden, state.sizes_in, key_mask, slots, kept), kept_mask


@torch.compiler.disable
def random_draws(plan: BatchPlan, key_mask: torch.Tensor, state: LayerState) -> list[torch.Tensor | None]:
    """Random-select's uniform draws ``[B, n_j]`` for each selecting layer (None for the others), drawn in layer
    order from the generator of the mask's device (one per device, shared by every layer, seeded on first use).

    Drawn before the encoder runs and outside ``torch.compile`` graphs (dynamo cannot pass a ``torch.Generator``
    to an op): one graph break per forward, for this method only. The draws are those the layers would make.
    """
    device, (batch, width) = key_mask.device, key_mask.shape
    if str(device) not in state.generators:
        state.generators[str(device)] = torch.Generator(device=device).manual_seed(state.settings.seed)
    generator, draws = state.generators[str(device)], []
    for layer in plan.layers:
        draws.append(None if layer.keeps_all else torch.rand(batch, width, generator=generator, device=device))
        width = layer.width
    return draws


_CLASS_CACHE: dict[tuple[type, tuple[type, ...]], type] = {}


def _pyramid_class(original: type, *mixins: type) -> type:
    """``Pyramid<Original>``: ``mixins`` in front of ``original`` (cached, so isinstance checks stay cheap)."""
    if (original, mixins) not in _CLASS_CACHE:
        _CLASS_CACHE[original, mixins] = type(f"Pyramid{original.__name__}", (*mixins, original), {})
    return _CLASS_CACHE[original, mixins]


def _capture_queries_and_keys(layer: nn.Module, hooks: list) -> None:
    """Attention-select under SDPA: keep the layer's Q and K projections (no recomputation); families whose hooks
    return the attention probabilities themselves have no projections to capture.

    The hook is a module-level function that leaves the output on the projection module that ran it, where the layer
    reads it back (:func:`_captured_projections`). Nothing refers to the layer: a ``copy.deepcopy`` of the model
    captures into its own modules, and int8's swap of the projections (which carries the hooks over) keeps working."""
    projections = layer._pyramid_query_key()
    if projections is not None:
        hooks.extend(projection.register_forward_hook(_keep_output) for projection in projections)


def _keep_output(projection: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
    projection._pyramid_output = output.detach()  # a plain attribute (not a registered buffer)


def _captured_projections(layer: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The Q and K outputs ``[B, n, H * d]`` the layer's projections produced in this call."""
    query, key = layer._pyramid_query_key()
    return query._pyramid_output, key._pyramid_output


def _drop_captures(layer: nn.Module) -> None:
    """Forget this call's captured Q and K (they are not kept between forwards)."""
    for projection in layer._pyramid_query_key() or ():
        if hasattr(projection, "_pyramid_output"):
            del projection._pyramid_output
