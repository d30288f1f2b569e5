"""The precisions a model can run at (``fp32``, ``int8``) and how a saved model folder names its own.

Pure Python (no torch), so the command line can offer ``--precision`` without importing the model stack; the
quantization itself is :func:`pyramid_bert.patch.quantize.quantize`, which says why int8 is done the way it is.

A saved model folder keeps float32 weights and says ``"precision": "int8"`` in its ``config.json``
(:func:`mark_precision`); :func:`pyramid_bert.load_pyramid_model` quantizes at load (:func:`stored_precision`).
"""

from __future__ import annotations

from typing import Any

from pyramid_bert.errors import ConfigError

#: The precisions a model can run at; the first is the default.
PRECISIONS = ("fp32", "int8")
#: The ``config.json`` key saying at which precision a saved model folder is meant to run.
CONFIG_KEY = "precision"


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else a ConfigError naming ``--precision`` and the choices."""
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision: must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    return precision


def stored_precision(config: Any) -> str:
    """The precision a model's config (a ``PretrainedConfig`` or the dict of a ``config.json``) asks for (``fp32``
    when it says nothing); a ConfigError for an unknown one."""
    value = config.get(CONFIG_KEY) if isinstance(config, dict) else getattr(config, CONFIG_KEY, None)
    return check_precision(value or "fp32")


def mark_precision(config: Any, precision: str) -> None:
    """Record ``precision`` in ``config`` (saved in ``config.json``); ``fp32`` removes the key."""
    check_precision(precision)
    if precision == "fp32":
        if hasattr(config, CONFIG_KEY):
            delattr(config, CONFIG_KEY)
        return
    setattr(config, CONFIG_KEY, precision)


class PrecisionNotAppliedWarning(UserWarning):
    """A model whose config asks for a precision was loaded at float32 (e.g. through Hugging Face's Auto classes,
    which also serve training); :func:`pyramid_bert.load_pyramid_model` applies the precision and silences it."""
