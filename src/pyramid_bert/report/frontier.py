"""Pareto frontier of (speedup, metric) points and linear interpolation on it, never extrapolated.

As in the paper's Appendix C and E: among a method's configurations, keep those that no other
configuration beats on both speed and metric; read the metric at a target speedup by linear interpolation
between the two frontier points around it; a target outside the frontier's measured range has no value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Targets within this distance of a frontier end count as inside the measured range.
RANGE_TOLERANCE = 1e-9


def pareto_frontier(xs: Sequence[float], ys: Sequence[float]) -> list[int]:
    """Indices of the non-dominated points, in increasing ``x`` (then strictly decreasing ``y``).

    A point is dominated when another has ``x' >= x`` and ``y' >= y`` with one of them strictly larger.
    Among exact duplicates only the first (lowest index) is kept; among points of equal ``x`` only the
    one with the highest ``y``.
    """
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys must have the same length, got {len(xs)} and {len(ys)}")
    order = sorted(range(len(xs)), key=lambda i: (-xs[i], -ys[i], i))
    frontier, best_y = [], float("-inf")
    for i in order:
        if ys[i] > best_y:
            frontier.append(i)
            best_y = ys[i]
    return frontier[::-1]


@dataclass(frozen=True)
class Interpolation:
    """Where a target falls on a frontier: ``value = (1 - weight) * v[left] + weight * v[right]``.

    ``left`` and ``right`` are positions in the frontier (equal when the target hits a point).
    """

    left: int
    right: int
    weight: float

    def apply(self, values: Sequence[float]) -> float:
        """The interpolated value of per-frontier-point ``values``."""
        if self.weight == 0.0:
            return float(values[self.left])
        return (1.0 - self.weight) * float(values[self.left]) + self.weight * float(values[self.right])


def locate(frontier_xs: Sequence[float], target: float) -> Interpolation | None:
    """Where ``target`` falls among increasing ``frontier_xs``; None outside their range (no extrapolation)."""
    if not frontier_xs:
        return None
    if any(b <= a for a, b in zip(frontier_xs, frontier_xs[1:], strict=False)):
        raise ValueError("frontier_xs must be strictly increasing")
    if target < frontier_xs[0] - RANGE_TOLERANCE or target > frontier_xs[-1] + RANGE_TOLERANCE:
        return None
    for position, x in enumerate(frontier_xs):
        if abs(x - target) <= RANGE_TOLERANCE:
            return Interpolation(position, position, 0.0)
    for position in range(len(frontier_xs) - 1):
        left_x, right_x = frontier_xs[position], frontier_xs[position + 1]
        if left_x < target < right_x:
            return Interpolation(position, position + 1, (target - left_x) / (right_x - left_x))
    return None  # unreachable: target is inside the range


def value_at(xs: Sequence[float], ys: Sequence[float], target: float) -> float | None:
    """The frontier of (xs, ys) read at ``target`` by linear interpolation; None outside its range."""
    frontier = pareto_frontier(xs, ys)
    where = locate([xs[i] for i in frontier], target)
    return None if where is None else where.apply([ys[i] for i in frontier])
