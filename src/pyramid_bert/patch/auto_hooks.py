"""Registers pyramid-bert's Auto classes with transformers when (and only when) transformers' Auto machinery loads.

``import pyramid_bert`` installs two post-import hooks (wrapt's): when ``transformers.models.auto.configuration_auto``
is imported, :func:`~pyramid_bert.patch.auto_config.register_config` runs; when ``...modeling_auto`` is, so does
:func:`~pyramid_bert.patch.auto_model.register_models`. A hook whose module is already imported runs at once. So
``import pyramid_bert`` stays cheap (no torch, no transformers), and whatever the order of the imports, an Auto class
or pipeline never meets a pyramid folder before the classes that load it are registered.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from types import ModuleType

import wrapt

CONFIG_MODULE = "transformers.models.auto.configuration_auto"
MODELS_MODULE = "transformers.models.auto.modeling_auto"


def install() -> None:
    """Install the hooks (wrapt runs each hook once per import of its module; registering twice is harmless)."""
    wrapt.register_post_import_hook(_register_config, CONFIG_MODULE)
    wrapt.register_post_import_hook(_register_models, MODELS_MODULE)


def _register_config(_module: ModuleType) -> None:
    from pyramid_bert.patch.auto_config import register_config

    _guarded(register_config)


def _register_models(_module: ModuleType) -> None:
    from pyramid_bert.patch.auto_model import register_models

    _guarded(register_models)


def _guarded(register: Callable[[], None]) -> None:
    """Run ``register``; a failure warns (an import of transformers must not fail because of pyramid-bert)."""
    try:
        register()
    except Exception as error:  # noqa: BLE001 - any failure: the import that triggered the hook must go on
        warnings.warn(
            f"pyramid-bert could not register its Auto classes with transformers ({type(error).__name__}: {error}); "
            "saved pyramid models will not load through AutoModel* or pipeline: use pyramid_bert.load_pyramid_model",
            RuntimeWarning,
            stacklevel=2,
        )
