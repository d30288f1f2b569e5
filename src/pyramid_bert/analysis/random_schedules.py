"""Sequence-length configurations for the paper's Appendix B (Figure 6): Eq. 5 against random ones.

- :func:`eq5_schedules`: ``count`` distinct Eq. 5 schedules of the (prune_upto, p) grid, spread evenly over
  their predicted speedups (all of them when the grid has no more);
- :func:`random_schedules`: ``count`` random non-increasing configurations, each length in ``[low, n]``: L
  lengths drawn uniformly (with replacement) from ``[low, n]`` and sorted in decreasing order, the all-``n``
  configuration (dense) redrawn, duplicates redrawn. ``low`` defaults to 1; the ablation passes the smallest
  length of the Eq. 5 set so that both families cover comparable speedups.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from pyramid_bert.errors import ConfigError
from pyramid_bert.sweep.plan import ModelShape, Schedule, grid_schedules


def is_non_increasing(lengths: Sequence[int]) -> bool:
    """True when ``lengths[j] >= lengths[j + 1]`` for every j."""
    return all(a >= b for a, b in zip(lengths, lengths[1:], strict=False))


def random_schedules(n: int, num_layers: int, count: int, *, seed: int, low: int = 1) -> list[tuple[int, ...]]:
    """``count`` distinct random non-increasing configurations of ``num_layers`` lengths in ``[low, n]``."""
    if not 1 <= low <= n:
        raise ConfigError(f"low must be in 1..{n} (the input length), got {low}")
    if count < 1 or num_layers < 1:
        raise ConfigError(f"--configs must be >= 1 and the model must have layers; got {count}, {num_layers}")
    rng = random.Random(seed)
    chosen: dict[tuple[int, ...], None] = {}
    attempts = 0
    while len(chosen) < count:
        attempts += 1
        if attempts > 1000 * count:
            raise ConfigError(f"--configs: cannot draw {count} distinct configurations from lengths {low}..{n}")
        lengths = tuple(sorted((rng.randint(low, n) for _ in range(num_layers)), reverse=True))
        if all(k == n for k in lengths):
            continue
        chosen.setdefault(lengths)
    return list(chosen)


def eq5_schedules(
    n: int, shape: ModelShape, count: int, *, grid: Sequence[tuple[int, float]] | None = None
) -> list[Schedule]:
    """``count`` Eq. 5 schedules, evenly spread over the grid's predicted speedups (sorted by it)."""
    if count < 1:
        raise ConfigError(f"--configs must be >= 1, got {count}")
    schedules = sorted(grid_schedules(n, shape, grid=grid), key=lambda s: s.predicted_speedup)
    if len(schedules) <= count:
        return schedules
    if count == 1:
        return [schedules[len(schedules) // 2]]
    picks = sorted({round(i * (len(schedules) - 1) / (count - 1)) for i in range(count)})
    return [schedules[i] for i in picks]
