"""Long Range Arena data: pixel sequences, generated Pathfinder-32 images, byte-level text.

Three tasks, each a :class:`SequenceTask` of fixed-length token sequences, metric accuracy:

- ``lra-image``: Fashion-MNIST (Debian ``dataset-fashion-mnist``) as 784 grey-level tokens (vocab 256);
  train 54,000 / dev 6,000 / test 10,000, 10 classes.
- ``lra-pathfinder32``: 20,000 generated 32x32 Pathfinder images (hard setting, contour length 14) as
  1024 grey-level tokens (vocab 256); train 16,000 / dev 2,000 / test 2,000, balanced.
- ``lra-bytes``: ``pang-lee-reviews`` as UTF-8 bytes + 1, padded with 0 to 1000 (or 4000) tokens
  (vocab 257); the text task's splits.

Usage::

    from pyramid_bert.data.lra import lra_sources, load_lra_task
    task = load_lra_task("lra-pathfinder32", seed=0)            # generates and caches on first use
    tokens, labels = task.splits["train"]                       # int64 [n, 1024], int64 [n]
"""

from __future__ import annotations

from pyramid_bert.data.catalog import TEXT_SPLIT_SIZES, package_source
from pyramid_bert.data.fetch import is_cached
from pyramid_bert.data.lra import byte_text, fashion_mnist, pathfinder_task
from pyramid_bert.data.lra.sequence_task import LraSource, SequenceTask
from pyramid_bert.errors import ConfigError, DataError

__all__ = ["LRA_TASK_NAMES", "LraSource", "SequenceTask", "fetch_lra_source", "load_lra_task", "lra_sources"]

LRA_TASK_NAMES: tuple[str, ...] = ("lra-image", "lra-pathfinder32", "lra-bytes")

_OPTIONS = {
    "lra-image": ("dev_size",),
    "lra-pathfinder32": (
        "n",
        "generation_seed",
        "workers",
        "progress",
        "contour_length",
        "distractor_length",
        "num_distractors",
        "paddle_length",
        "max_turn",
        "padding",
    ),
    "lra-bytes": ("max_length",),
}


def lra_sources() -> list[LraSource]:
    """The three LRA sources with their default sizes, splits, N, and whether they are cached."""
    pathfinder_splits = pathfinder_task.split_sizes(pathfinder_task.DEFAULT_SIZE)
    byte_splits = _text_split_sizes(byte_text.TEXT_TASK)
    return [
        LraSource(
            name="lra-image",
            kind="image",
            description=f"Fashion-MNIST 28x28 grey images as pixel sequences (Debian {fashion_mnist.DEB_PACKAGE})",
            size=70_000,
            splits={"train": 54_000, "dev": 6_000, "test": 10_000},
            metric="accuracy",
            seq_len=fashion_mnist.SEQ_LEN,
            vocab_size=fashion_mnist.VOCAB_SIZE,
            num_labels=len(fashion_mnist.LABEL_NAMES),
            cached=fashion_mnist.is_fashion_mnist_cached(),
        ),
        LraSource(
            name="lra-pathfinder32",
            kind="synthetic image",
            description="generated Pathfinder 32x32, hard (contour length 14): are the two markers joined?",
            size=pathfinder_task.DEFAULT_SIZE,
            splits=dict(pathfinder_splits),
            metric="accuracy",
            seq_len=32 * 32,
            vocab_size=pathfinder_task.VOCAB_SIZE,
            num_labels=2,
            cached=pathfinder_task.is_pathfinder_cached(),
        ),
        LraSource(
            name="lra-bytes",
            kind="bytes",
            description="pang-lee-reviews full movie reviews as UTF-8 byte sequences (LRA's IMDB bytes)",
            size=sum(byte_splits.values()),
            splits=byte_splits,
            metric="accuracy",
            seq_len=byte_text.DEFAULT_MAX_LENGTH,
            vocab_size=byte_text.VOCAB_SIZE,
            num_labels=2,
            cached=_text_source_cached(byte_text.TEXT_TASK),
        ),
    ]


def load_lra_task(name: str, *, seed: int = 0, **options: object) -> SequenceTask:
    """Load LRA task ``name`` (fetching or generating it into the cache on first use).

    Args:
        name: one of :data:`LRA_TASK_NAMES`.
        seed: seed of the train/dev split (the test split never depends on it).
        options: ``lra-image``: dev_size (6000). ``lra-pathfinder32``: n (20000), generation_seed (0),
            workers, progress, and drawing parameters (contour_length 14, ...). ``lra-bytes``: max_length
            (1000; LRA's long option is 4000).

    Returns:
        A :class:`SequenceTask`; ``task.splits[split] = (tokens int64 [n, N], labels int64 [n])``.
    """
    if name not in LRA_TASK_NAMES:
        raise DataError(f"unknown LRA task {name!r} (parameter 'name'); valid: {', '.join(LRA_TASK_NAMES)}")
    unknown = sorted(set(options) - set(_OPTIONS[name]))
    if unknown:
        raise ConfigError(
            f"unknown option(s) {', '.join(unknown)} for {name}; valid options: {', '.join(_OPTIONS[name])}"
        )
    if name == "lra-image":
        return fashion_mnist.load_image_task(seed=seed, **options)  # type: ignore[arg-type]
    if name == "lra-pathfinder32":
        return pathfinder_task.load_pathfinder_task(seed=seed, **options)  # type: ignore[arg-type]
    return byte_text.load_byte_task(seed=seed, **options)  # type: ignore[arg-type]


def fetch_lra_source(name: str, *, progress: bool = False) -> None:
    """Put LRA source ``name`` (with default options) into the cache: download or generate it."""
    if name == "lra-pathfinder32":
        load_lra_task(name, progress=progress)
    else:
        load_lra_task(name)


def _text_split_sizes(task_name: str) -> dict[str, int]:
    """The (measured) split sizes of text task ``task_name`` from the text catalog."""
    train, dev, test = TEXT_SPLIT_SIZES[task_name]
    return {"train": train, "dev": dev, "test": test}


def _text_source_cached(source_name: str) -> bool:
    return is_cached(package_source(source_name))
