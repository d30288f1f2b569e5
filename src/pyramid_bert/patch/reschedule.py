"""Change the keep-ratio schedule of a pyramidized model in place, weights and everything else untouched.

Keep ratios are read at every forward (:func:`pyramid_bert.patch.plan.plan_batch` computes each example's counts from
them), so a new schedule takes effect at the next forward: a LengthDrop model (:mod:`pyramid_bert.length_drop`) is
trained under a different schedule each step, and ``compress`` runs one trained model under each candidate schedule.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from torch import nn

from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.hf import CONFIG_KEY, PyramidEncoderMixin, find_encoder


def set_keep_ratios(model: nn.Module, ratios: Sequence[float]) -> nn.Module:
    """Give the pyramidized ``model`` (a keep-ratio schedule) the schedule ``ratios`` (one non-increasing ratio in
    (0, 1] per encoder layer) and return it; ``model.config.pyramid`` says the new schedule (``save_pretrained``
    writes it). The method, its options and Random-select's generators stay."""
    encoder = find_encoder(model)
    if not isinstance(encoder, PyramidEncoderMixin):
        raise ConfigError("set_keep_ratios: the model is not pyramidized; pyramidize it with keep_ratios first")
    settings = encoder._pyramid_settings
    if settings.keep_ratios is None:
        raise ConfigError(
            f"set_keep_ratios: the model has a fixed schedule ({settings.method}, lengths {settings.lengths}); "
            "only a keep-ratio schedule can change in place"
        )
    settings = dataclasses.replace(settings, keep_ratios=list(ratios)).validated(len(encoder._pyramid_states))
    encoder._pyramid_settings = settings
    for state in encoder._pyramid_states:
        state.settings = settings
    setattr(model.config, CONFIG_KEY, settings.to_dict())
    return model
