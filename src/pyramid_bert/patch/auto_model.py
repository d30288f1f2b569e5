"""``AutoModel`` / ``AutoModelForSequenceClassification`` (hence pipelines) for saved pyramid models.

:func:`register_models` (run by the import hook of :mod:`pyramid_bert.patch.auto_hooks` once transformers'
``modeling_auto`` is imported) maps each marked config class (``Pyramid<BertConfig>``, ..., made by ``pyramidize`` or
by reading a saved folder) to a loader here. A loader builds the dense family's own class (the one the Auto class maps the dense config to:
``BertForSequenceClassification``, ...), loads the folder's weights into it as they are, and applies the stored
selection with :func:`~pyramid_bert.patch.hf.pyramidize`: the same model :func:`~pyramid_bert.load_pyramid_model`
gives. Other Auto classes (masked LM, token classification) do not know the marked class and say so.
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

from torch import nn
from transformers import AutoModel, AutoModelForSequenceClassification

from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.auto_config import PyramidAutoConfig
from pyramid_bert.patch.saved_config import dense_config_class, on_new_config_class
from pyramid_bert.precision import PrecisionNotAppliedWarning, stored_precision
from pyramid_bert.spec import PyramidSettings

__all__ = ["PyramidAutoConfig", "PyramidAutoModel", "PyramidAutoModelForSequenceClassification", "register_models"]


class _PyramidLoader:
    """Loads a pyramid model as the dense class that ``auto_class`` maps its family to, then pyramidizes it."""

    auto_class: ClassVar[type]

    @classmethod
    def from_pretrained(
        cls, pretrained_model_name_or_path: Any, *model_args: Any, config: Any, **kwargs: Any
    ) -> nn.Module:
        """What ``auto_class.from_pretrained`` calls with the marked ``config`` it read from the folder."""
        dense_class = cls.dense_class(config)
        model = dense_class.from_pretrained(pretrained_model_name_or_path, *model_args, config=config, **kwargs)
        precision = stored_precision(model.config)
        if precision != "fp32":  # Auto classes also serve training, so they give float32 and say so
            warnings.warn(
                f"{pretrained_model_name_or_path}: this model was chosen to run at {precision} (config.json "
                f"'precision'); loaded as float32. For {precision} inference: pyramid_bert.load_pyramid_model(path), "
                f"or pyramid_bert.patch.quantize.quantize(model, {precision!r})",
                PrecisionNotAppliedWarning,
                stacklevel=2,
            )
        return with_stored_selection(model)

    @classmethod
    def _from_config(cls, config: Any, **kwargs: Any) -> nn.Module:
        """What ``auto_class.from_config`` calls: a fresh (randomly initialized) pyramid model."""
        return with_stored_selection(cls.dense_class(config)._from_config(config, **kwargs))

    @classmethod
    def dense_class(cls, config: Any) -> type:
        """The model class ``auto_class`` gives the dense family of ``config`` (e.g. BertForSequenceClassification)."""
        found = cls.auto_class._model_mapping[dense_config_class(type(config))]
        return found[0] if isinstance(found, (list, tuple)) else found


class PyramidAutoModel(_PyramidLoader):
    """``AutoModel`` of a pyramid folder: the family's base model (``BertModel``, ...), pyramidized."""

    auto_class = AutoModel


class PyramidAutoModelForSequenceClassification(_PyramidLoader):
    """``AutoModelForSequenceClassification`` (and the text-classification pipeline) of a pyramid folder."""

    auto_class = AutoModelForSequenceClassification


LOADERS = (PyramidAutoModel, PyramidAutoModelForSequenceClassification)


def with_stored_selection(model: nn.Module) -> nn.Module:
    """``model`` pyramidized with the settings of its ``config.pyramid`` (a ConfigError when there are none).

    :mod:`pyramid_bert.patch.hf` is imported here, at call time: this module loads from the hook that fires when
    transformers' ``modeling_auto`` loads, which can be in the middle of transformers' own imports (e.g.
    ``modeling_layers`` half initialized), and patch.hf imports model families' modules that need those."""
    from pyramid_bert.patch import hf

    stored = getattr(model.config, hf.CONFIG_KEY, None)
    if not stored:
        raise ConfigError(
            f"config.json: model_type 'pyramid-bert' without a {hf.CONFIG_KEY!r} entry (the selection settings); the "
            "folder was not written by pyramid-bert, or was edited"
        )
    return hf.pyramidize(model, settings=PyramidSettings.from_dict(stored))


def register_models() -> None:
    """Map each marked config class (``Pyramid<BertConfig>``, ...), made so far or later, to the loaders (idempotent).

    Nothing is resolved ahead: the hook runs while transformers may be half way through importing a family's module."""
    on_new_config_class(register_loaders)


def register_loaders(config_class: type) -> None:
    """Map ``config_class`` (a marked config class) to the loaders in the Auto classes they serve."""
    for loader in LOADERS:
        loader.auto_class.register(config_class, loader, exist_ok=True)
