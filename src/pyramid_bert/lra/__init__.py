"""Long Range Arena backbones trained from scratch, with token selection once at the input layer.

The paper's Section 6.4 / Appendix C.2: on LRA the backbones (Big Bird, Performer) are shallow and not
pre-trained, so selection happens once, on the embedding output, before the first encoder layer; every
layer then runs on the ``k`` kept tokens. A ``[CLS]`` token is prepended to every sequence (position 0) and
is always kept; the classifier reads it.

Modules:

- :mod:`~pyramid_bert.lra.input_selection`: choose and gather ``k`` of the ``N`` embedded tokens;
- :mod:`~pyramid_bert.lra.performer`: FAVOR+ attention and a small Performer encoder;
- :mod:`~pyramid_bert.lra.models`: :class:`LraModelConfig`, the Big Bird and Performer classifiers;
- :mod:`~pyramid_bert.lra.training`: seeded AdamW training and evaluation on token-id arrays;
- :mod:`~pyramid_bert.lra.experiment`: the Table 4 comparison (methods x one backbone x one task).

Usage::

    from pyramid_bert.lra import LraModelConfig, build_lra_model
    config = LraModelConfig(backbone="performer", vocab_size=256, num_labels=10, seq_len=784,
                            method="coreset", keep=429, m=1)
    model = build_lra_model(config)             # logits = model(input_ids [B, 784], mask [B, 784]) -> [B, 10]
"""

from __future__ import annotations

from pyramid_bert.lra.input_selection import INPUT_METHODS, InputTokenSelector, keep_for_space_reduction
from pyramid_bert.lra.models import BACKBONES, LraModelConfig, build_lra_model

__all__ = [
    "BACKBONES",
    "INPUT_METHODS",
    "InputTokenSelector",
    "LraModelConfig",
    "build_lra_model",
    "keep_for_space_reduction",
]
