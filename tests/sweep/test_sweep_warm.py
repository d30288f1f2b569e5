"""The warm protocol end to end on a tiny BERT: the dense model is fine-tuned once per seed, every pyramid
trial of that seed starts from its checkpoint, and a later run of the same seed reuses it untouched."""

from __future__ import annotations

import json

import pytest

import pyramid_bert.data
import pyramid_bert.training.loop
from pyramid_bert.sweep.executors import LocalExecutor
from pyramid_bert.sweep.finetune_trial import finetune_trial
from pyramid_bert.sweep.plan import ModelShape, TrainingBudget, plan_trials
from pyramid_bert.sweep.runner import run_sweep
from pyramid_bert.sweep.store import ResultsStore
from train_fixtures import make_keyword_task, write_tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")


def _plan(model, targets):
    budget = TrainingBudget(epochs=2, lr=1e-2, batch_size=16, timing_repeats=1, time_train_step=False)
    return plan_trials(tasks={"rt-polarity": 16}, model=str(model), shape=ModelShape(2, 32, 64),
                       methods=("coreset",), coreset_ms=(None,), speedup_targets=targets, protocol="warm",
                       budget=budget, adapt_budget=TrainingBudget(epochs=1, lr=1e-3, batch_size=16, timing_repeats=1,
                                                                   time_train_step=False))  # fmt: skip


def test_warm_trials_start_from_the_cached_dense_checkpoint(tmp_path, monkeypatch):
    task = make_keyword_task(sizes=(48, 16, 24))
    monkeypatch.setattr(pyramid_bert.data, "load_task", lambda name, **_: task)
    trained = []
    real_finetune = pyramid_bert.training.loop.finetune

    def spy(config, **kwargs):
        out = config.resolved_out()
        trained.append((config.method, config.model, (out / "run.json").is_file()))
        return real_finetune(config, **kwargs)

    monkeypatch.setattr(pyramid_bert.training.loop, "finetune", spy)
    model = write_tiny_bert(tmp_path / "tiny")
    root = tmp_path / "ck"
    first = _plan(model, (1.5,))
    dense = next(t for t in first if t.method == "dense")
    assert [t.method for t in first] == ["dense", "coreset"] and first[1].init_from == dense.key
    assert first[1].epochs == 1 and dense.epochs == 2  # the adapt budget for pyramid trials

    with ResultsStore(tmp_path / "results.sqlite") as store:
        run_sweep(first, store, finetune_trial, checkpoint_root=root, executor=LocalExecutor(1), progress=False)
        records = {r.spec.key: r for r in store.records()}
    dense_folder = root / dense.key[:16]
    assert trained == [("dense", str(model), False), ("coreset", str(dense_folder), False)]
    pyramid_run = json.loads((root / first[1].key[:16] / "run.json").read_text())
    assert pyramid_run["model_source"] == str(dense_folder)
    assert all(r.ok and r.result["protocol"] == "warm" and r.spec.protocol == "warm" for r in records.values())
    dense_run_before = (dense_folder / "run.json").read_text()

    # a second run of the same seed with one more schedule: dense is not trained again, the new trial starts
    # from the same dense checkpoint
    trained.clear()
    second = _plan(model, (1.5, 3.0))
    assert next(t for t in second if t.method == "dense").key == dense.key
    with ResultsStore(tmp_path / "results.sqlite") as store:
        summary = run_sweep(second, store, finetune_trial, checkpoint_root=root, executor=LocalExecutor(1),
                            resume=True, progress=False)  # fmt: skip
    assert summary.ran == len(second) - 2 and summary.failed == 0
    assert [method for method, _, _ in trained] == ["coreset"] * (len(second) - 2)
    assert {source for _, source, _ in trained} == {str(dense_folder)}
    assert (dense_folder / "run.json").read_text() == dense_run_before


def test_paper_protocol_keys_are_unchanged_and_warm_keys_differ():
    budget = TrainingBudget(epochs=1)
    common = dict(tasks={"rt-polarity": 64}, model="minilm-l6", shape=ModelShape(6, 384, 1536),
                  methods=("coreset", "dense"), coreset_ms=(None,), speedup_targets=(2.0,), budget=budget)  # fmt: skip
    paper = plan_trials(**common)
    warm = plan_trials(**common, protocol="warm")
    assert all(t.protocol == "paper" and t.init_from is None for t in paper)
    assert "protocol" not in paper[0].identity() and "init_from" not in paper[0].identity()
    assert {t.key for t in paper}.isdisjoint({t.key for t in warm})
    # seeds of one warm configuration are one configuration (their start checkpoints differ)
    two_seeds = plan_trials(**{**common, "methods": ("coreset",)}, protocol="warm", seeds=(0, 1))
    pyramid = [t for t in two_seeds if t.method == "coreset"]
    assert pyramid[0].init_from != pyramid[1].init_from and pyramid[0].config_key == pyramid[1].config_key
