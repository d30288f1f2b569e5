"""Atomic writes: the content lands whole, nothing is left behind on failure, and the file has the usual mode."""

from __future__ import annotations

import errno
import json
import os
import stat

import pytest

from pyramid_bert.io import atomic_write_json, atomic_write_text


def test_written_files_get_the_mode_open_would_give_them_not_mkstemps_0600(tmp_path):
    path = atomic_write_text(tmp_path / "report.md", "# results\n")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert path.read_text() == "# results\n"


class FullDisk:
    """A file object that writes half of what it is given and then fails, as a full disk does."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, data: bytes) -> int:
        self.stream.write(data[: len(data) // 2])
        self.stream.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name):
        return getattr(self.stream, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stream.close()


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = atomic_write_json(tmp_path / "a.json", {"x": 1})
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda *args, **kwargs: FullDisk(real_fdopen(*args, **kwargs)))
    with pytest.raises(OSError, match="No space left"):
        atomic_write_json(path, {"x": 2, "padding": "y" * 1000})
    assert json.loads(path.read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_failed_rename_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = atomic_write_text(tmp_path / "a.md", "old\n")

    def refuse(*args, **kwargs):
        raise OSError(errno.EXDEV, "cross-device link")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="cross-device"):
        atomic_write_text(path, "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.md"]


def record_fsyncs(monkeypatch) -> list[tuple[bool, int]]:
    """Make ``os.fsync`` record (is a folder, inode) of each call, then sync as usual."""
    calls: list[tuple[bool, int]] = []
    real_fsync = os.fsync

    def recording(fd: int) -> None:
        status = os.fstat(fd)
        calls.append((stat.S_ISDIR(status.st_mode), status.st_ino))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return calls


def test_the_file_is_synced_before_the_rename_and_its_folder_after(tmp_path, monkeypatch):
    calls = record_fsyncs(monkeypatch)
    real_replace, renamed_after = os.replace, []
    monkeypatch.setattr(os, "replace", lambda *args: (renamed_after.append(len(calls)), real_replace(*args))[1])
    path = atomic_write_text(tmp_path / "report.md", "# results\n")
    assert renamed_after == [1] and calls[0] == (False, path.stat().st_ino)  # the file, before the rename
    assert calls[1:] == [(True, tmp_path.stat().st_ino)]  # its folder, after


def test_a_replaced_folder_has_its_files_and_its_parent_synced(tmp_path, monkeypatch):
    from pyramid_bert.training.checkpoint import replace_dir

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.txt").write_text("old")
    new = tmp_path / ".out.tmp-1"
    (new / "sub").mkdir(parents=True)
    (new / "a.bin").write_bytes(b"a")
    (new / "sub" / "b.bin").write_bytes(b"b")
    calls = record_fsyncs(monkeypatch)
    replace_dir(new, tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.name for p in out.rglob("*")) == ["a.bin", "b.bin", "sub"] and not new.exists()
    files = {(False, (out / "a.bin").stat().st_ino), (False, (out / "sub" / "b.bin").stat().st_ino)}
    folders = {(True, out.stat().st_ino), (True, (out / "sub").stat().st_ino)}
    assert files | folders <= set(calls[:-1]) and calls[-1] == (True, tmp_path.stat().st_ino)


def test_checkpoint_writes_json_with_the_one_atomic_writer(tmp_path, monkeypatch):
    from pyramid_bert import io
    from pyramid_bert.training import checkpoint

    assert checkpoint.atomic_write_json is io.atomic_write_json
    path = checkpoint.atomic_write_json(tmp_path / "run.json", {"x": 1})
    monkeypatch.setattr(os, "replace", lambda *args: (_ for _ in ()).throw(OSError("disk gone")))
    with pytest.raises(OSError, match="disk gone"):
        checkpoint.atomic_write_json(path, {"x": 2})
    assert json.loads(path.read_text()) == {"x": 1} and [p.name for p in tmp_path.iterdir()] == ["run.json"]


def test_csv_rows_written_atomically_read_back_file_after_file(tmp_path):
    from pyramid_bert.io import read_csv_rows, write_csv_atomic

    write_csv_atomic(tmp_path / "a.csv", [{"seed": 0, "test": 0.5}, {"seed": 1, "test": 0.25}])
    write_csv_atomic(tmp_path / "b.csv", [{"seed": 2, "test": "x, y"}])
    assert read_csv_rows(tmp_path / "a.csv", tmp_path / "b.csv") == [
        {"seed": "0", "test": "0.5"}, {"seed": "1", "test": "0.25"}, {"seed": "2", "test": "x, y"},
    ]
