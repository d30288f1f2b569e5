"""Atomic writes: the content lands whole, nothing is left behind on failure, and the file has the usual mode."""

from __future__ import annotations

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


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = atomic_write_json(tmp_path / "a.json", {"x": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"x": object()})
    assert path.read_text().strip().startswith("{") and '"x": 1' in path.read_text()
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
