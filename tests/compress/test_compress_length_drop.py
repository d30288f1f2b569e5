"""``compress --length-drop``: one LengthDrop model trained from the dense model serves every candidate schedule (no
fine-tune per schedule); rows say they share it, the shipped folder runs the chosen schedule, and a bound that misses
a candidate, or a fixed schedule, stops before any training."""

from __future__ import annotations

import json

import pytest
import torch
from test_compress import load_csv_task, tiny_settings, write_task_csv

from pyramid_bert import cli, load_pyramid_model, pyramid_settings
from pyramid_bert.compress import Candidate, CompressSettings, compress
from pyramid_bert.compress.shared import plan_shared_models
from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.reschedule import set_keep_ratios
from train_fixtures import make_keyword_task, write_tiny_bert

#: One group (same method, m and options): Eq. 5 as ratios on the 2-layer tiny model, [0.5, 0.5] and [0.25, 0.25].
SCHEDULES = (Candidate(p=0.5, prune_upto=1), Candidate(p=0.25, prune_upto=1))


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A tiny base BERT, a CSV task, and one compress --length-drop 1 run killed while measuring, then resumed."""
    import pyramid_bert.compress.measure as measure
    import pyramid_bert.training.loop as loop

    root = tmp_path_factory.mktemp("compress-ld")
    model = write_tiny_bert(root / "tiny")
    csv_path = write_task_csv(root / "reviews.csv", make_keyword_task(sizes=(120, 40, 40)).splits["train"],
                              ["negative", "positive"])  # fmt: skip
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    data = load_csv_task(csv_path)
    settings = tiny_settings(model, root / "out", candidates=SCHEDULES, length_drop=1.0)
    trained, train_steps, speedup = [], loop._train_steps, measure.real_speedup

    def counted(run, *args, **kwargs):
        trained.append(run.config)
        return train_steps(run, *args, **kwargs)

    def killed_on_the_second(*args, **kwargs):
        if len(trained) == 2 and not getattr(killed_on_the_second, "done", False):
            killed_on_the_second.done = True
            raise KeyboardInterrupt
        return speedup(*args, **kwargs)

    loop._train_steps, measure.real_speedup = counted, killed_on_the_second
    try:
        with pytest.raises(KeyboardInterrupt):
            compress(settings, data, progress=False)
        result = compress(settings, data, progress=False)
    finally:
        loop._train_steps, measure.real_speedup = train_steps, speedup
        torch.set_num_threads(previous)
    return {"root": root, "model": model, "csv": csv_path, "task": data, "settings": settings, "result": result,
            "trained": trained}  # fmt: skip


def test_one_length_drop_model_is_trained_and_serves_every_schedule(shared):
    trained, rows = shared["trained"], shared["result"].rows
    assert [config.method for config in trained] == ["dense", "coreset"]  # and nothing more after the resume
    ld = trained[1]
    assert ld.length_drop == 1.0 and ld.keep_ratios == [0.25, 0.25]  # the smallest of the candidates' schedules
    assert [row["keep_ratios"] for row in rows] == [[0.5, 0.5], [0.25, 0.25]]
    assert len({row["checkpoint"] for row in rows}) == 1 and len({row["shared_model"] for row in rows}) == 1
    assert all(row["shared_by"] == 2 and row["trained_keep_ratios"] == [0.25, 0.25] for row in rows)
    assert [row["label"] for row in rows] == [f"{c.label} [LengthDrop]" for c in SCHEDULES]
    assert rows[1]["predicted"] > rows[0]["predicted"] > 1.0  # each row measured at its own schedule


def test_the_shipped_folder_runs_the_chosen_schedule_of_the_shared_model(shared):
    result = shared["result"]
    out, chosen = result.out, result.chosen_row
    assert json.loads((out / "config.json").read_text())["pyramid"]["keep_ratios"] == chosen["keep_ratios"]
    shipped = load_pyramid_model(str(out)).eval()
    reference = set_keep_ratios(load_pyramid_model(chosen["checkpoint"]), chosen["keep_ratios"]).eval()
    assert pyramid_settings(shipped) == pyramid_settings(reference)
    inputs = {"input_ids": torch.tensor([[2, 7, 9, 18, 11, 12, 3]]), "attention_mask": torch.ones(1, 7, dtype=torch.long)}
    with torch.no_grad():
        assert torch.allclose(shipped(**inputs).logits, reference(**inputs).logits, atol=1e-6)
    report = (out / "report.md").read_text()
    assert "one LengthDrop model" in report and "[LengthDrop]" in report and "`length_drop`: 1.0" in report
    assert all(f"{c.label} [LengthDrop]" in (out / "README.md").read_text() for c in SCHEDULES)


def test_a_bound_that_misses_a_candidate_or_a_fixed_schedule_stops_before_training(shared, tmp_path, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained")

    monkeypatch.setattr("pyramid_bert.training.loop.finetune", no_training)
    settings = tiny_settings(shared["model"], tmp_path / "o", candidates=SCHEDULES, length_drop=0.5)
    with pytest.raises(ConfigError, match=r"--length-drop 0.5: .* never reach candidate coreset m=1 ratio p=0.25 u=1 "
                       r".* give --length-drop 0.75 or more"):  # fmt: skip
        compress(settings, shared["task"], progress=False)
    fixed = (Candidate(lengths=(8, 4)), *SCHEDULES)
    with pytest.raises(ConfigError, match="--length-drop: candidate coreset m=1 lengths 8 4 has a fixed schedule"):
        compress(tiny_settings(shared["model"], tmp_path / "o", candidates=fixed, length_drop=1.0), shared["task"],
                 progress=False)  # fmt: skip
    assert not (tmp_path / "o.work").exists() and not (tmp_path / "o").exists()


def test_candidates_differing_beyond_their_schedule_get_one_model_each():
    candidates = (*SCHEDULES, Candidate(p=0.5, prune_upto=1, m=None), Candidate(keep_ratios=(0.7, 0.35)),
                  Candidate(p=0.5, prune_upto=1, options={"merge": True}))  # fmt: skip
    models = plan_shared_models(candidates, num_layers=2, bound=1.0)
    assert [[c.label for c in model.candidates] for model in models] == [
        [candidates[0].label, candidates[1].label, candidates[3].label], [candidates[2].label], [candidates[4].label]
    ]
    assert models[0].smallest == [0.25, 0.25] and models[0].finetune_fields()["keep_ratios"] == [0.25, 0.25]
    assert models[2].finetune_fields()["selection"].merge is True
    assert len({model.key for model in models}) == 3
    with pytest.raises(ConfigError, match="sets length_drop itself"):
        plan_shared_models((Candidate(p=0.5, prune_upto=1, options={"length_drop": 0.5}),), 2, 1.0)


def test_settings_identity_and_check(tmp_path):
    plain = CompressSettings(model="m", out="o", max_drop=1.0)
    assert "length_drop" not in plain.identity()  # work files of runs before the option stay valid
    assert CompressSettings(model="m", out="o", max_drop=1.0, length_drop=0.5).identity()["length_drop"] == 0.5
    with pytest.raises(ConfigError, match="--length-drop: must be a number"):
        CompressSettings(model="m", out="o", max_drop=1.0, length_drop=2.0).check()


def test_the_flag_reaches_the_settings_and_a_bad_value_is_one_line(shared, tmp_path, capsys):
    from pyramid_bert.commands.compress import settings_from_args

    argv = ["compress", "--model", str(shared["model"]), "--train", str(shared["csv"]), "--max-drop", "1", "--out",
            str(tmp_path / "o"), "--no-progress"]  # fmt: skip
    assert settings_from_args(cli.build_parser().parse_args([*argv, "--length-drop", "0.8"])).length_drop == 0.8
    assert settings_from_args(cli.build_parser().parse_args(argv)).length_drop == 0.0
    try:
        code = cli.main([*argv, "--length-drop", "1.5"])
    except SystemExit as exit_:
        code = exit_.code
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "--length-drop" in lines[0], lines
