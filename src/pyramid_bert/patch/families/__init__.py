"""The encoder families :func:`pyramid_bert.pyramidize` supports, one module each (see :mod:`.base`)."""

from __future__ import annotations

from typing import Any

from torch import nn

from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.families.albert import ALBERT
from pyramid_bert.patch.families.base import Family
from pyramid_bert.patch.families.bert import BERT
from pyramid_bert.patch.families.deberta import DEBERTA
from pyramid_bert.patch.families.distilbert import DISTILBERT
from pyramid_bert.patch.families.modernbert import MODERNBERT

FAMILIES: tuple[Family, ...] = (BERT, DISTILBERT, ALBERT, DEBERTA, MODERNBERT)
SUPPORTED_MODEL_TYPES: tuple[str, ...] = tuple(kind for family in FAMILIES for kind in family.model_types)


def family_of_config(config: Any) -> Family:
    """The family of a model config (by ``model_type``), or a ConfigError naming the supported model types."""
    model_type = getattr(config, "model_type", None)
    for family in FAMILIES:
        if model_type in family.model_types:
            return family
    raise ConfigError(
        f"model_type {model_type!r} is not supported; pyramidize supports model types {', '.join(SUPPORTED_MODEL_TYPES)} "
        "(e.g. BertForSequenceClassification, DistilBertModel, AlbertForSequenceClassification, DebertaV2Model, ModernBertModel, ...)"
    )


def find_family(model: nn.Module) -> tuple[Family, nn.Module]:
    """``(family, encoder module)`` of a supported encoder model, or a clear ConfigError."""
    config = getattr(model, "config", None)
    try:
        family = family_of_config(config)
    except ConfigError as error:
        raise ConfigError(f"{type(model).__name__}: {error}") from None
    if getattr(config, "is_decoder", False):
        raise ConfigError("pyramidize supports encoder models only; this config has is_decoder=True")
    encoder = family.encoder(model)
    if encoder is None:
        raise ConfigError(
            f"{type(model).__name__}: its encoder does not have the {family.name} layer structure pyramidize needs"
        )
    return family, encoder

