"""The Ray executor: a real local Ray instance (2 CPUs) runs a tiny sweep end to end; clear messages when
Ray is missing or unreachable."""

from __future__ import annotations

import socket
import sys

import pytest

from pyramid_bert.errors import ConfigError
from pyramid_bert.sweep.executors import LocalExecutor, check_reachable, import_ray, make_executor
from pyramid_bert.sweep.plan import ModelShape, TrainingBudget, plan_trials
from pyramid_bert.sweep.runner import run_sweep
from pyramid_bert.sweep.store import ResultsStore
from pyramid_bert.sweep.synthetic import synthetic_trial


def _tiny_plan():
    return plan_trials(tasks={"rt-polarity": 64}, model="minilm-l6", shape=ModelShape(6, 384, 1536),
                       methods=("coreset", "random", "dense"), coreset_ms=(1, None), seeds=(0, 1),
                       speedup_targets=(2.0,), budget=TrainingBudget(epochs=1))  # fmt: skip


def test_without_ray_the_ray_executor_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError, match=r'pip install "pyramid-bert\[ray\]"'):
        import_ray()
    with pytest.raises(ConfigError, match=r'pip install "pyramid-bert\[ray\]"'):
        make_executor("ray")


def test_an_unreachable_ray_address_gives_a_clear_message():
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConfigError, match=f"no Ray cluster reachable at '127.0.0.1:{port}'"):
        check_reachable(f"127.0.0.1:{port}", timeout=2.0)
    with pytest.raises(ConfigError, match="HOST:PORT"):
        check_reachable("not-an-address")


def test_unknown_executor_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="local, ray"):
        make_executor("slurm")
    with pytest.raises(ConfigError, match="--address"):
        make_executor("local", address="auto")


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_ray_executor_runs_a_tiny_sweep_end_to_end(tmp_path, local_ray):
    from pyramid_bert.sweep.executors import RayExecutor

    trials = _tiny_plan()
    executor = RayExecutor(num_cpus=1)  # joins the running instance
    with ResultsStore(tmp_path / "ray.sqlite") as store:
        summary = run_sweep(trials, store, synthetic_trial, checkpoint_root=tmp_path / "ck", executor=executor,
                            progress=False)  # fmt: skip
        ray_records = {r.spec.key: r for r in store.records()}
    executor.close()
    assert local_ray.is_initialized()  # an instance it did not start is left running
    assert summary.ran == len(trials) and summary.failed == 0
    assert set(ray_records) == {t.key for t in trials}

    with ResultsStore(tmp_path / "local.sqlite") as store:
        run_sweep(trials, store, synthetic_trial, checkpoint_root=tmp_path / "ck", executor=LocalExecutor(),
                  progress=False)  # fmt: skip
        local_records = {r.spec.key: r for r in store.records()}
    for key, record in ray_records.items():
        assert record.ok and record.host and record.versions.get("python")
        assert record.result["test_metric"] == local_records[key].result["test_metric"]
        assert record.result["checkpoint"].endswith(key[:16])


def test_ray_sweep_resumes_like_a_local_one(tmp_path, local_ray):
    from pyramid_bert.sweep.executors import RayExecutor

    trials = _tiny_plan()
    with ResultsStore(tmp_path / "r.sqlite") as store:
        run_sweep(trials[:3], store, synthetic_trial, checkpoint_root=tmp_path, executor=LocalExecutor(),
                  progress=False)  # fmt: skip
        summary = run_sweep(trials, store, synthetic_trial, checkpoint_root=tmp_path,
                            executor=RayExecutor(num_cpus=1), resume=True, progress=False)  # fmt: skip
        assert summary.already_done == 3 and summary.ran == len(trials) - 3
        assert len(store) == len(trials)


def test_a_trial_whose_ray_worker_dies_is_recorded_retryable_and_resume_runs_it_again(tmp_path, local_ray):
    from pyramid_bert.sweep.executors import RayExecutor

    trials = [trial for trial in _tiny_plan() if trial.init_from is None][:2]
    victim = trials[1].key[:16]

    def dying(config):  # a local function: Ray ships it by value
        import os
        import signal

        if config["out"].endswith(victim):
            os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
        return synthetic_trial(config)

    with ResultsStore(tmp_path / "r.sqlite") as store:
        summary = run_sweep(trials, store, dying, checkpoint_root=tmp_path, executor=RayExecutor(num_cpus=1),
                            progress=False)  # fmt: skip
        assert summary.failed == summary.retryable == 1
        assert {r.spec.key[:16]: r.status for r in store.records()} == {trials[0].key[:16]: "ok", victim: "retryable"}
        summary = run_sweep(trials, store, synthetic_trial, checkpoint_root=tmp_path, executor=LocalExecutor(),
                            resume=True, progress=False)  # fmt: skip
        assert summary.ran == 1 and summary.failed == 0 and all(r.ok for r in store.records())
