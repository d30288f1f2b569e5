"""``torch.compile`` for (pyramid) models: one function, the mode chosen by measurement.

A pyramidized model compiles without graph breaks (its per-batch plan is computed from the attention mask before
the encoder runs, and k-center's rounds are one custom operator, see :mod:`pyramid_bert.patch.plan` and
:func:`pyramid_bert.selection.kcenter_greedy`), with dynamic shapes so that sentences of every length share one
compiled graph (a few recompilations where a schedule's ``min(l_j, n)`` switches branch).
"""

from __future__ import annotations

from torch import nn

from pyramid_bert.errors import ConfigError

#: ``torch.compile`` modes offered; see :data:`DEFAULT_MODE`.
COMPILE_MODES = ("default", "max-autotune-no-cudagraphs")
#: The mode :func:`compile_model` uses: on this project's CPU "max-autotune-no-cudagraphs" compiled several times
#: longer and ran no faster at batch 1 or 32 (benchmarks/compile_speed.md).
DEFAULT_MODE = "default"


def compile_model(model: nn.Module, *, mode: str = DEFAULT_MODE) -> nn.Module:
    """Compile ``model`` in place (``nn.Module.compile``: its calls go through ``torch.compile(dynamic=True)``) and
    return it; attributes, config and ``isinstance`` checks stay those of the model. The first call of each new
    input kind compiles (a minute or more on a small CPU)."""
    if mode not in COMPILE_MODES:
        raise ConfigError(f"compile mode must be one of {', '.join(COMPILE_MODES)}; got {mode!r}")
    model.compile(dynamic=True, mode=mode)
    return model
