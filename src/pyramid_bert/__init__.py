"""Pyramid-BERT: successive core-set token selection inside BERT-family encoders.

Public API::

    from pyramid_bert import pyramidize, unpyramidize, PyramidSettings, SelectionOptions
    from pyramid_bert.selection import kcenter_greedy
    from pyramid_bert.schedule import sequence_lengths, PAPER_GRID

A folder saved from a pyramidized model (``save_pretrained``, ``pyramid-bert finetune`` / ``compress``) loads as the
pyramid model through transformers' own ``AutoModel*.from_pretrained`` and ``pipeline`` once ``pyramid_bert`` is
imported (the classes ``PyramidAuto*`` are registered for its model_type "pyramid-bert" when transformers' Auto
machinery loads), and with ``trust_remote_code=True`` without the import; see ``pyramid_bert.patch.saved_config``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyramid_bert.patch import auto_hooks as _auto_hooks

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "METHODS",
    "PyramidAutoConfig",
    "PyramidAutoModel",
    "PyramidAutoModelForSequenceClassification",
    "PyramidSettings",
    "SelectionOptions",
    "is_pyramidized",
    "kept_input_positions",
    "load_pyramid_model",
    "pyramid_settings",
    "pyramidize",
    "unpyramidize",
]
_SPEC_NAMES = frozenset({"METHODS", "PyramidSettings", "SelectionOptions"})
_AUTO_NAMES = frozenset({"PyramidAutoConfig", "PyramidAutoModel", "PyramidAutoModelForSequenceClassification"})
_PATCH_NAMES = frozenset(__all__[1:]) - _SPEC_NAMES - _AUTO_NAMES

if TYPE_CHECKING:
    from pyramid_bert.patch.auto_model import (
        PyramidAutoConfig,
        PyramidAutoModel,
        PyramidAutoModelForSequenceClassification,
    )
    from pyramid_bert.patch.hf import (
        is_pyramidized,
        kept_input_positions,
        load_pyramid_model,
        pyramid_settings,
        pyramidize,
        unpyramidize,
    )
    from pyramid_bert.spec import METHODS, PyramidSettings, SelectionOptions


def __getattr__(name: str) -> Any:
    # Lazy: `import pyramid_bert` (and the CLI) must not pay for importing torch and transformers.
    if name in _SPEC_NAMES:
        from pyramid_bert import spec

        return getattr(spec, name)
    if name in _PATCH_NAMES:
        from pyramid_bert.patch import hf

        return getattr(hf, name)
    if name in _AUTO_NAMES:
        from pyramid_bert.patch import auto_model

        return getattr(auto_model, name)
    raise AttributeError(f"module 'pyramid_bert' has no attribute {name!r}")


_auto_hooks.install()
