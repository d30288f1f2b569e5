"""``pyramid-bert ablate``: plans, the shared resumable store, tables, on the synthetic trial function; random
configurations for Figure 6; the inference-only trial on a tiny model."""

from __future__ import annotations

import csv
import sqlite3

import pytest

from pyramid_bert import cli
from pyramid_bert.analysis.random_schedules import eq5_schedules, is_non_increasing, random_schedules
from pyramid_bert.sweep.ablations import ONLY_INFER_EPOCHS, AblationSettings, dense_trials, plan_ablation
from pyramid_bert.sweep.plan import ModelShape
from train_fixtures import make_keyword_task, write_tiny_bert

SHAPE = ModelShape(6, 384, 1536)
SETTINGS = AblationSettings(task="rt-polarity", n=64, model="minilm-l6", shape=SHAPE)


@pytest.mark.parametrize("seed", [0, 1, 7])
@pytest.mark.parametrize("low", [1, 6])
def test_random_configurations_are_non_increasing_distinct_and_within_range(seed, low):
    drawn = random_schedules(64, 6, 30, seed=seed, low=low)
    assert len(drawn) == 30 and len(set(drawn)) == 30
    for lengths in drawn:
        assert len(lengths) == 6 and is_non_increasing(lengths)
        assert all(low <= k <= 64 for k in lengths) and lengths != (64,) * 6
    assert drawn == random_schedules(64, 6, 30, seed=seed, low=low)  # seeded
    assert drawn != random_schedules(64, 6, 30, seed=seed + 100, low=low)


def test_is_non_increasing_rejects_an_increase():
    assert is_non_increasing([5, 5, 3]) and not is_non_increasing([5, 6, 3])


def test_eq5_configurations_are_spread_over_the_grid_and_capped_by_it():
    picked = eq5_schedules(64, SHAPE, 8)
    speedups = [s.predicted_speedup for s in picked]
    every = eq5_schedules(64, SHAPE, 1000)
    assert len(picked) == 8 and speedups == sorted(speedups)
    assert picked[0] == every[0] and picked[-1] == every[-1]  # the extremes of the grid are included
    assert all(is_non_increasing(s.lengths) for s in every)


def test_plans_share_the_dense_trial_per_seed_and_compare_what_their_table_compares():
    denses = {t.seed: t.key for t in dense_trials(SETTINGS)}
    assert sorted(denses) == [0, 1, 2]
    m_rows = plan_ablation("m", SETTINGS)
    assert {r.variant for r in m_rows} == {"1", "ceil(0.5k)", "k-1"} and len(m_rows) == 3 * 4 * 3
    assert {r.trial.m for r in m_rows} == {1, 0.5, None}
    assert all(r.trial.init_from == denses[r.trial.seed] and r.trial.protocol == "warm" for r in m_rows)
    infer = plan_ablation("only-infer", SETTINGS)
    only = [r for r in infer if r.variant == "inference only"]
    assert len(only) == 12 and all(r.trial.epochs == ONLY_INFER_EPOCHS for r in only)
    assert all(r.trial.epochs > 0 for r in infer if r.variant != "inference only")
    position = plan_ablation("position", SETTINGS)
    assert {r.trial.position for r in position} == {"middle", "end"}
    # Table 5's own schedules; the adapted m = 1, middle trials of Tables 6 and 7 are one and the same
    assert {r.trial.lengths[0] for r in m_rows} == {9, 28, 42, 50}
    shared = {r.trial.key for r in infer if r.variant != "inference only"}
    assert shared == {r.trial.key for r in position if r.trial.position == "middle"}
    schedules = plan_ablation("schedules", AblationSettings(**{**SETTINGS.__dict__, "seeds": (0,)}), configs=5)
    assert [r.variant for r in schedules].count("Eq. 5") == 5 and len(schedules) == 4 * 5
    assert all(is_non_increasing(r.trial.lengths) for r in schedules)


def _rows(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def _ablate(name, out, *extra):
    return cli.main(["ablate", name, "--synthetic", "--out", str(out), "--workers", "1", "--no-progress", *extra])


@pytest.mark.parametrize(("name", "variants", "cells"), [
    ("m", {"1", "ceil(0.5k)", "k-1"}, 12), ("only-infer", {"inference only", "fine-tuning + inference"}, 8),
    ("position", {"middle", "end"}, 8),
    ("schedules", {"Eq. 5", "random #1", "random #2", "random #3"}, 16),
])  # fmt: skip
def test_each_ablation_runs_on_the_synthetic_trial_function_and_writes_its_table(tmp_path, name, variants, cells):
    extra = ["--configs", "4"] if name == "schedules" else []
    assert _ablate(name, tmp_path, *extra) == 0
    rows = _rows(tmp_path / "report" / f"{name}.csv")
    assert len(rows) == cells and {r["variant"] for r in rows} == variants
    seeds = 1 if name == "schedules" else 3
    assert all(int(r["seeds"]) == seeds and r["test_mean"] != "" and r["speedup_padded"] != "" for r in rows)
    if seeds == 3:
        assert all(float(r["test_low"]) <= float(r["test_mean"]) <= float(r["test_high"]) for r in rows)
    section = (tmp_path / "report" / f"{name}.md").read_text()
    assert (tmp_path / "report" / f"{name}.png").stat().st_size > 0
    assert ("Linear fits" in section) == (name == "schedules")
    assert f"Re-run: `pyramid-bert ablate {name} --synthetic --out {tmp_path}" in section  # as typed, with its flags


def test_ablations_share_one_store_resume_and_never_run_a_trial_twice(tmp_path, capsys):
    assert _ablate("m", tmp_path) == 0
    count = sqlite3.connect(tmp_path / "results.sqlite").execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    assert count == 3 + 36  # three dense trials and 3 m x 4 schedules x 3 seeds
    capsys.readouterr()
    assert _ablate("m", tmp_path) == 0
    assert "0 run (0 failed), 39 resumed" in capsys.readouterr().err
    assert _ablate("only-infer", tmp_path) == 0  # the dense trials are reused
    assert "24 run (0 failed), 3 resumed" in capsys.readouterr().err
    assert _ablate("position", tmp_path) == 0  # only the "end" trials are new
    count = sqlite3.connect(tmp_path / "results.sqlite").execute("SELECT COUNT(*) FROM trials").fetchone()[0]
    assert count == 39 + 24 + 12
    assert "12 run (0 failed), 15 resumed" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "needle"), [
    (["ablate", "nothing"], "ablation"), (["ablate", "m", "--seeds", "0"], "--seeds"),
    (["ablate", "schedules", "--configs", "0"], "--configs"), (["ablate", "m", "--workers", "0"], "--workers"),
    (["ablate", "m", "--task", "nope"], "--task"), (["ablate", "m", "--max-eval-examples", "0"], "--max-eval-examples"),
])  # fmt: skip
def test_ablate_bad_input_is_one_line_naming_the_flag(argv, needle, tmp_path, capsys):
    try:
        code = cli.main([*argv, "--synthetic", "--out", str(tmp_path), "--dry-run"])
    except SystemExit as exit_:  # argparse's own checks (types of numeric flags) exit from parse_args
        code = exit_.code
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1 and needle in err[0]


def test_inference_only_trial_scores_the_dense_checkpoint_with_selection_and_trains_nothing(tmp_path, monkeypatch):
    import torch

    from pyramid_bert.measure.evaluate import evaluate_checkpoint
    from pyramid_bert.sweep.ablation_trial import ablation_trial
    from pyramid_bert.training.config import FinetuneConfig

    torch.set_num_threads(1)
    task = make_keyword_task(sizes=(32, 12, 12))
    monkeypatch.setattr("pyramid_bert.data.load_task", lambda *args, **kwargs: task)
    model = write_tiny_bert(tmp_path / "tiny", num_layers=2)
    config = FinetuneConfig(task="rt-polarity", model=str(model), method="dense", epochs=0.25, batch_size=16,
                            out=str(tmp_path / "dense"))  # fmt: skip
    from pyramid_bert.training.loop import finetune

    dense = finetune(config, task_data=task, progress=False, evaluate_dev=False)
    before = sorted(p.name for p in dense.iterdir())
    job = {"task": "rt-polarity", "model": str(dense), "method": "coreset", "lengths": [6, 3], "m": 1,
           "position": "middle", "epochs": 0.0, "seed": 0, "max_eval_examples": None, "eval_batch_size": 8,
           "trial_options": {"measure_speed": False, "protocol": "warm"}}  # fmt: skip
    result = ablation_trial(job)
    expected = evaluate_checkpoint(dense, split="test", measure_speed=False, write_json=False,
                                   only_infer={"method": "coreset", "lengths": [6, 3], "m": 1})  # fmt: skip
    assert result["test_metric"] == expected.metric and result["train_seconds"] == 0.0
    assert result["only_infer"] is True and result["lengths"] == [6, 3]
    assert sorted(p.name for p in dense.iterdir()) == before  # the dense checkpoint is left as it was


def test_ablate_and_sweep_run_on_the_users_data_file(tmp_path, capsys):
    from test_sweep_finetune_trial import write_reviews

    model = write_tiny_bert(tmp_path / "tiny", num_layers=2, num_labels=2)
    path = write_reviews(tmp_path / "reviews.csv")
    files = ["--train", str(path), "--text-column", "review", "--label-column", "stars", "--max-length", "16"]
    out = tmp_path / "ablate"
    assert cli.main(["ablate", "m", "--model", str(model), *files, "--synthetic", "--seeds", "2", "--out", str(out),
                     "--workers", "1", "--no-progress"]) == 0  # fmt: skip
    tasks = sqlite3.connect(out / "results.sqlite").execute("SELECT DISTINCT task FROM trials").fetchall()
    assert tasks == [("reviews.csv",)]
    assert "task reviews.csv" in (out / "report" / "m.md").read_text()
    sweep = tmp_path / "sweep"
    assert cli.main(["sweep", "--preset", "smoke", "--model", str(model), *files, "--synthetic", "--out", str(sweep),
                     "--workers", "1", "--no-progress"]) == 0  # fmt: skip
    meta = sqlite3.connect(sweep / "results.sqlite").execute("SELECT DISTINCT task FROM trials").fetchall()
    assert meta == [("reviews.csv",)]
    capsys.readouterr()
    assert cli.main(["sweep", "--task", "trec", *files, "--synthetic", "--out", str(tmp_path / "x")]) == 2
    assert "--task / --train" in capsys.readouterr().err
