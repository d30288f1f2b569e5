"""What :func:`pyramid_bert.pyramidize` needs to know about one encoder family (BERT, DistilBERT, ALBERT, ...).

A family is found by the config's ``model_type``. Its specifics are two small mixins that :mod:`pyramid_bert.patch.hf`
puts in front of its shared pyramid classes, in the models' own classes (in place, weights untouched):

- ``encoder_hooks`` on the encoder module: ``_pyramid_layers()`` (the layer module called at each schedule index:
  one per layer, or ALBERT's one shared module repeated), ``forward`` when the family's encoder signature differs
  from BERT's (it reads the key-padding mask and calls the shared loop ``self._pyramid_run``), and
  ``_pyramid_call(layer, hidden, bias, state, kwargs)`` when a layer needs more than its attention mask (DeBERTa's
  relative positions, ModernBERT's rotary embeddings and sliding windows, built from ``state.positions_in``: the
  kept tokens' ORIGINAL positions).
- ``layer_hooks`` on each layer: ``_pyramid_attention(hidden, *args, **kwargs) -> (output, probabilities or None)``
  (the attention sublayer with its residual and norm), ``_pyramid_ffn(x) -> y`` (the feed-forward sublayer with
  its residual and norm), ``_pyramid_query_key()`` (the Q and K projections Attention-select reads under SDPA, or
  None when the hooks return probabilities themselves) and ``_pyramid_heads()`` (heads, head size).
- ``head_hooks`` (optional), by task-model class name: a mixin for a head whose pooling must see the kept tokens
  (ModernBERT's mean pooling).

Everything that cannot be supported is refused by ``check`` with a ConfigError that says why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from pyramid_bert.errors import ConfigError
from pyramid_bert.spec import PyramidSettings


def no_check(model: nn.Module, settings: PyramidSettings) -> None:
    """A family that supports every method and option."""


@dataclass(frozen=True)
class Family:
    """One encoder family: how to find its encoder, the mixins that make it a pyramid, what it refuses (its FLOPs
    geometry: :mod:`pyramid_bert.geometry`)."""

    name: str
    model_types: tuple[str, ...]
    encoder: Callable[[nn.Module], nn.Module | None]  # base model -> the module whose class gets encoder_hooks
    encoder_hooks: type
    layer_hooks: type
    check: Callable[[nn.Module, PyramidSettings], None] = no_check
    attention_implementations: tuple[str, ...] = ("eager", "sdpa")
    head_hooks: dict[str, type] = field(default_factory=dict)  # task model class name -> mixin (pooling)

    def layers(self, encoder: nn.Module) -> list[nn.Module]:
        """The layer module of each schedule index (``encoder_hooks._pyramid_layers`` on the unpatched encoder)."""
        return self.encoder_hooks._pyramid_layers(encoder)

    def check_model(self, model: nn.Module, settings: PyramidSettings) -> None:
        """Refuse attention implementations and settings the family cannot run (ConfigError saying why)."""
        implementation = getattr(model.config, "_attn_implementation", None) or "eager"
        if implementation not in self.attention_implementations:
            raise ConfigError(
                f"pyramidize: {self.name} with attn_implementation={implementation!r} is not supported (its kernel "
                f"cannot take the per-layer masks of kept tokens); load the model with attn_implementation in "
                f"{', '.join(self.attention_implementations)}"
            )
        self.check(model, settings)

