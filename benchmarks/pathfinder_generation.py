"""Time to generate Pathfinder-32 images, and how often a connected-components check agrees with the labels.

    python benchmarks/pathfinder_generation.py [--n 20000 --workers 2 --seed 0 --contour-length 14]

Prints wall-clock and CPU seconds (this process and its workers), images per second, the label counts,
and the share of images whose label equals ``markers_joined`` (scipy.ndimage.label on the drawn pixels).
"""

from __future__ import annotations

import argparse
import os
import resource
import time

import numpy as np

from pyramid_bert.data.lra.pathfinder import generate, markers_joined


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--contour-length", type=int, default=14)
    args = parser.parse_args()

    wall, cpu = time.perf_counter(), _cpu_seconds()
    images, labels = generate(
        args.n, seed=args.seed, workers=args.workers, contour_length=args.contour_length, progress=True
    )
    wall, cpu = time.perf_counter() - wall, _cpu_seconds() - cpu
    agreeing = sum(markers_joined(image) == bool(label) for image, label in zip(images, labels, strict=True))
    print(
        f"generated {args.n} images of {images.shape[1]}x{images.shape[2]} (contour length "
        f"{args.contour_length}, seed {args.seed}) with {args.workers} worker(s): {wall:.1f} s wall, "
        f"{cpu:.1f} s CPU, {args.n / wall:.0f} images/s; load average {os.getloadavg()[0]:.1f}"
    )
    print(f"labels: {np.bincount(labels, minlength=2).tolist()} (disconnected, connected)")
    print(f"connected-components check agrees with {agreeing}/{args.n} labels ({agreeing / args.n:.4%})")


if __name__ == "__main__":
    main()
