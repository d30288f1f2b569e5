"""The drawing behind :func:`pyramid_bert.data.lra.pathfinder.generate`: contours placed piece by piece.

An image is drawn on a :class:`_Canvas`; each contour grows on a :class:`_Contour` one piece (a dash or an
end marker) at a time. All candidate turns of the next piece are checked at once against a boolean
"blocked" array (outside the padded image, within distance 2 of another contour, within distance 1 of the
contour's own pixels); one is drawn uniformly among those that fit; at a dead end the contour steps back a
few pieces (:func:`_extend`), and failing that starts again elsewhere.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pyramid_bert.errors import ConfigError

if TYPE_CHECKING:
    from pyramid_bert.data.lra.pathfinder import PathfinderParams

INK = 255
"""Grey level of contour and marker pixels (the background is 0)."""

_MARKER_OFFSETS = tuple((dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1))
_MAX_IMAGE_ATTEMPTS = 200
_MAX_CONTOUR_ATTEMPTS = 30
_MAX_JOINED_CONTOUR_ATTEMPTS = 200
_MAX_BACKTRACKS = 5
_MARKER_CENTRE = 4
"""Index of the centre pixel in a marker's 9 pixels."""


def image_rng(seed: int, index: int) -> random.Random:
    """The random stream of image ``index`` of a data set generated with ``seed``."""
    state = np.random.SeedSequence([seed, index, 1]).generate_state(2, dtype=np.uint64)
    return random.Random(int(state[0]) << 64 | int(state[1]))


_DIRECTIONS = 64
"""Contours head in one of this many directions (5.6 degree steps)."""
_MARGIN = 8
"""Border around the occupancy arrays: every candidate piece of an in-image anchor lies inside them."""


class _Canvas:
    """One image being drawn: its pixels, and where a new contour may not go (outside the padded image, or
    within distance 2 of a finished contour)."""

    def __init__(self, params: PathfinderParams) -> None:
        size, low, high = params.resolution, params.padding, params.resolution - 1 - params.padding
        self.params = params
        self.low, self.high = low, high
        self.drawn = np.zeros((size, size), dtype=np.uint8)
        self.blocked = np.ones((size + 2 * _MARGIN, size + 2 * _MARGIN), dtype=bool)
        self.blocked[low + _MARGIN : high + _MARGIN + 1, low + _MARGIN : high + _MARGIN + 1] = False

    def commit(self, pixels: list[tuple[int, int]]) -> None:
        for r, c in pixels:
            self.drawn[r, c] = INK
            self.blocked[r + _MARGIN - 2 : r + _MARGIN + 3, c + _MARGIN - 2 : c + _MARGIN + 3] = True


class _Contour:
    """A contour being drawn: its pixels, and where its next piece may not go (the canvas's blocked pixels,
    and those within distance 1 of its own pixels)."""

    def __init__(self, canvas: _Canvas) -> None:
        self.blocked = canvas.blocked.copy()
        self.pixels: list[tuple[int, int]] = []

    def fitting(self, anchor: np.ndarray, shapes: np.ndarray) -> np.ndarray:
        """bool ``[k]``: which of the ``k`` candidate pieces ``anchor + shapes`` (``shapes [k, P, 2]``) fit."""
        rows = shapes[..., 0] + (anchor[0] + _MARGIN)
        cols = shapes[..., 1] + (anchor[1] + _MARGIN)
        return ~self.blocked[rows, cols].any(axis=1)

    def add(self, piece: np.ndarray) -> None:
        for r, c in piece.tolist():
            self.blocked[r + _MARGIN - 1 : r + _MARGIN + 2, c + _MARGIN - 1 : c + _MARGIN + 2] = True
            self.pixels.append((r, c))


def _unit_step(angle: float) -> tuple[float, float]:
    """Direction scaled so that its larger component is exactly 1 (one pixel step)."""
    dr, dc = math.sin(angle), math.cos(angle)
    scale = max(abs(dr), abs(dc))
    return dr / scale, dc / scale


def _offset(origin: tuple[int, int], step: tuple[float, float], distance: int) -> tuple[int, int]:
    return origin[0] + math.floor(distance * step[0] + 0.5), origin[1] + math.floor(distance * step[1] + 0.5)


def _dash(start: tuple[int, int], step: tuple[float, float], length: int) -> list[tuple[int, int]]:
    return [_offset(start, step, t) for t in range(length)]


def _square(centre: tuple[int, int]) -> list[tuple[int, int]]:
    return [(centre[0] + dr, centre[1] + dc) for dr, dc in _MARKER_OFFSETS]


@functools.lru_cache(maxsize=8)
def _piece_shapes(paddle_length: int) -> dict[tuple[str, int], np.ndarray]:
    """Pixel offsets from the anchor of every candidate piece, by (kind, gap) and direction.

    ``("dash", gap)`` -> ``[64, paddle_length, 2]``: a dash starting at distance ``gap`` (0 for a contour's
    first dash); ``("marker", gap)`` -> ``[64, 9, 2]``: a marker square whose edge is at distance ``gap``.
    """
    shapes = {}
    for gap in (0, 2, 3):
        dashes, markers = [], []
        for direction in range(_DIRECTIONS):
            step = _unit_step(2 * math.pi * direction / _DIRECTIONS)
            dashes.append(_dash(_offset((0, 0), step, gap), step, paddle_length))
            markers.append(_square(_offset((0, 0), step, gap + 1)))
        shapes["dash", gap] = np.array(dashes, dtype=np.intp)
        shapes["marker", gap] = np.array(markers, dtype=np.intp)
    return shapes


def _chebyshev(a: tuple[int, int] | np.ndarray, b: tuple[int, int] | np.ndarray) -> int:
    return int(max(abs(int(a[0]) - int(b[0])), abs(int(a[1]) - int(b[1]))))


def _marker_distance_range(params: PathfinderParams) -> tuple[int, int]:
    """Smallest and largest target distance between the two marker centres.

    The largest is what the image allows, capped at 80% of a straight contour's reach (curved contours
    rarely get further).
    """
    in_image = params.resolution - 2 * params.padding - 3
    reach = params.contour_length * (params.paddle_length + 1) + 4
    return 5, max(7, min(in_image, int(0.8 * reach)))


def _draw_contour(
    rng: random.Random,
    canvas: _Canvas,
    num_dashes: int,
    start_marker: bool,
    end_marker: bool,
    *,
    start_span: tuple[tuple[int, int], int, int] | None = None,
    end_span: tuple[int, int] | None = None,
    attempts: int = _MAX_CONTOUR_ATTEMPTS,
) -> tuple[list[tuple[int, int]], tuple[int, int]] | None:
    """Try to draw one contour into free space; returns (its pixels, its origin) or None.

    Each next piece turns by a uniformly chosen number of direction steps among those within ``max_turn``
    whose piece fits (all candidates are checked at once). ``start_span = (point, lo, hi)`` puts the origin
    at a distance in ``[lo, hi]`` from ``point``; ``end_span = (lo, hi)`` puts the end marker's centre at a
    distance in ``[lo, hi]`` from the origin. The pixels are not committed to the canvas.
    """
    params = canvas.params
    shapes = _piece_shapes(params.paddle_length)
    max_steps = int(params.max_turn * _DIRECTIONS / (2 * math.pi) + 1e-9)
    turns = np.arange(-max_steps, max_steps + 1)
    origin_at = np.zeros(2, dtype=np.intp)
    for _ in range(attempts):
        contour = _Contour(canvas)
        direction = rng.randrange(_DIRECTIONS)
        origin = _random_origin(rng, canvas, start_span)
        if origin is None:
            continue
        if start_marker:
            # The first dash starts one empty pixel past the square's edge: 3 from its centre.
            first = origin + np.array(_MARKER_OFFSETS, dtype=np.intp)
            anchor, gap, dashes_left = origin, 3, num_dashes
        else:
            first = origin + shapes["dash", 0][direction]
            anchor, gap, dashes_left = first[-1], 2, num_dashes - 1
        if not contour.fitting(origin_at, first[None])[0]:
            continue
        contour.add(first)
        kinds = ["dash"] * dashes_left + (["marker"] if end_marker else [])
        if _extend(rng, contour, kinds, (anchor, gap, direction), shapes, turns, origin, end_span):
            return contour.pixels, (int(origin[0]), int(origin[1]))
    return None


@dataclass
class _Step:
    """One piece of a contour being placed: the state before it, and the candidates not tried yet."""

    anchor: np.ndarray
    candidates: np.ndarray
    pieces: np.ndarray
    untried: list[int]
    blocked_before: np.ndarray
    pixels_before: int


def _extend(
    rng: random.Random,
    contour: _Contour,
    kinds: list[str],
    state: tuple[np.ndarray, int, int],
    shapes: dict[tuple[str, int], np.ndarray],
    turns: np.ndarray,
    origin: np.ndarray,
    end_span: tuple[int, int] | None,
) -> bool:
    """Add pieces of ``kinds`` ("dash" | "marker") to ``contour`` from ``state = (anchor, gap, direction)``.

    Each piece is drawn uniformly among the fitting candidates; at a dead end, up to ``_MAX_BACKTRACKS``
    times, the previous piece is taken back and another of its candidates tried. Returns whether all fit.
    """
    if not kinds:
        return True
    steps: list[_Step] = []
    backtracks = 0
    entering_new_step = True
    while True:
        if entering_new_step:
            anchor, gap, direction = state
            kind = kinds[len(steps)]
            candidates = (direction + turns) % _DIRECTIONS
            pieces = shapes[kind, gap][candidates]
            fits = contour.fitting(anchor, pieces)
            if kind == "marker" and end_span is not None:
                distances = np.abs(pieces[:, _MARKER_CENTRE] + anchor - origin).max(axis=1)
                fits &= (distances >= end_span[0]) & (distances <= end_span[1])
            steps.append(
                _Step(
                    anchor,
                    candidates,
                    pieces,
                    np.flatnonzero(fits).tolist(),
                    contour.blocked.copy(),
                    len(contour.pixels),
                )
            )
        step = steps[-1]
        if not step.untried:
            steps.pop()
            backtracks += 1
            if not steps or backtracks > _MAX_BACKTRACKS:
                return False
            # Take back the previous piece; its step then tries another of its candidates.
            np.copyto(contour.blocked, steps[-1].blocked_before)
            del contour.pixels[steps[-1].pixels_before :]
            entering_new_step = False
            continue
        choice = step.untried.pop(rng.randrange(len(step.untried)))
        piece = step.anchor + step.pieces[choice]
        contour.add(piece)
        if len(steps) == len(kinds):
            return True
        state = (piece[-1], 2, int(step.candidates[choice]))
        entering_new_step = True


def _random_origin(
    rng: random.Random, canvas: _Canvas, span: tuple[tuple[int, int], int, int] | None
) -> np.ndarray | None:
    """A uniform pixel of the image, or (with ``span = (point, lo, hi)``) of those at distance in [lo, hi]."""
    for _ in range(100):
        origin = (rng.randint(canvas.low, canvas.high), rng.randint(canvas.low, canvas.high))
        if span is None or span[1] <= _chebyshev(origin, span[0]) <= span[2]:
            return np.array(origin, dtype=np.intp)
    return None


def draw_image(rng: random.Random, label: int, params: PathfinderParams) -> np.ndarray:
    """One image ``[resolution, resolution]`` uint8 with the given label.

    Both classes draw the distance between the marker centres from the same distribution (uniform target
    ``t``, accepted within ``t +- 1``), so that it says nothing about the label.
    """
    lowest, highest = _marker_distance_range(params)
    target = rng.randint(lowest + 1, highest - 1)
    span = (target - 1, target + 1)
    for _ in range(_MAX_IMAGE_ATTEMPTS):
        canvas = _Canvas(params)
        if not _draw_long_contours(rng, canvas, label, span):
            continue
        for _ in range(params.num_distractors):
            distractor = _draw_contour(rng, canvas, params.resolved_distractor_length(), False, False)
            if distractor is not None:
                canvas.commit(distractor[0])
        return canvas.drawn
    raise ConfigError(
        f"could not place two contours of contour_length={params.contour_length} in a {params.resolution}x"
        f"{params.resolution} image in {_MAX_IMAGE_ATTEMPTS} attempts: use a smaller contour_length, "
        "paddle_length or max_turn, or a larger resolution"
    )


def _draw_long_contours(rng: random.Random, canvas: _Canvas, label: int, span: tuple[int, int]) -> bool:
    """Draw and commit the two long contours and the markers; False when they do not fit.

    Label 1: the first contour carries both markers, ``span`` apart; the second none. Label 0: each carries
    a marker at its start, the second's ``span`` away from the first's.
    """
    length = canvas.params.contour_length
    if label == 1:
        first = _draw_contour(rng, canvas, length, True, True, end_span=span, attempts=_MAX_JOINED_CONTOUR_ATTEMPTS)
    else:
        first = _draw_contour(rng, canvas, length, True, False)
    if first is None:
        return False
    canvas.commit(first[0])
    start_span = None if label == 1 else (first[1], *span)
    second = _draw_contour(rng, canvas, length, label == 0, False, start_span=start_span)
    if second is None:
        return False
    canvas.commit(second[0])
    return True
