"""Pathfinder: a procedural generator of LRA's Pathfinder images (two markers, dashed curved contours).

Like the original "snakes" generator of Linsley et al. (2018) that LRA used, every image holds two
marker circles, two long dashed curved contours, and a few short distractor contours:

- positive (label 1): one long contour joins the two markers (a marker sits at each of its ends); the
  second long contour carries no marker;
- negative (label 0): each long contour carries one marker at its start, so the markers are not joined.

Both classes thus hold the same ink: two long contours, two markers, the same distractors.

Geometry, on the pixel grid (all distances are Chebyshev distances, max(|dr|, |dc|)):

- a contour is ``contour_length`` dashes ("paddles") of ``paddle_length`` pixels, consecutive pixels of a
  dash 8-adjacent; the direction turns by a random angle in ``[-max_turn, max_turn]`` from one dash to the
  next (curved contours), and one empty pixel separates consecutive dashes (distance exactly 2);
- a marker is a filled 3x3 square (a circle of radius 1.5 at this size), one empty pixel away from the end
  of its contour; no dash can contain a filled 3x3 block, so the markers can be found from pixels alone;
- a contour never touches itself (distance >= 2 to its own earlier pixels) and stays at distance >= 3 from
  every other contour and marker.

So "joined" has an exact pixel meaning that :func:`markers_joined` checks with ``scipy.ndimage.label``: two
drawn pixels are linked when at most one empty pixel separates them (distance <= 2); the markers are joined
when they fall in one linked component. The generator never looks at that check; the tests verify that it
agrees with every label.

Reproducible: image ``i`` of ``generate(n, seed=s)`` depends only on ``(s, i)`` and the parameters, not on
the number of worker processes.
"""

from __future__ import annotations

import math
import multiprocessing
import random
from dataclasses import asdict, dataclass

import numpy as np

from pyramid_bert.errors import ConfigError

INK = 255
"""Grey level of contour and marker pixels (the background is 0)."""

_MARKER_OFFSETS = tuple((dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1))
_MAX_IMAGE_ATTEMPTS = 200
_MAX_CONTOUR_ATTEMPTS = 30
_MAX_TURN_ATTEMPTS = 12


@dataclass(frozen=True)
class PathfinderParams:
    """Drawing parameters; LRA's hard setting is ``contour_length=14``.

    Attributes:
        resolution: image side in pixels (32 for Pathfinder-32).
        contour_length: dashes per long contour (LRA: 6 easy, 9 medium, 14 hard).
        distractor_length: dashes per distractor contour (default: contour_length // 3, as in LRA).
        num_distractors: distractor contours tried per image (placed where they fit).
        paddle_length: pixels per dash.
        max_turn: largest turn in radians between consecutive dashes.
        padding: empty border in pixels.
    """

    resolution: int = 32
    contour_length: int = 14
    distractor_length: int | None = None
    num_distractors: int = 4
    paddle_length: int = 2
    max_turn: float = math.pi / 4
    padding: int = 1

    def resolved_distractor_length(self) -> int:
        return self.distractor_length if self.distractor_length is not None else max(1, self.contour_length // 3)

    def validate(self) -> None:
        """Raise ConfigError naming the first parameter out of its valid range."""
        checks = [
            ("resolution", self.resolution >= 12, "an int >= 12"),
            ("contour_length", self.contour_length >= 1, "an int >= 1"),
            ("distractor_length", self.resolved_distractor_length() >= 1, "an int >= 1 or None"),
            ("num_distractors", self.num_distractors >= 0, "an int >= 0"),
            ("paddle_length", 1 <= self.paddle_length <= 4, "an int in [1, 4]"),
            ("max_turn", 0.0 <= self.max_turn <= math.pi / 2, "a float in [0, pi/2] radians"),
            ("padding", 0 <= self.padding <= self.resolution // 4, "an int in [0, resolution // 4]"),
        ]
        for name, ok, valid in checks:
            if not ok:
                raise ConfigError(f"pathfinder parameter {name}={getattr(self, name)!r} is invalid: use {valid}")

    def as_dict(self) -> dict[str, object]:
        values = asdict(self)
        values["distractor_length"] = self.resolved_distractor_length()
        return values


def generate(
    n: int,
    *,
    seed: int,
    resolution: int = 32,
    contour_length: int = 14,
    distractor_length: int | None = None,
    num_distractors: int = 4,
    paddle_length: int = 2,
    max_turn: float = math.pi / 4,
    padding: int = 1,
    workers: int = 1,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` Pathfinder images with balanced labels.

    Args:
        n: number of images (>= 1); labels are balanced: ``n // 2`` negatives, the rest positives.
        seed: the whole output is a function of ``seed``, ``n`` and the drawing parameters.
        workers: processes to draw with (the output does not depend on it).
        progress: show a tqdm progress bar.
        Other arguments: see :class:`PathfinderParams`.

    Returns:
        images: uint8 ``[n, resolution, resolution]``, background 0, ink 255.
        labels: int64 ``[n]``, 1 when one contour joins the two markers.
    """
    params = PathfinderParams(
        resolution=resolution,
        contour_length=contour_length,
        distractor_length=distractor_length,
        num_distractors=num_distractors,
        paddle_length=paddle_length,
        max_turn=max_turn,
        padding=padding,
    )
    params.validate()
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"n={n!r} is invalid: use an int >= 1")
    if not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers={workers!r} is invalid: use an int >= 1")
    labels = np.zeros(n, dtype=np.int64)
    labels[n // 2 :] = 1
    np.random.default_rng(np.random.SeedSequence([seed, n, 0])).shuffle(labels)
    jobs = [(params, seed, i, int(labels[i])) for i in range(n)]

    images = np.zeros((n, resolution, resolution), dtype=np.uint8)
    bar = _progress_bar(n, progress)
    if workers == 1:
        for i, job in enumerate(jobs):
            images[i] = _draw_job(job)
            bar.update(1)
    else:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for i, image in enumerate(pool.imap(_draw_job, jobs, chunksize=64)):
                images[i] = image
                bar.update(1)
    bar.close()
    return images, labels


def markers_joined(image: np.ndarray) -> bool:
    """Whether one linked component of drawn pixels holds both markers (from the pixels alone).

    Args:
        image: ``[H, W]`` grey image; pixels > 0 are drawn.

    Returns:
        True when the two markers (the centres of filled 3x3 blocks) lie in one component, where drawn
        pixels link when at most one empty pixel separates them (Chebyshev distance <= 2).

    Raises:
        ValueError: when the image does not hold exactly two markers.
    """
    from scipy import ndimage

    drawn = np.asarray(image) > 0
    marker_centres = np.argwhere(ndimage.binary_erosion(drawn, structure=np.ones((3, 3), dtype=bool)))
    if len(marker_centres) != 2:
        raise ValueError(f"expected exactly 2 markers (filled 3x3 blocks), found {len(marker_centres)}")
    # Dilating by a 2x2 block and labelling with 8-connectivity links exactly the pixels within distance 2.
    bridged = ndimage.binary_dilation(drawn, structure=np.ones((2, 2), dtype=bool))
    components, _ = ndimage.label(bridged, structure=np.ones((3, 3), dtype=bool))
    (r0, c0), (r1, c1) = marker_centres
    return bool(components[r0, c0] == components[r1, c1])


def _progress_bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="pathfinder", unit="img", disable=not enabled)


def _draw_job(job: tuple[PathfinderParams, int, int, int]) -> np.ndarray:
    params, seed, index, label = job
    state = np.random.SeedSequence([seed, index, 1]).generate_state(2, dtype=np.uint64)
    rng = random.Random(int(state[0]) << 64 | int(state[1]))
    return _draw_image(rng, label, params)


class _Canvas:
    """Occupancy of one image: drawn pixels, and the pixels closer than 3 to a finished contour."""

    def __init__(self, params: PathfinderParams) -> None:
        size = params.resolution
        self.params = params
        self.low = params.padding
        self.high = size - 1 - params.padding
        self.drawn = np.zeros((size, size), dtype=np.uint8)
        # Offset by 2 so that stamping a 5x5 block never leaves the array.
        self.near_others = np.zeros((size + 4, size + 4), dtype=bool)

    def free_for_new_contour(self, r: int, c: int) -> bool:
        return self.low <= r <= self.high and self.low <= c <= self.high and not self.near_others[r + 2, c + 2]

    def commit(self, pixels: list[tuple[int, int]]) -> None:
        for r, c in pixels:
            self.drawn[r, c] = INK
            self.near_others[r : r + 5, c : c + 5] = True


class _Contour:
    """A contour being drawn: its pixels and the pixels that would touch them (distance <= 1)."""

    def __init__(self, canvas: _Canvas) -> None:
        size = canvas.params.resolution
        self.canvas = canvas
        self.pixels: list[tuple[int, int]] = []
        self.touching = np.zeros((size + 2, size + 2), dtype=bool)

    def fits(self, pixels: list[tuple[int, int]]) -> bool:
        return all(self.canvas.free_for_new_contour(r, c) and not self.touching[r + 1, c + 1] for r, c in pixels)

    def add(self, pixels: list[tuple[int, int]]) -> None:
        for r, c in pixels:
            self.touching[r : r + 3, c : c + 3] = True
        self.pixels.extend(pixels)


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


def _draw_contour(
    rng: random.Random, canvas: _Canvas, num_dashes: int, start_marker: bool, end_marker: bool
) -> list[tuple[int, int]] | None:
    """Try to draw one contour into free space; returns its pixels (not yet committed) or None."""
    params = canvas.params
    for _ in range(_MAX_CONTOUR_ATTEMPTS):
        contour = _Contour(canvas)
        angle = rng.uniform(-math.pi, math.pi)
        origin = (rng.randint(canvas.low, canvas.high), rng.randint(canvas.low, canvas.high))
        if start_marker:
            # The first dash starts one empty pixel past the square's edge: 3 from its centre.
            first, anchor, gap, dashes_left = _square(origin), origin, 3, num_dashes
        else:
            first = _dash(origin, _unit_step(angle), params.paddle_length)
            anchor, gap, dashes_left = first[-1], 2, num_dashes - 1
        if not contour.fits(first):
            continue
        contour.add(first)
        pieces = [False] * dashes_left + ([True] if end_marker else [])
        for is_marker in pieces:
            for _ in range(_MAX_TURN_ATTEMPTS):
                new_angle = angle + rng.uniform(-params.max_turn, params.max_turn)
                step = _unit_step(new_angle)
                if is_marker:
                    piece = _square(_offset(anchor, step, gap + 1))
                else:
                    piece = _dash(_offset(anchor, step, gap), step, params.paddle_length)
                if contour.fits(piece):
                    break
            else:
                break
            contour.add(piece)
            angle, anchor, gap = new_angle, piece[-1], 2
        else:
            return contour.pixels
    return None


def _draw_image(rng: random.Random, label: int, params: PathfinderParams) -> np.ndarray:
    """One image ``[resolution, resolution]`` uint8 with the given label."""
    markers = [(True, True), (False, False)] if label == 1 else [(True, False), (True, False)]
    for _ in range(_MAX_IMAGE_ATTEMPTS):
        canvas = _Canvas(params)
        for start_marker, end_marker in markers:
            pixels = _draw_contour(rng, canvas, params.contour_length, start_marker, end_marker)
            if pixels is None:
                break
            canvas.commit(pixels)
        else:
            for _ in range(params.num_distractors):
                pixels = _draw_contour(rng, canvas, params.resolved_distractor_length(), False, False)
                if pixels is not None:
                    canvas.commit(pixels)
            return canvas.drawn
    raise RuntimeError(f"could not place two contours in {_MAX_IMAGE_ATTEMPTS} attempts with {params}")
