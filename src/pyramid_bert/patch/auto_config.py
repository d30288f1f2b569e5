"""``AutoConfig`` for saved pyramid models: model_type "pyramid-bert" reads back as the dense family's config, marked.

:func:`register_config` (run by the import hook of :mod:`pyramid_bert.patch.auto_hooks` once transformers'
``configuration_auto`` is imported) registers :class:`PyramidAutoConfig` under ``model_type`` "pyramid-bert", so
``AutoConfig.from_pretrained(FOLDER)`` (and every Auto class and pipeline, which start there) reads such a folder as a
``Pyramid<BertConfig>``: a ``BertConfig`` with the ``pyramid`` settings that saves itself in the pyramid form again
(:mod:`pyramid_bert.patch.saved_config`). This module needs only transformers' config machinery, not its models.
"""

from __future__ import annotations

from typing import Any

from transformers import PretrainedConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING, AutoConfig

from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.saved_config import DENSE_TYPE_KEY, MODEL_TYPE, dense_form, mark_config


class PyramidAutoConfig(PretrainedConfig):
    """What ``AutoConfig`` finds under model_type "pyramid-bert" (and what ``auto_map`` names for
    ``trust_remote_code``). Never an instance itself: :meth:`from_dict` returns the dense family's config, marked."""

    model_type = MODEL_TYPE

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs: Any) -> Any:
        """The saved pyramid ``config_dict`` as its dense family's config (``BertConfig``, ...) made to save in the
        pyramid form; ``(config, unused_kwargs)`` when ``return_unused_kwargs=True``, as transformers expects."""
        dense = dense_form(config_dict)
        if dense["model_type"] not in CONFIG_MAPPING:
            raise ConfigError(
                f"config.json: {DENSE_TYPE_KEY} {dense['model_type']!r} is not a model type this transformers "
                "version knows"
            )
        loaded = CONFIG_MAPPING[dense["model_type"]].from_dict(dense, **kwargs)
        mark_config(loaded[0] if isinstance(loaded, tuple) else loaded)
        return loaded


def register_config() -> None:
    """Make ``AutoConfig`` read model_type "pyramid-bert" (idempotent)."""
    AutoConfig.register(MODEL_TYPE, PyramidAutoConfig, exist_ok=True)
