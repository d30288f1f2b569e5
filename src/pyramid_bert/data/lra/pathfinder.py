"""Pathfinder: a procedural generator of LRA's Pathfinder images (two markers, dashed curved contours).

Like the original "snakes" generator of Linsley et al. (2018) that LRA used, every image holds two
marker circles, two long dashed curved contours, and a few short distractor contours:

- positive (label 1): one long contour joins the two markers (a marker sits at each of its ends); the
  second long contour carries no marker;
- negative (label 0): each long contour carries one marker at its start, so the markers are not joined.

Both classes thus hold the same ink: two long contours, two markers, the same distractors; and the
distance between the two markers follows the same distribution in both (each image draws a target
distance first), so neither the amount of ink nor the marker distance tells the label.

Geometry, on the pixel grid (all distances are Chebyshev distances, max(|dr|, |dc|)):

- a contour is ``contour_length`` dashes ("paddles") of ``paddle_length`` pixels, consecutive pixels of a
  dash 8-adjacent, heading in one of 64 directions; from one dash to the next the direction turns by at
  most ``max_turn`` (curved contours; the turn is drawn uniformly among those whose dash fits, all checked
  at once, stepping back a few dashes at a dead end), and one empty pixel separates consecutive dashes
  (distance exactly 2);
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
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage
from tqdm.auto import tqdm

from pyramid_bert.data.lra.pathfinder_drawing import INK, draw_image, image_rng
from pyramid_bert.errors import ConfigError

GENERATOR_VERSION = 2
"""Bumped whenever a change to the drawing changes the images of a given seed (it keys the disk cache)."""

__all__ = ["GENERATOR_VERSION", "INK", "PathfinderParams", "generate", "markers_joined"]


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
        with _process_pool(workers) as pool:
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

    drawn = np.asarray(image) > 0
    marker_centres = np.argwhere(ndimage.binary_erosion(drawn, structure=np.ones((3, 3), dtype=bool)))
    if len(marker_centres) != 2:
        raise ValueError(f"expected exactly 2 markers (filled 3x3 blocks), found {len(marker_centres)}")
    # Dilating by a 2x2 block and labelling with 8-connectivity links exactly the pixels within distance 2.
    bridged = ndimage.binary_dilation(drawn, structure=np.ones((2, 2), dtype=bool))
    components, _ = ndimage.label(bridged, structure=np.ones((3, 3), dtype=bool))
    (r0, c0), (r1, c1) = marker_centres
    return bool(components[r0, c0] == components[r1, c1])


def _process_pool(workers: int):
    # fork where the platform has it: no re-import of the caller's __main__ (no `if __name__` guard needed).
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn").Pool(workers)


def _progress_bar(total: int, enabled: bool):
    return tqdm(total=total, desc="pathfinder", unit="img", disable=not enabled)


def _draw_job(job: tuple[PathfinderParams, int, int, int]) -> np.ndarray:
    params, seed, index, label = job
    return draw_image(image_rng(seed, index), label, params)
