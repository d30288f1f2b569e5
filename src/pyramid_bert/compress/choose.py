"""The choice rule of ``compress``: which tried configuration to ship (pure: a table in, a choice out).

Dev splits are small, so the rule reads dev differences with their paired bootstrap intervals
(:mod:`pyramid_bert.compress.dev_noise`) when the rows carry them:

- ``--target-speedup X``: among the configurations whose measured real speedup is at least X, those whose dev
  metric is not significantly below the best one's (the paired interval of their difference reaches 0); of those,
  the slowest, which selects least (ties: the better on dev). A faster configuration is taken only when it is
  significantly better on dev. (The paper: "select the optimal configuration satisfying the required speed-up".)
- ``--max-drop D``: among the configurations whose dev loss against the dense model is at most D points *at the
  upper end of its interval*, the fastest (ties: the better on dev). When dev is too small to resolve D (the
  intervals are wider than D), the message says so and names the dev size.

Rows without intervals (work files of an older version) are chosen on the point estimates, and the reason says so.
When nothing qualifies the error names what is reachable: the best measured speedup, or the smallest dev loss.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pyramid_bert.compress.dev_noise import DevDifference, resolution
from pyramid_bert.errors import ConfigError

POINTS = 100.0
#: ``compare(i, j)``: the dev difference of row i minus row j (points, paired interval).
Compare = Callable[[int, int], DevDifference]


@dataclass(frozen=True)
class Choice:
    """The chosen row (index into the table), why, in words, and a warning when dev cannot carry the choice."""

    index: int
    reason: str
    warning: str | None = None


def dev_loss(row: dict[str, Any], dense_dev: float) -> float:
    """Points lost on dev against the dense model (positive = worse)."""
    return (dense_dev - row["dev"]) * POINTS


def loss_interval(row: dict[str, Any]) -> tuple[float, float] | None:
    """The dev loss against dense as ``(low, high)`` points (positive = worse), from the row's paired interval."""
    difference = row.get("dev_vs_dense")
    return None if difference is None else (-difference["high"], -difference["low"])


def choose(
    rows: Sequence[dict[str, Any]],
    *,
    dense_dev: float,
    target_speedup: float | None = None,
    max_drop: float | None = None,
    compare: Compare | None = None,
) -> Choice:
    """Pick from ``rows`` (each with ``label``, ``speedup`` (measured, real), ``dev`` and, when measured,
    ``dev_vs_dense``); see the module docstring. Exactly one of ``target_speedup`` and ``max_drop``; ``compare``
    gives paired dev differences between rows (None: point estimates). Raises ConfigError naming the flag."""
    if (target_speedup is None) == (max_drop is None):
        raise ConfigError("--target-speedup / --max-drop: give exactly one of them")
    if not rows:
        raise ConfigError("compress: no configuration was tried")
    if target_speedup is not None:
        return _by_target(rows, target_speedup, compare)
    assert max_drop is not None
    return _by_drop(rows, dense_dev, max_drop)


def _by_target(rows: Sequence[dict[str, Any]], target: float, compare: Compare | None) -> Choice:
    eligible = [i for i, row in enumerate(rows) if row["speedup"] >= target]
    if not eligible:
        best = max(range(len(rows)), key=lambda i: rows[i]["speedup"])
        raise ConfigError(
            f"--target-speedup {target:g}: no configuration reached it; the best reachable speedup is "
            f"{rows[best]['speedup']:.2f}X ({rows[best]['label']}); lower the target or give faster --candidates"
        )
    best = max(eligible, key=lambda i: (rows[i]["dev"], rows[i]["speedup"]))
    if compare is None:
        return Choice(best, f"the best dev metric among the {len(eligible)} configuration(s) with real speedup >= "
                            f"{target:g}X (point estimates: no dev intervals in these work files)")  # fmt: skip
    level = [i for i in eligible if i == best or compare(i, best).high >= 0]
    index = min(level, key=lambda i: (rows[i]["speedup"], -rows[i]["dev"]))
    examples = compare(index, best).examples
    return Choice(index, (
        f"the slowest of the {len(level)} configuration(s) with real speedup >= {target:g}X whose dev metric is not "
        f"significantly below the best one's ({rows[best]['label']}; paired bootstrap 95%, {examples} dev examples); "
        "a faster one would have to be significantly better on dev"
    ))  # fmt: skip


def _by_drop(rows: Sequence[dict[str, Any]], dense_dev: float, max_drop: float) -> Choice:
    intervals = [loss_interval(row) for row in rows]
    if any(interval is None for interval in intervals):
        upper = [dev_loss(row, dense_dev) for row in rows]
        how = "losing at most {drop:g} points on dev (point estimates: no dev intervals in these work files)"
    else:
        upper = [interval[1] for interval in intervals]
        how = "whose dev loss is at most {drop:g} points at the upper end of its 95% interval"
    eligible = [i for i in range(len(rows)) if upper[i] <= max_drop + 1e-9]
    if not eligible:
        best = min(range(len(rows)), key=lambda i: upper[i])
        raise ConfigError(
            f"--max-drop {max_drop:g}: no configuration is within it on dev; the smallest loss (upper end) is "
            f"{upper[best]:.1f} points ({rows[best]['label']}, {rows[best]['speedup']:.2f}X); "
            + (_unresolved(rows[best], max_drop) or "allow a larger drop or give gentler --candidates")
        )
    index = max(eligible, key=lambda i: (rows[i]["speedup"], rows[i]["dev"]))
    reason = f"the fastest of the {len(eligible)} configuration(s) " + how.format(drop=max_drop)
    return Choice(index, reason, _unresolved(rows[index], max_drop))


def _unresolved(row: dict[str, Any], max_drop: float) -> str | None:
    """A sentence when the row's dev interval is wider than the drop asked for (dev too small to resolve it)."""
    difference = row.get("dev_vs_dense")
    if difference is None:
        return None
    half_width = (difference["high"] - difference["low"]) / 2
    if half_width <= max_drop:
        return None
    return (
        f"dev has {difference['examples']} examples (one is {resolution(difference['examples']):.1f} points of "
        f"accuracy): its 95% intervals are about ±{half_width:.1f} points, wider than --max-drop {max_drop:g}; "
        "give a larger --dev file (or more --train data) to resolve that drop"
    )
