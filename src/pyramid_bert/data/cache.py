"""Where fetched data lives, and the checksums that say it is intact.

The cache root is ``$PYRAMID_BERT_HOME`` (default ``~/.cache/pyramid-bert``). Every write goes to a
temporary path inside the cache root first and is renamed into place, so an interrupted fetch leaves
nothing half-written under a final name.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from pyramid_bert.io import atomic_write_bytes

__all__ = ["atomic_write_bytes", "cache_home", "make_temp_dir", "sha256_file", "sha256_of", "sha256_tree"]

HOME_ENV = "PYRAMID_BERT_HOME"
DEFAULT_HOME = Path("~/.cache/pyramid-bert")
_CHUNK = 1 << 20


def cache_home() -> Path:
    """The cache root: ``$PYRAMID_BERT_HOME`` if set, else ``~/.cache/pyramid-bert`` (not created here)."""
    configured = os.environ.get(HOME_ENV, "").strip()
    return Path(configured).expanduser() if configured else DEFAULT_HOME.expanduser()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of one file's bytes (what ``sha256sum`` prints)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_tree(folder: str | os.PathLike[str]) -> str:
    """Hex sha256 of a folder: over the sorted lines ``<relative posix path> <sha256 of file>\\n``.

    Names and contents both count, so a renamed, missing, extra or altered file changes the digest.
    """
    root = Path(folder)
    lines = sorted(
        f"{path.relative_to(root).as_posix()} {sha256_file(path)}\n" for path in root.rglob("*") if path.is_file()
    )
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def sha256_of(path: str | os.PathLike[str]) -> str:
    """:func:`sha256_file` for a file, :func:`sha256_tree` for a folder."""
    return sha256_tree(path) if Path(path).is_dir() else sha256_file(path)


def make_temp_dir(parent: Path, prefix: str) -> Path:
    """A fresh temporary folder inside ``parent`` (created with its parents), on the same file system as the
    final destination so that :func:`os.replace` is an atomic rename."""
    parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{prefix}-", suffix=".tmp", dir=parent))
