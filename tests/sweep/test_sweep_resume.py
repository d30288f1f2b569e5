"""Running sweeps: failures recorded and skipped over, and a sweep killed with SIGKILL resumes without
losing a finished trial or running one twice."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pyramid_bert.errors import ConfigError
from pyramid_bert.sweep.runner import run_sweep
from pyramid_bert.sweep.spec import TrialSpec
from pyramid_bert.sweep.store import ResultsStore
from pyramid_bert.sweep.synthetic import synthetic_trial

TRIALS = [TrialSpec(task="toy", model="tiny", method="random", schedule=f"k={k}", lengths=(k,) * 6, seed=seed)
          for seed in range(2) for k in (48, 32, 16, 8)]  # fmt: skip

# Runs the TRIALS sweep with a trial function that logs "start <key>" and blocks forever on one trial.
_DRIVER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_sweep_resume import TRIALS
    from pyramid_bert.sweep.runner import run_sweep
    from pyramid_bert.sweep.store import ResultsStore
    from pyramid_bert.sweep.synthetic import synthetic_trial

    store_path, log_path, block_at, pause = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])

    def trial(config):
        key = config["out"].rsplit("/", 1)[-1]
        with open(log_path, "a") as log:
            log.write(f"start {{key}}\\n")
        if key == block_at:
            Path(log_path + ".blocked").touch()
            time.sleep(600)
        time.sleep(pause)
        return synthetic_trial(config)

    with ResultsStore(store_path) as store:
        run_sweep(TRIALS, store, trial, checkpoint_root="ck", resume=True, progress=False)
    """
)


def _driver(tmp_path: Path) -> Path:
    path = tmp_path / "driver.py"
    path.write_text(_DRIVER.format(tests=str(Path(__file__).parent)))
    return path


def _keys(store_path: Path) -> list[str]:
    with ResultsStore(store_path) as store:
        return [record.spec.key for record in store.records()]


def _started(log_path: Path) -> list[str]:
    return log_path.read_text().split("start ")[1:] if log_path.exists() else []


def _wait_for(path: Path, process: subprocess.Popen, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while not path.exists():
        assert process.poll() is None, "the sweep ended before reaching the blocking trial"
        assert time.monotonic() < deadline, "the sweep never reached the blocking trial"
        time.sleep(0.05)


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(tmp_path):
    def trial(config):
        if config["lengths"][0] == 16:
            raise RuntimeError("out of memory (simulated)")
        return synthetic_trial(config)

    with ResultsStore(tmp_path / "r.sqlite") as store:
        summary = run_sweep(TRIALS, store, trial, checkpoint_root=tmp_path, progress=False)
        records = list(store.records())
    assert summary.ran == len(TRIALS) and summary.failed == 2
    failed = [r for r in records if not r.ok]
    assert {r.spec.schedule for r in failed} == {"k=16"}
    assert all("RuntimeError: out of memory (simulated)" in r.error for r in failed)
    assert sum(r.ok for r in records) == len(TRIALS) - 2


def test_resume_skips_failed_trials_unless_asked_to_retry_them(tmp_path):
    calls = []

    def failing(config):
        raise ValueError("nope")

    def counting(config):
        calls.append(config["out"])
        return synthetic_trial(config)

    with ResultsStore(tmp_path / "r.sqlite") as store:
        run_sweep(TRIALS[:2], store, failing, checkpoint_root=tmp_path, progress=False)
        summary = run_sweep(TRIALS[:2], store, counting, checkpoint_root=tmp_path, resume=True, progress=False)
        assert summary.ran == 0 and calls == []
        summary = run_sweep(TRIALS[:2], store, counting, checkpoint_root=tmp_path, resume=True,
                            retry_failed=True, progress=False)  # fmt: skip
        assert summary.ran == 2 and summary.failed == 0 and len(calls) == 2
        assert all(record.ok for record in store.records())


def test_a_store_with_trials_needs_resume(tmp_path):
    with ResultsStore(tmp_path / "r.sqlite") as store:
        run_sweep(TRIALS[:1], store, synthetic_trial, checkpoint_root=tmp_path, progress=False)
        with pytest.raises(ConfigError, match="--resume"):
            run_sweep(TRIALS, store, synthetic_trial, checkpoint_root=tmp_path, progress=False)


def test_a_sweep_killed_mid_trial_resumes_without_loss_or_repetition(tmp_path):
    store_path, log_path = tmp_path / "r.sqlite", tmp_path / "starts.log"
    blocked = TRIALS[5].key[:16]
    process = subprocess.Popen([sys.executable, str(_driver(tmp_path)), str(store_path), str(log_path), blocked, "0"],
                               cwd=tmp_path)  # fmt: skip
    try:
        _wait_for(Path(str(log_path) + ".blocked"), process)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    assert _keys(store_path) == [t.key for t in TRIALS[:5]]  # the five finished before the kill

    resumed = []

    def counting(config):
        resumed.append(config["out"].rsplit("/", 1)[-1])
        return synthetic_trial(config)

    with ResultsStore(store_path) as store:
        summary = run_sweep(TRIALS, store, counting, checkpoint_root=tmp_path / "ck", resume=True, progress=False)
    assert summary.already_done == 5 and summary.ran == 3
    assert resumed == [t.key[:16] for t in TRIALS[5:]]  # the killed trial again, then the rest; nothing else
    assert sorted(_keys(store_path)) == sorted(t.key for t in TRIALS)


def test_kills_at_random_moments_never_lose_nor_repeat_a_finished_trial(tmp_path):
    store_path, log_path = tmp_path / "r.sqlite", tmp_path / "starts.log"
    driver = _driver(tmp_path)
    rng = random.Random(1234)
    for _ in range(30):
        done_before = set(_keys(store_path)) if store_path.exists() else set()
        if len(done_before) == len(TRIALS):
            break
        log_path.unlink(missing_ok=True)
        process = subprocess.Popen([sys.executable, str(driver), str(store_path), str(log_path), "-", "0.2"],
                                   cwd=tmp_path)  # fmt: skip
        time.sleep(rng.uniform(0.3, 1.5))
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        started = {key.strip() for key in _started(log_path)}
        assert not started & {key[:16] for key in done_before}, "a finished trial was run again"
        keys = _keys(store_path) if store_path.exists() else []
        assert len(keys) == len(set(keys))
        assert set(keys) >= done_before, "a finished trial was lost"
    with ResultsStore(store_path) as store:
        run_sweep(TRIALS, store, synthetic_trial, checkpoint_root=tmp_path / "ck", resume=True, progress=False)
        records = list(store.records())
    assert sorted(r.spec.key for r in records) == sorted(t.key for t in TRIALS)
    assert all(r.ok and "test_metric" in r.result for r in records)


def test_a_trial_whose_run_folder_is_in_use_is_retryable_and_resume_runs_it_again(tmp_path):
    from pyramid_bert.errors import RunFolderBusyError

    def busy(config):
        if config["lengths"][0] == 16:
            raise RunFolderBusyError(f"--out: {config['out']} is in use by another run")
        return synthetic_trial(config)

    calls = []

    def counting(config):
        calls.append(config["lengths"][0])
        return synthetic_trial(config)

    with ResultsStore(tmp_path / "r.sqlite") as store:
        summary = run_sweep(TRIALS, store, busy, checkpoint_root=tmp_path, progress=False)
        assert summary.failed == summary.retryable == 2
        assert {r.status for r in store.records() if r.spec.lengths[0] == 16} == {"retryable"}
        summary = run_sweep(TRIALS, store, counting, checkpoint_root=tmp_path, resume=True, progress=False)
        assert calls == [16, 16] and summary.ran == 2 and summary.failed == 0  # no --retry-failed needed
        assert all(record.ok for record in store.records())


def test_the_dependents_of_a_lost_dense_trial_are_retryable_too(tmp_path):
    from pyramid_bert.errors import RunFolderBusyError
    from pyramid_bert.sweep.plan import ModelShape, TrainingBudget, plan_trials

    trials = plan_trials(tasks={"rt-polarity": 64}, model="minilm-l6", shape=ModelShape(6, 384, 1536),
                         methods=("random", "dense"), seeds=(0,), speedup_targets=(1.5, 3.0), protocol="warm",
                         budget=TrainingBudget(epochs=2), adapt_budget=TrainingBudget(epochs=0.5))  # fmt: skip

    def busy_dense(config):
        if config["method"] == "dense":
            raise RunFolderBusyError("--out: in use by another run")
        return synthetic_trial(config)

    with ResultsStore(tmp_path / "r.sqlite") as store:
        run_sweep(trials, store, busy_dense, checkpoint_root=tmp_path, progress=False)
        records = list(store.records())
        assert {r.status for r in records} == {"retryable"}
        assert all("was lost; --resume runs both" in r.error for r in records if r.spec.method != "dense")
        summary = run_sweep(trials, store, synthetic_trial, checkpoint_root=tmp_path, resume=True, progress=False)
        assert summary.ran == len(trials) and summary.failed == 0


def _finished_synthetic_sweep(tmp_path):
    """A smoke sweep on the synthetic trial function, run to its end: its argv, folder and store."""
    from pyramid_bert.cli import main

    out = tmp_path / "sweep"
    argv = ["sweep", "--synthetic", "--preset", "smoke", "--seeds", "1", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    return argv, out, out / "results.sqlite"


def test_a_second_driver_on_a_store_in_use_stops_at_once_and_leaves_it_unchanged(tmp_path, capsys):
    from pyramid_bert.cli import main
    from pyramid_bert.errors import BusyError
    from pyramid_bert.sweep.ablation_runs import run_ablation_trials as run_trials
    from pyramid_bert.sweep.driver_lock import DriverLock

    argv, out, store = _finished_synthetic_sweep(tmp_path)
    before = store.read_bytes()
    capsys.readouterr()
    with DriverLock(store, "pyramid-bert sweep --resume"):  # the first driver, still running
        files = {path: path.read_bytes() for path in out.rglob("*") if path.is_file()}
        for second in ([*argv, "--resume", "--retry-failed"], ["ablate", "m", "--synthetic", "--out", str(out)]):
            assert main(second) == 2
            error = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
            assert len(error) == 1 and error[0].startswith(f"pyramid-bert {second[0]}: error: "), error
            assert f"the results store {store} is in use by another run (pyramid-bert sweep --resume, pid " in error[0]
            assert f"pid {os.getpid()} on " in error[0] and "another --out" in error[0]
            assert {path: path.read_bytes() for path in out.rglob("*") if path.is_file()} == files
        with pytest.raises(BusyError, match="is in use by another run"):  # what analyze --model ablate-dense runs
            run_trials(TRIALS[:1], out, trial_fn=synthetic_trial, workers=1, threads=1, progress=False)
    assert store.read_bytes() == before
    assert main([*argv, "--resume"]) == 0  # free again
    assert not (out / ".results.sqlite.driver.json").exists()


def test_resume_with_another_plan_is_refused_naming_what_differs_and_the_store_is_unchanged(tmp_path, capsys):
    from pyramid_bert.cli import main

    argv, out, store = _finished_synthetic_sweep(tmp_path)
    before = store.read_bytes()
    capsys.readouterr()
    assert main([*argv, "--resume", "--seeds", "2", "--epochs", "3"]) == 2
    error = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(error) == 1 and error[0].startswith("pyramid-bert sweep: error: --resume: the sweep in "), error
    assert "seeds 1 (now 2; --seeds)" in error[0] and "budget.epochs " in error[0] and "(now 3.0; --epochs" in error[0]
    assert "another --out" in error[0] and "preset" not in error[0].split("settings:")[1]
    assert store.read_bytes() == before
    assert main([*argv, "--resume", "--workers", "2"]) == 0  # where trials run is not part of the plan
    assert "0 trials run (0 failed), 19 already done" in capsys.readouterr().out


def test_a_store_without_a_recorded_plan_resumes_and_records_this_one(tmp_path, capsys):
    from pyramid_bert.cli import main
    from pyramid_bert.sweep.recorded_plan import PLAN_META

    out = tmp_path / "sweep"
    argv = ["sweep", "--synthetic", "--preset", "smoke", "--seeds", "1", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    with ResultsStore(out / "results.sqlite") as store:  # as a store written before plans were recorded
        store._connection.execute("DELETE FROM meta WHERE name = ?", (PLAN_META,))
    assert main([*argv, "--resume", "--seeds", "2"]) == 0
    assert "19 already done" in capsys.readouterr().out
    with ResultsStore(out / "results.sqlite") as store:
        assert store.get_meta(PLAN_META)["seeds"] == 2  # the plan of the run that resumed it


def test_a_store_begun_before_the_timing_pass_is_not_resumed_with_one(tmp_path, capsys):
    from pyramid_bert.cli import main
    from pyramid_bert.sweep.recorded_plan import PLAN_META

    argv, out, store = _finished_synthetic_sweep(tmp_path)
    with ResultsStore(store) as opened:  # as an older pyramid-bert recorded it: trials timed themselves
        plan = opened.get_meta(PLAN_META)
        opened.set_meta(PLAN_META, {name: value for name, value in plan.items() if name != "speed_pass"})
    before = store.read_bytes()
    capsys.readouterr()
    assert main([*argv, "--resume"]) == 2
    error = capsys.readouterr().err
    assert "speed_pass not recorded" in error and "older pyramid-bert" in error and "another --out" in error
    assert store.read_bytes() == before


def test_extend_adds_configurations_to_a_finished_study_and_keeps_its_trials(tmp_path, monkeypatch, capsys):
    import dataclasses

    from pyramid_bert.cli import main
    from pyramid_bert.sweep import presets
    from pyramid_bert.sweep.variants import Variant

    out = tmp_path / "study"
    flags = ["sweep", "--preset", "selection", "--task", "trec", "--seeds", "1", "--synthetic", "--out", str(out),
             "--no-progress"]  # fmt: skip
    assert main(flags) == 0
    store_path = out / "results.sqlite"
    with ResultsStore(store_path) as store:
        before = {record.spec.key: record.finished_at for record in store.records()}
    selection = presets.PRESETS["selection"]
    added = Variant("1st+dup", "first_k", "r=0.5,0.25", keep_ratios=presets.SELECTION_RATIOS,
                    options=(("duplicity_attention", True),))  # fmt: skip
    grown = dataclasses.replace(selection, variants={**selection.variants, "trec": (*selection.variants["trec"], added)})
    monkeypatch.setitem(presets.PRESETS, "selection", grown)
    capsys.readouterr()
    assert main([*flags, "--resume"]) == 2  # another plan: refused, and told how to grow it
    assert "--extend" in capsys.readouterr().err
    assert main([*flags, "--extend"]) == 2 and "--extend needs --resume" in capsys.readouterr().err
    assert main([*flags, "--resume", "--extend"]) == 0
    with ResultsStore(store_path) as store:
        after = {record.spec.key: record for record in store.records()}
        assert "1st+dup" in store.get_meta("sweep")["variants"]["trec"]  # the extended plan is the recorded one
    assert len(after) == len(before) + 1 and {r.spec.variant for r in after.values()} >= {"1st+dup"}
    assert all(after[key].finished_at == finished for key, finished in before.items())  # nothing ran again
    fewer = dataclasses.replace(selection, variants={**selection.variants, "trec": selection.variants["trec"][:-1]})
    monkeypatch.setitem(presets.PRESETS, "selection", fewer)
    assert main([*flags, "--resume", "--extend"]) == 2  # a configuration removed is no extension
