"""Pathfinder-32 as an LRA task: generated images cached on disk, flattened to 1024-token sequences.

The images of ``generate(n, seed=generation_seed, **params)`` are cached as one ``.npz`` file per
``(n, generation_seed, params, generator version)`` under ``<cache home>/lra/pathfinder/`` (written to a temporary file and
renamed). Splits: "test" is a fixed stratified 10% (chosen by ``generation_seed``), "dev" a stratified
10% of the whole chosen by ``seed`` from the rest, "train" what remains. Tokens are the grey levels in
row-major pixel order (vocabulary 256, no padding).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from pyramid_bert.data.cache import atomic_write_bytes, cache_home
from pyramid_bert.data.lra.pathfinder import GENERATOR_VERSION, PathfinderParams, generate
from pyramid_bert.data.lra.sequence_task import SequenceTask
from pyramid_bert.data.lra.splitting import stratified_holdout
from pyramid_bert.errors import ConfigError

NAME = "lra-pathfinder32"
DEFAULT_SIZE = 20_000
HOLDOUT_FRACTION = 0.1
LABEL_NAMES = ["disconnected", "connected"]
VOCAB_SIZE = 256


def split_sizes(n: int) -> dict[str, int]:
    """Examples per split for ``n`` images: 10% test, 10% dev, the rest train."""
    holdout = max(2, round(HOLDOUT_FRACTION * n))
    return {"train": n - 2 * holdout, "dev": holdout, "test": holdout}


def cache_path(n: int, generation_seed: int, params: PathfinderParams) -> Path:
    """Where the images of ``(n, generation_seed, params)`` are cached."""
    key = json.dumps(_cache_key(n, generation_seed, params), sort_keys=True)
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]
    name = f"pathfinder{params.resolution}-len{params.contour_length}-n{n}-seed{generation_seed}-{digest}.npz"
    return cache_home() / "lra" / "pathfinder" / name


def _cache_key(n: int, generation_seed: int, params: PathfinderParams) -> dict[str, object]:
    return {"n": n, "seed": generation_seed, "generator_version": GENERATOR_VERSION, **params.as_dict()}


def is_pathfinder_cached(
    n: int | None = None, generation_seed: int = 0, params: PathfinderParams | None = None
) -> bool:
    """Whether the images of ``(n or DEFAULT_SIZE, generation_seed, params or defaults)`` are cached."""
    return cache_path(n or DEFAULT_SIZE, generation_seed, params or PathfinderParams()).exists()


def load_or_generate(
    n: int, generation_seed: int, params: PathfinderParams, *, workers: int | None = None, progress: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 ``[n, R, R]`` and labels int64 ``[n]`` from the cache, generating them when absent."""
    path = cache_path(n, generation_seed, params)
    if path.exists():
        try:
            with np.load(path) as stored:
                images, labels = stored["images"], stored["labels"]
            if images.shape == (n, params.resolution, params.resolution) and labels.shape == (n,):
                return images, labels
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # unreadable or corrupted (the zip CRC checks every array): generate it again
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    images, labels = generate(n, seed=generation_seed, workers=workers, progress=progress, **asdict(params))
    buffer = io.BytesIO()
    np.savez_compressed(buffer, images=images, labels=labels, params=json.dumps(_cache_key(n, generation_seed, params)))
    atomic_write_bytes(path, buffer.getvalue())
    return images, labels


def pathfinder_task(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    seed: int = 0,
    generation_seed: int = 0,
    info: dict[str, object] | None = None,
) -> SequenceTask:
    """The task over images uint8 ``[n, R, R]``: tokens int64 ``[n, R * R]``; splits as the module says."""
    n = len(labels)
    if n < 20:
        raise ConfigError(f"n={n} is too small for train/dev/test splits: use n >= 20")
    sizes = split_sizes(n)
    rest, test = stratified_holdout(labels, sizes["test"], generation_seed)
    kept, dev = stratified_holdout(labels[rest], sizes["dev"], seed)
    train, dev = rest[kept], rest[dev]
    tokens = images.reshape(n, -1).astype(np.int64)
    return SequenceTask(
        name=NAME,
        splits={
            part: (tokens[index], labels[index].astype(np.int64))
            for part, index in (("train", train), ("dev", dev), ("test", test))
        },
        vocab_size=VOCAB_SIZE,
        num_labels=len(LABEL_NAMES),
        seq_len=tokens.shape[1],
        pad_id=None,
        label_names=list(LABEL_NAMES),
        info={"seed": seed, "generation_seed": generation_seed, **(info or {})},
    )


def load_pathfinder_task(
    *,
    seed: int = 0,
    n: int | None = None,
    generation_seed: int = 0,
    workers: int | None = None,
    progress: bool = False,
    **params: object,
) -> SequenceTask:
    """Generate (or read from the cache) ``n`` (default DEFAULT_SIZE) Pathfinder images and build the task.

    ``params`` are :class:`~pyramid_bert.data.lra.pathfinder.PathfinderParams` fields (resolution is
    fixed to 32 for this task).
    """
    valid = set(PathfinderParams.__dataclass_fields__) - {"resolution"}
    unknown = sorted(set(params) - valid)
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for {NAME}; valid options: n, "
            f"generation_seed, workers, progress, {', '.join(sorted(valid))}"
        )
    n = DEFAULT_SIZE if n is None else n
    settings = PathfinderParams(resolution=32, **params)  # type: ignore[arg-type]
    settings.validate()
    images, labels = load_or_generate(n, generation_seed, settings, workers=workers, progress=progress)
    return pathfinder_task(
        images, labels, seed=seed, generation_seed=generation_seed, info={"n": n, **settings.as_dict()}
    )
