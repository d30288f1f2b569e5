"""Pyramid-BERT: successive core-set token selection inside BERT-family encoders.

Public API::

    from pyramid_bert import pyramidize, unpyramidize
    from pyramid_bert.selection import kcenter_greedy
    from pyramid_bert.schedule import sequence_lengths, PAPER_GRID
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "METHODS",
    "is_pyramidized",
    "kept_input_positions",
    "load_pyramid_model",
    "pyramid_settings",
    "pyramidize",
    "unpyramidize",
]
_PATCH_NAMES = frozenset(__all__[1:])

if TYPE_CHECKING:
    from pyramid_bert.patch.hf import (
        METHODS,
        is_pyramidized,
        kept_input_positions,
        load_pyramid_model,
        pyramid_settings,
        pyramidize,
        unpyramidize,
    )


def __getattr__(name: str) -> Any:
    # Lazy: `import pyramid_bert` (and the CLI) must not pay for importing torch and transformers.
    if name in _PATCH_NAMES:
        from pyramid_bert.patch import hf

        return getattr(hf, name)
    raise AttributeError(f"module 'pyramid_bert' has no attribute {name!r}")
