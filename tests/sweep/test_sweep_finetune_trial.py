"""The real trial function hands each planned trial to ``run_trial`` as a valid ``FinetuneConfig``."""

from __future__ import annotations

import pyramid_bert.sweep.trial
from pyramid_bert.sweep.finetune_trial import finetune_trial
from pyramid_bert.sweep.plan import ModelShape, plan_trials
from pyramid_bert.sweep.presets import get_preset
from pyramid_bert.training.config import FinetuneConfig


def test_every_planned_method_becomes_a_finetune_config_with_the_timing_options(monkeypatch):
    calls = []

    def fake_run_trial(config, **options):
        calls.append((config, options))
        return {"dev_metric": 0.5}

    monkeypatch.setattr(pyramid_bert.sweep.trial, "run_trial", fake_run_trial)
    quick = get_preset("smoke")
    trials = plan_trials(tasks={"rt-polarity": 64}, model="minilm-l6", shape=ModelShape(6, 384, 1536),
                         coreset_ms=quick.coreset_ms, speedup_targets=quick.speedup_targets,
                         budget=quick.budget)  # fmt: skip
    for trial in trials:
        assert finetune_trial(trial.finetune_config(f"/ck/{trial.key[:16]}")) == {"dev_metric": 0.5}
    assert len(calls) == len(trials)
    for trial, (config, options) in zip(trials, calls, strict=True):
        assert isinstance(config, FinetuneConfig)
        assert (config.task, config.method, config.seed) == (trial.task, trial.method, trial.seed)
        assert config.lengths == (list(trial.lengths) if trial.lengths else None)
        assert config.pool_windows == (list(trial.pool_windows) if trial.pool_windows else None)
        assert config.max_train_examples == quick.budget.max_train_examples
        assert config.eval_batch_size == quick.budget.eval_batch_size
        assert config.out == f"/ck/{trial.key[:16]}"
        assert options == {"timing_repeats": quick.budget.timing_repeats,
                           "time_train_step": quick.budget.time_train_step}  # fmt: skip
    assert {c.selection.m for c, _ in calls if c.method == "coreset"} == set(quick.coreset_ms)


def test_threads_set_torch_threads_and_are_not_passed_to_run_trial(monkeypatch):
    import torch

    seen = {}

    def fake_run_trial(config, **options):
        seen.update(options=options, threads=torch.get_num_threads())
        return {}

    monkeypatch.setattr(pyramid_bert.sweep.trial, "run_trial", fake_run_trial)
    before = torch.get_num_threads()
    trial = plan_trials(tasks={"rt-polarity": 64}, model="minilm-l6", shape=ModelShape(6, 384, 1536),
                        methods=("dense",))[0]  # fmt: skip
    try:
        finetune_trial(trial.finetune_config("/ck", threads=1))
    finally:
        torch.set_num_threads(before)
    assert seen["threads"] == 1
    assert "threads" not in seen["options"]
    assert trial.finetune_config("/ck", threads=1)["trial_options"]["threads"] == 1
    assert "threads" not in trial.finetune_config("/ck")["trial_options"]


def write_reviews(path, rows=40):
    import csv

    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review", "stars"])
        writer.writerows((f"{'good' if i % 2 else 'bad'} film number {i}", "fresh" if i % 2 else "rotten")
                         for i in range(rows))  # fmt: skip
    return path


def test_a_trial_on_the_users_files_reads_them_at_the_planned_n_and_refuses_changed_files(monkeypatch, tmp_path):
    import pytest

    from pyramid_bert.data.user_task import DataFiles, files_fingerprint
    from pyramid_bert.errors import DataError
    from pyramid_bert.sweep.spec import with_data

    seen = {}
    monkeypatch.setattr(pyramid_bert.sweep.trial, "run_trial", lambda config, **options: seen.update(options) or {})
    path = write_reviews(tmp_path / "reviews.csv")
    files = DataFiles(str(path), text_columns=("review",), label_column="stars")
    data = {**files.to_dict(), "max_length": 12, "sha256": files_fingerprint(files)}
    dense = plan_trials(tasks={"reviews.csv": 12}, model="minilm-l6", shape=ModelShape(6, 384, 1536),
                        methods=("dense",))[0]  # fmt: skip
    (trial,) = with_data([dense], data)
    finetune_trial(trial.finetune_config("/ck"))
    task = seen["task_data"]
    assert task.name == "reviews.csv" and task.max_length == 12 and task.label_names == ["fresh", "rotten"]
    assert sum(len(split.labels) for split in task.splits.values()) == 40
    write_reviews(path, rows=41)
    with pytest.raises(DataError, match="changed"):
        finetune_trial(trial.finetune_config("/ck"))
