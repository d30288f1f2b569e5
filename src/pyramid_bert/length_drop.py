"""LengthDrop for keep-ratio schedules: train one pyramid model that serves every schedule between its smallest one
and keeping everything (Kim & Cho 2021, Length-Adaptive Transformer; QuaLA-MiniLM uses the same training).

Each training step runs the batch under two keep-ratio schedules (the sandwich rule, without its largest member):

- the model's own schedule, the smallest it is trained for (``smallest``), and
- one random schedule drawn by :func:`draw_keep_ratios`: layer j keeps a ratio drawn uniformly from
  ``[max(smallest[j], (1 - bound) * r[j-1]), r[j-1]]`` (``r[0]`` = 1, everything), so every draw is non-increasing
  over the layers, never below the smallest schedule and never above keeping everything. ``bound`` is LAT's
  ``length_drop_ratio_bound`` read as a ratio: the largest fraction of the previous layer's tokens one layer of a
  draw drops (1: anything down to the smallest schedule).

LAT draws lengths ``randint(ceil((1 - bound) * l[j-1]), l[j-1])`` per layer, floored at 2 tokens, and trains the full
model, the smallest configuration and ``num_sandwich`` random ones each step (the sub-models distil from the full
model's logits). Here the floor is the smallest schedule, ratios are continuous (each example keeps
``ceil(r * its real tokens)``), and the full-length forward is left out: 2 forwards and backwards per step instead of
3 (this project trains on 2 CPU cores); the full model's role as teacher is taken, when asked, by the existing
distillation to the dense starting model (``distill_weight``), one forward without gradients per step.

The draw of step s depends only on (seed, s) (:func:`step_rng`), so a run resumed after a kill draws what the
uninterrupted run would have, with no state to save. Pure Python: no torch.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pyramid_bert.errors import ConfigError

#: Forwards (each with its backward) of one LengthDrop training step: the smallest schedule and one random draw.
FORWARDS_PER_STEP = 2


def check_length_drop(value: object) -> float:
    """``--length-drop``: 0 (off) or LAT's bound in (0, 1]; anything else is a ConfigError naming the flag."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(
            "--length-drop: must be a number in [0, 1] (0: off; else the largest fraction of the previous layer's "
            f"tokens one layer of a random training schedule drops, 1: anything down to the smallest); got {value!r}"
        )
    return float(value)


def step_rng(seed: int, step: int) -> random.Random:
    """The generator of training step ``step`` (0-based) of a run seeded ``seed``: the same on every machine and
    after a resume (a string seed is hashed with SHA-512, not with Python's per-process hash)."""
    return random.Random(f"pyramid-bert length-drop seed={seed} step={step}")


def draw_keep_ratios(smallest: Sequence[float], bound: float, rng: random.Random) -> list[float]:
    """One random keep-ratio schedule between ``smallest`` (non-increasing, one ratio per layer) and all ones.

    Layer j draws uniformly from ``[max(smallest[j], (1 - bound) * previous), previous]``, ``previous`` being the
    draw of layer j - 1 (1.0 before layer 1). Returns one ratio per layer, non-increasing, each in
    ``[smallest[j], 1]``.
    """
    bound = check_length_drop(bound)
    ratios, previous = [], 1.0
    for floor in smallest:
        low, high = max(float(floor), (1.0 - bound) * previous), previous
        previous = min(high, max(low, low + (high - low) * rng.random()))
        ratios.append(previous)
    return ratios


def sandwich(smallest: Sequence[float], bound: float, seed: int, step: int) -> list[list[float]]:
    """The schedules training step ``step`` runs: ``[smallest, one random draw]`` (see the module docstring)."""
    return [list(smallest), draw_keep_ratios(smallest, bound, step_rng(seed, step))]


def in_draws(ratios: Sequence[float], smallest: Sequence[float], bound: float) -> bool:
    """Whether :func:`draw_keep_ratios` can draw ``ratios`` (up to rounding): every layer at least the smallest
    schedule's, at most the layer before and at least ``1 - bound`` of it."""
    previous, tolerance = 1.0, 1e-9
    for ratio, floor in zip(ratios, smallest, strict=True):
        if ratio < floor - tolerance or ratio > previous + tolerance or ratio < (1.0 - bound) * previous - tolerance:
            return False
        previous = ratio
    return True


def covering_bound(schedules: Sequence[Sequence[float]]) -> float:
    """The smallest ``bound`` whose draws reach every schedule of ``schedules`` (non-increasing keep ratios): the
    largest fraction any schedule drops from one layer to the next (from 1.0 before layer 1)."""
    drops = [
        1.0 - ratio / previous
        for ratios in schedules
        for previous, ratio in zip([1.0, *ratios[:-1]], ratios, strict=True)
    ]
    return max([0.0, *drops])


def smallest_schedule(schedules: Sequence[Sequence[float]]) -> list[float]:
    """The layer-wise minimum of keep-ratio schedules of one length: the smallest schedule a LengthDrop model must be
    trained for to serve them all (non-increasing when each of them is)."""
    if not schedules or len({len(ratios) for ratios in schedules}) != 1:
        raise ConfigError(f"--length-drop: keep-ratio schedules of one length needed; got {list(schedules)}")
    return [min(column) for column in zip(*schedules, strict=True)]
