"""The SQLite results store: one row per trial key, foreign or incompatible files refused and untouched."""

from __future__ import annotations

import json
import sqlite3

import pytest

from pyramid_bert.errors import DataError
from pyramid_bert.sweep import store as store_module
from pyramid_bert.sweep.spec import TrialSpec
from pyramid_bert.sweep.store import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    STATUS_RETRYABLE,
    ResultsStore,
    SpeedRecord,
    TrialRecord,
    finished_by_seed,
    is_results_store,
    open_existing,
)


def _spec(seed=0, **changes):
    fields = {"task": "rt-polarity", "model": "minilm-l6", "method": "coreset", "schedule": "p=0.25 u=3",
              "lengths": (40, 25, 16, 16, 16, 16), "m": 0.2, "seed": seed}  # fmt: skip
    fields.update(changes)
    return TrialSpec(**fields)


def _ok(spec, value=0.8):
    return TrialRecord(spec=spec, status="ok", versions={"python": "3"}, host="h", wall_seconds=1.5,
                       result={"dev_metric": value, "test_metric": value - 0.01, "metric_name": "accuracy",
                               "speedup_median": 2.0, "checkpoint": "/ck", "lengths": [40, 25, 16, 16, 16, 16],
                               "memory": {"peak": 1}})  # fmt: skip


def test_rows_round_trip_with_spec_result_versions_and_wal(tmp_path):
    path = tmp_path / "results.sqlite"
    with ResultsStore(path) as store:
        assert store.add(_ok(_spec()))
        store.set_meta("sweep", {"preset": "quick"})
    with open_existing(path) as store:
        (record,) = list(store.records())
        assert record.spec == _spec()
        assert record.result["memory"] == {"peak": 1}
        assert record.versions == {"python": "3"} and record.host == "h" and record.ok
        assert store.get_meta("sweep") == {"preset": "quick"}
        assert store.finished_keys() == {_spec().key}
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        row = db.execute("SELECT method, m, dev_metric, checkpoint FROM trials").fetchone()
    assert row == ("coreset", "0.2", 0.8, "/ck")
    assert is_results_store(path)


def test_a_finished_key_is_never_written_twice(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        assert store.add(_ok(_spec(), 0.8))
        assert not store.add(_ok(_spec(), 0.5))
        assert len(store) == 1
        assert next(store.records()).result["dev_metric"] == 0.8


def test_a_failed_trial_is_replaced_by_its_retry(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.add(TrialRecord(spec=_spec(), status="failed", error="RuntimeError: boom"))
        assert store.finished_keys(include_failed=False) == set()
        assert store.add(_ok(_spec()))
        assert [r.status for r in store.records()] == ["ok"]


def test_keys_differ_by_every_identity_field_but_not_by_placement():
    base = _spec()
    assert base.key != _spec(seed=1).key
    assert base.key != _spec(m=None).key
    assert base.key != _spec(m=1).key
    assert base.key != _spec(lengths=(40, 25, 16, 16, 16, 15)).key
    assert base.key != _spec(epochs=1.0).key
    assert base.key == _spec(glue_dir="/elsewhere", device="cpu", schedule="renamed").key
    assert base.config_key == _spec(seed=3).config_key
    assert base.schedule_key == _spec(seed=3, m=None).schedule_key
    assert TrialSpec.from_dict(base.to_dict()) == base


def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "notes.sqlite"
    path.write_bytes(b"my precious notes\n" * 10)
    before = path.read_bytes()
    with pytest.raises(DataError, match="not a pyramid-bert results store"):
        ResultsStore(path)
    assert path.read_bytes() == before
    assert not is_results_store(path)


def test_another_applications_sqlite_file_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "other.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE mine (x)")
        db.execute("INSERT INTO mine VALUES (1)")
    db.close()
    before = path.read_bytes()
    with pytest.raises(DataError, match="not a pyramid-bert results store"):
        ResultsStore(path)
    assert path.read_bytes() == before


def test_a_store_of_another_schema_version_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "r.sqlite"
    with ResultsStore(path) as store:
        store.add(_ok(_spec()))
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    before = path.read_bytes()
    with pytest.raises(DataError, match="schema version 99"):
        ResultsStore(path)
    assert path.read_bytes() == before


def test_opening_a_missing_store_for_reading_says_so(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        open_existing(tmp_path / "nothing.sqlite")
    assert not (tmp_path / "nothing.sqlite").exists()


def test_a_store_opened_for_reading_is_read_only_and_left_byte_for_byte(tmp_path):
    path = tmp_path / "results.sqlite"
    with ResultsStore(path) as store:
        store.add(_ok(_spec()))
    before = path.read_bytes()
    files_before = sorted(tmp_path.iterdir())
    assert files_before == [path]  # the writer folded its log in and removed its -wal / -shm files
    with open_existing(path) as store:
        assert len(list(store.records())) == 1
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            store.set_meta("x", 1)
        assert sorted(tmp_path.iterdir()) == files_before  # no -wal / -shm beside the store while it is read
    assert is_results_store(path)
    assert path.read_bytes() == before
    assert sorted(tmp_path.iterdir()) == files_before


def test_a_store_being_written_is_read_with_the_rows_of_its_write_ahead_log(tmp_path):
    path = tmp_path / "results.sqlite"
    with ResultsStore(path) as writer:
        writer.add(_ok(_spec()))
        assert (tmp_path / "results.sqlite-wal").exists()  # the writer is open: its rows may be in the log only
        with open_existing(path) as reader:
            assert [r.spec for r in reader.records()] == [_spec()]


def test_reading_refuses_an_empty_file_and_a_folder_without_writing(tmp_path):
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty file, not a pyramid-bert results store"):
        open_existing(empty)
    assert empty.read_bytes() == b""
    with pytest.raises(DataError, match="is a folder, not a results store"):
        open_existing(tmp_path)


def test_a_retryable_trial_is_not_finished_and_its_rerun_replaces_it(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.add(TrialRecord(spec=_spec(), status=STATUS_RETRYABLE, error="worker died"))
        store.add(TrialRecord(spec=_spec(seed=1), status="failed", error="RuntimeError: boom"))
        assert len(store) == 2 and next(store.records()).retryable
        assert store.finished_keys() == {_spec(seed=1).key}
        assert store.finished_keys(include_failed=False) == set()
        assert store.add(_ok(_spec()))
        assert {r.spec.seed: r.status for r in store.records()} == {0: "ok", 1: "failed"}


def _version_1_store(path):
    """A store as pyramid-bert wrote it before the retryable status (schema version 1), with one failed row."""
    schema = store_module._SCHEMA.replace(f", '{STATUS_RETRYABLE}'", "")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(schema)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 1")
    spec = _spec()
    db.execute(
        "INSERT INTO trials (key, config_key, schedule_key, task, model, method, schedule, position, seed, status, "
        "error, spec_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'failed', 'RuntimeError: boom', ?)",
        (spec.key, spec.config_key, spec.schedule_key, spec.task, spec.model, spec.method, spec.schedule,
         spec.position, spec.seed, json.dumps(spec.to_dict(), sort_keys=True)),
    )  # fmt: skip
    db.close()


def test_a_version_1_store_is_read_as_it_is_and_upgraded_when_written(tmp_path):
    path = tmp_path / "results.sqlite"
    _version_1_store(path)
    before = path.read_bytes()
    with open_existing(path) as store:
        assert [(r.spec, r.status) for r in store.records()] == [(_spec(), "failed")]
    assert path.read_bytes() == before
    with ResultsStore(path) as store:
        assert [(r.spec, r.status, r.error) for r in store.records()] == [(_spec(), "failed", "RuntimeError: boom")]
        assert store.add(TrialRecord(spec=_spec(seed=1), status=STATUS_RETRYABLE, error="worker died"))
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        indexes = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "trials_by_task_method" in indexes
    db.close()


def test_a_version_2_store_has_no_timing_pass_and_is_upgraded_when_written(tmp_path):
    path = tmp_path / "results.sqlite"
    schema = store_module._SCHEMA.replace(store_module._SPEEDS_TABLE + ";", "")
    db = sqlite3.connect(path, isolation_level=None)
    db.executescript(schema)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 2")
    db.close()
    before = path.read_bytes()
    with open_existing(path) as store:
        assert store.speeds() == {} and list(store.records()) == []
    assert path.read_bytes() == before  # read as it is
    spec = _spec()
    with ResultsStore(path) as store:
        store.add_speed(SpeedRecord(spec, "coreset", {"speedup": {"median": 2.0, "low": 1.9, "high": 2.2}}, "h"))
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    db.close()
    with open_existing(path) as store:
        timed = store.speeds()
    assert list(timed) == [spec.config_key] and timed[spec.config_key].spec == spec
    assert timed[spec.config_key].result["speedup"]["high"] == 2.2 and timed[spec.config_key].group == "coreset"


def test_one_speed_row_serves_every_seed_of_a_configuration_and_a_retiming_replaces_it(tmp_path):
    with ResultsStore(tmp_path / "results.sqlite") as store:
        store.add_speed(SpeedRecord(_spec(seed=0), "coreset", {"speedup": {"median": 2.0}}))
        store.add_speed(SpeedRecord(_spec(seed=1), "coreset", {"speedup": {"median": 2.1}}))
        timed = store.speeds()
    assert _spec(seed=0).config_key == _spec(seed=1).config_key
    assert len(timed) == 1 and timed[_spec(seed=2).config_key].result["speedup"]["median"] == 2.1


def test_a_studys_finished_trials_by_seed_of_one_configuration_or_of_dense(tmp_path):
    path = tmp_path / "results.sqlite"
    dense = [_spec(seed, method="dense", schedule="dense", lengths=None, m=None) for seed in (0, 1)]
    named = [_spec(seed, variant="CS+@2X") for seed in (0, 1)]
    with ResultsStore(path) as store:
        for spec in dense + named + [_spec(0, variant="Att@2X"), _spec(2, variant="CS+@2X", task="trec")]:
            store.add(_ok(spec))
        store.add(TrialRecord(spec=_spec(2, variant="CS+@2X"), status="failed", error="boom"))
    assert {seed: r.spec for seed, r in finished_by_seed(path, task="rt-polarity").items()} == dict(enumerate(dense))
    assert {seed: r.spec for seed, r in finished_by_seed(path, task="rt-polarity", variant="CS+@2X").items()} == dict(
        enumerate(named)
    )  # the failed seed 2 and the trec trial are left out
    assert finished_by_seed(path, task="trec", variant="CS+@2X")[2].result["test_metric"] == pytest.approx(0.79)
