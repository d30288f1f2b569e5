"""The choice rule of ``compress``: which tried configuration to ship (pure: a table in, a choice out).

- ``--target-speedup X``: among the configurations whose measured real speedup is at least X, the one with the
  best dev metric (ties: the faster); the paper's "select the optimal configuration satisfying the required
  inference speed-up".
- ``--max-drop D``: among the configurations that lose at most D points (metric x 100) on dev against the dense
  model, the fastest (ties: the better on dev).

When nothing qualifies the error names what is reachable: the best measured speedup, or the smallest dev loss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyramid_bert.errors import ConfigError

POINTS = 100.0


@dataclass(frozen=True)
class Choice:
    """The chosen row (index into the table) and why, in words."""

    index: int
    reason: str


def dev_drop(row: dict[str, Any], dense_dev: float) -> float:
    """Points lost on dev against the dense model (positive = worse)."""
    return (dense_dev - row["dev"]) * POINTS


def choose(
    rows: Sequence[dict[str, Any]],
    *,
    dense_dev: float,
    target_speedup: float | None = None,
    max_drop: float | None = None,
) -> Choice:
    """Pick from ``rows`` (each with ``label``, ``speedup`` (measured, real) and ``dev``); see the module docstring.

    Exactly one of ``target_speedup`` and ``max_drop``. Raises ConfigError naming the flag and what is reachable.
    """
    if (target_speedup is None) == (max_drop is None):
        raise ConfigError("--target-speedup / --max-drop: give exactly one of them")
    if not rows:
        raise ConfigError("compress: no configuration was tried")
    if target_speedup is not None:
        return _by_target(rows, target_speedup)
    assert max_drop is not None
    return _by_drop(rows, dense_dev, max_drop)


def _by_target(rows: Sequence[dict[str, Any]], target: float) -> Choice:
    eligible = [i for i, row in enumerate(rows) if row["speedup"] >= target]
    if not eligible:
        best = max(range(len(rows)), key=lambda i: rows[i]["speedup"])
        raise ConfigError(
            f"--target-speedup {target:g}: no configuration reached it; the best reachable speedup is "
            f"{rows[best]['speedup']:.2f}X ({rows[best]['label']}); lower the target or give faster --candidates"
        )
    index = max(eligible, key=lambda i: (rows[i]["dev"], rows[i]["speedup"]))
    return Choice(index, f"the best dev metric among the {len(eligible)} configuration(s) with real speedup >= {target:g}X")


def _by_drop(rows: Sequence[dict[str, Any]], dense_dev: float, max_drop: float) -> Choice:
    eligible = [i for i, row in enumerate(rows) if dev_drop(row, dense_dev) <= max_drop + 1e-9]
    if not eligible:
        best = min(range(len(rows)), key=lambda i: dev_drop(rows[i], dense_dev))
        raise ConfigError(
            f"--max-drop {max_drop:g}: every configuration lost more on dev; the smallest loss is "
            f"{dev_drop(rows[best], dense_dev):.1f} points ({rows[best]['label']}, {rows[best]['speedup']:.2f}X); "
            "allow a larger drop or give gentler --candidates"
        )
    index = max(eligible, key=lambda i: (rows[i]["speedup"], rows[i]["dev"]))
    return Choice(index, f"the fastest of the {len(eligible)} configuration(s) losing at most {max_drop:g} points on dev")
