"""Parallel local trials: W worker processes give the results of a serial run; warm trials wait for the
dense trial of their seed; a failed dense trial blocks its dependents without running them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pyramid_bert.errors import ConfigError
from pyramid_bert.sweep.executors import LocalExecutor, default_workers, make_executor
from pyramid_bert.sweep.plan import ModelShape, TrainingBudget, plan_trials
from pyramid_bert.sweep.runner import run_sweep
from pyramid_bert.sweep.scheduling import JobQueue
from pyramid_bert.sweep.store import ResultsStore
from pyramid_bert.sweep.synthetic import synthetic_trial

SHAPE = ModelShape(6, 384, 1536)


def _warm_trials(seeds=(0, 1)):
    return plan_trials(tasks={"rt-polarity": 64}, model="minilm-l6", shape=SHAPE, methods=("coreset", "random", "dense"),
                       coreset_ms=(1, None), seeds=seeds, speedup_targets=(1.5, 3.0), protocol="warm",
                       budget=TrainingBudget(epochs=2), adapt_budget=TrainingBudget(epochs=0.5))  # fmt: skip


def _results(path):
    with ResultsStore(path) as store:
        return {r.spec.key: {k: v for k, v in r.result.items() if k != "checkpoint"} for r in store.records()}


def test_two_workers_give_exactly_the_serial_results(tmp_path):
    trials = _warm_trials()
    for name, workers in (("serial", 1), ("parallel", 2)):
        with ResultsStore(tmp_path / f"{name}.sqlite") as store:
            summary = run_sweep(trials, store, synthetic_trial, checkpoint_root=tmp_path / "ck",
                                executor=LocalExecutor(workers, threads=1), progress=False)  # fmt: skip
        assert summary.ran == len(trials) and summary.failed == 0
    serial, parallel = _results(tmp_path / "serial.sqlite"), _results(tmp_path / "parallel.sqlite")
    assert serial == parallel and len(serial) == len(trials)
    assert {row["protocol"] for row in serial.values()} == {"warm"}


def test_warm_trials_start_only_after_their_dense_trial_finished(tmp_path):
    trials = _warm_trials()
    events = []
    executor = LocalExecutor(2, threads=1)
    jobs = [(t.key, t.finetune_config(str(tmp_path / t.key[:16]))) for t in trials]
    needs = {t.key: [t.init_from] for t in trials if t.init_from}
    for outcome in executor.run(jobs, synthetic_trial, needs=needs, on_start=lambda key: events.append(("start", key))):
        events.append(("done", outcome["key"]))
    dense = {t.seed: t.key for t in trials if t.method == "dense"}
    for trial in trials:
        if trial.init_from:
            assert trial.init_from == dense[trial.seed]
            assert events.index(("done", dense[trial.seed])) < events.index(("start", trial.key))
    assert sorted(key for kind, key in events if kind == "done") == sorted(t.key for t in trials)


def test_a_failed_dense_trial_blocks_its_seed_only(tmp_path):
    trials = _warm_trials()
    failing = next(t.key for t in trials if t.method == "dense" and t.seed == 0)
    queue = JobQueue([(t.key, {}) for t in trials], {t.key: [t.init_from] for t in trials if t.init_from})
    started = []
    blocked = []
    while queue:
        job = queue.pop_ready()
        assert job is not None
        started.append(job[0])
        blocked += queue.finish(job[0], ok=job[0] != failing)
    seed0 = {t.key for t in trials if t.seed == 0 and t.method != "dense"}
    assert {b["key"] for b in blocked} == seed0 and not seed0 & set(started)
    assert all("not run: the trial it starts from" in b["error"] and b["status"] == "failed" for b in blocked)
    assert {t.key for t in trials if t.seed == 1} <= set(started)


def test_worker_counts_and_bad_values():
    assert default_workers(None) == 1
    assert default_workers(1) >= 1 and default_workers(10_000) == 1
    assert make_executor("local", workers=3, threads=1).workers == 3
    with pytest.raises(ConfigError, match="--workers must be an int >= 1"):
        LocalExecutor(0)
    with pytest.raises(ConfigError, match="--workers applies to --executor local only"):
        make_executor("ray", workers=2)


def test_dependents_of_a_failed_dense_trial_are_recorded_failed_and_retried_with_it(tmp_path):
    trials = _warm_trials(seeds=(0,))
    ran = []

    def broken_dense(config):
        ran.append(config["method"])
        if config["method"] == "dense":
            raise RuntimeError("out of memory")
        return synthetic_trial(config)

    path = tmp_path / "results.sqlite"
    with ResultsStore(path) as store:
        summary = run_sweep(trials, store, broken_dense, checkpoint_root=tmp_path / "ck", progress=False)
        errors = {r.spec.method: r.error for r in store.records()}
    assert ran == ["dense"] and summary.failed == len(trials)
    assert errors["coreset"].startswith("not run: the trial it starts from")
    ran.clear()
    with ResultsStore(path) as store:
        summary = run_sweep(trials, store, synthetic_trial, checkpoint_root=tmp_path / "ck", resume=True,
                            retry_failed=True, progress=False)  # fmt: skip
        assert all(r.ok for r in store.records())
    assert summary.ran == len(trials) and summary.failed == 0


def test_progress_labels_name_the_trial_and_its_m():
    from pyramid_bert.sweep.runner import trial_label

    trials = _warm_trials(seeds=(3,))
    labels = {trial_label(t) for t in trials}
    assert "rt-polarity dense seed 3" in labels
    assert any(label.startswith("rt-polarity coreset p=") and label.endswith("m=k-1 seed 3") for label in labels)
    assert any(label.endswith(" m=1 seed 3") for label in labels)


SLEEPY_TRIAL = '''
import os, time
from pathlib import Path

def sleepy_trial(config):
    Path(config["pid_dir"], str(os.getpid())).write_text("")
    time.sleep(120)
    return {"dev_metric": 0.0, "test_metric": 0.0}
'''

DRIVER = '''
import signal, sys
from pyramid_bert.sweep.executors import LocalExecutor
from sleepy import sleepy_trial
if __name__ == "__main__":
    # Ctrl-C as a driver started from a shell gets it: the test process's own signal state (a handler set to
    # ignore, or a blocked mask, both inherited by subprocesses) must not decide what is tested
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    jobs = [(f"k{i}", {"pid_dir": sys.argv[1]}) for i in range(2)]
    for _ in LocalExecutor(2).run(jobs, sleepy_trial):
        pass
'''


def _driver_running_two_trials(tmp_path, **popen) -> tuple[subprocess.Popen, list[int]]:
    """A sweep driver process whose two workers are each inside a 120 s trial; their pids."""
    (tmp_path / "sleepy.py").write_text(SLEEPY_TRIAL)
    (tmp_path / "driver.py").write_text(DRIVER)
    pid_dir = tmp_path / "pids"
    pid_dir.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    driver = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(pid_dir)], env=env, **popen)
    deadline = time.monotonic() + 120
    while len(list(pid_dir.iterdir())) < 2 and time.monotonic() < deadline and driver.poll() is None:
        time.sleep(0.2)
    return driver, [int(path.name) for path in pid_dir.iterdir()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_workers_of_a_killed_driver_exit_instead_of_training_on(tmp_path):
    """A driver killed with SIGKILL (no clean-up runs) must not leave its workers running their trials."""
    driver, workers = _driver_running_two_trials(tmp_path)
    try:
        assert len(workers) == 2
        driver.send_signal(signal.SIGKILL)
        driver.wait()
        deadline = time.monotonic() + 60  # a liveness wait, not a timing claim
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in workers)
    finally:
        driver.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_an_interrupted_driver_stops_its_running_trials_and_exits(tmp_path):
    """Ctrl-C sent to the driver alone (SIGINT to its pid, not its process group): the driver exits without waiting
    for the running trials (they sleep 120 s) and stops their workers."""
    driver, workers = _driver_running_two_trials(tmp_path, stderr=subprocess.DEVNULL)
    try:
        assert len(workers) == 2
        driver.send_signal(signal.SIGINT)
        try:
            driver.wait(timeout=60)  # a liveness wait, not a timing claim: the trials would run 120 s
        except subprocess.TimeoutExpired:
            pytest.fail("the interrupted driver is still waiting for its running trials")
        assert not any(_alive(pid) for pid in workers)
    finally:
        driver.kill()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")  # a zombie is dead


# Trials for the worker-death tests, in a module the spawned workers import. The trial with lengths[0] == 32
# kills its own worker process (as the out-of-memory killer would) once the first trial runs beside it: on its
# first run only, or (KILL_EVERY_TIME) on every run. The first trial is still running then; the others wait for
# that death before they end.
DYING_TRIALS = """
import os, signal, time
from pathlib import Path
from pyramid_bert.sweep.synthetic import synthetic_trial

KILL_EVERY_TIME = {every_time}

def _wait_for(path):
    deadline = time.monotonic() + 60
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)

def dying_trial(config):
    log = Path(config["out"]).parent
    key = Path(config["out"]).name
    with open(log / "starts.log", "a") as starts:
        starts.write(key + "\\n")
    if config["lengths"][0] == 32 and (KILL_EVERY_TIME or not (log / "killed").exists()):
        _wait_for(log / "first-started")
        (log / "killed").touch()
        os.kill(os.getpid(), signal.SIGKILL)
    if config["lengths"][0] == 48 and not (log / "first-started").exists():
        (log / "first-started").touch()
        _wait_for(log / "killed")
        time.sleep(60)  # still running when the pool finds its neighbour dead, and stopped with it
    _wait_for(log / "killed")
    return synthetic_trial(config)
"""


def _run_with_a_dying_worker(tmp_path, monkeypatch, *, every_time):
    from test_sweep_resume import TRIALS

    (tmp_path / "dying.py").write_text(DYING_TRIALS.format(every_time=every_time))
    monkeypatch.syspath_prepend(str(tmp_path))
    from dying import dying_trial

    trials = TRIALS[:4]  # lengths[0] 48, 32, 16, 8: the first two start together on the two workers
    root = tmp_path / "ck"
    root.mkdir()
    with ResultsStore(tmp_path / "r.sqlite") as store:
        summary = run_sweep(trials, store, dying_trial, checkpoint_root=root, executor=LocalExecutor(2, threads=1),
                            progress=False)  # fmt: skip
        records = {record.spec.lengths[0]: record for record in store.records()}
    starts = (root / "starts.log").read_text().split()
    return summary, records, [next(t.lengths[0] for t in trials if t.key.startswith(key)) for key in starts]


def test_a_killed_worker_loses_no_trial_the_others_run_again_and_the_sweep_goes_on(tmp_path, monkeypatch):
    summary, records, starts = _run_with_a_dying_worker(tmp_path, monkeypatch, every_time=False)
    assert summary.ran == 4 and summary.failed == 0
    assert {length: record.status for length, record in records.items()} == {48: "ok", 32: "ok", 16: "ok", 8: "ok"}
    assert sorted(starts) == [8, 16, 32, 32, 48, 48]  # the killed trial and the one beside it ran again


def test_a_trial_that_kills_its_worker_every_time_ends_failed_and_the_rest_finish(tmp_path, monkeypatch):
    from pyramid_bert.sweep.executors import WORKER_DEATHS_PER_TRIAL

    summary, records, starts = _run_with_a_dying_worker(tmp_path, monkeypatch, every_time=True)
    assert summary.ran == 4 and summary.failed == 1 and summary.retryable == 0
    assert {length: record.status for length, record in records.items()} == {48: "ok", 32: "failed", 16: "ok", 8: "ok"}
    assert f"its worker process died {WORKER_DEATHS_PER_TRIAL} times while it ran" in records[32].error
    assert starts.count(32) == 1 + WORKER_DEATHS_PER_TRIAL  # once beside another trial, then alone
