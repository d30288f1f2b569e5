"""LengthDrop fine-tuning (``length_drop``): each step runs the stored schedule and one seeded random draw; the run is
deterministic, resumes to the same weights, saves its stored schedule; the option is validated and travels through
the config, the command line, sweep trials and variants, and compress candidates."""

from __future__ import annotations

import json

import pytest
import torch
from test_train import assert_same_weights, tiny_config, weights

from pyramid_bert import cli, length_drop
from pyramid_bert.compress import Candidate
from pyramid_bert.errors import ConfigError
from pyramid_bert.sweep.plan import TrainingBudget
from pyramid_bert.sweep.spec import OPTION_FIELDS, TrialSpec
from pyramid_bert.sweep.variants import Variant
from pyramid_bert.training.config import FinetuneConfig, validate_config
from pyramid_bert.training.loop import finetune

pytestmark = pytest.mark.usefixtures("one_thread")

STORED = [0.5, 0.25]


def ld_config(tiny_model, out, **overrides) -> FinetuneConfig:
    values = dict(lengths=None, keep_ratios=STORED, epochs=1, lr=1e-2, length_drop=0.6)
    return tiny_config(tiny_model, out, **{**values, **overrides})


def test_each_step_runs_the_stored_schedule_then_the_seeded_draw_and_ends_on_the_stored_one(tiny_model, task, tmp_path,
                                                                                            monkeypatch):  # fmt: skip
    import pyramid_bert.training.loop as loop

    seen, original = [], loop.set_keep_ratios

    def spy(model, ratios):
        seen.append(list(ratios))
        return original(model, ratios)

    monkeypatch.setattr(loop, "set_keep_ratios", spy)
    out = finetune(ld_config(tiny_model, tmp_path / "run", seed=5), task_data=task, progress=False)
    info = json.loads((out / "run.json").read_text())
    steps = info["train"]["steps"]
    assert len(seen) == 3 * steps  # per step: the stored schedule, the draw, back to the stored one
    for step in range(steps):
        smallest, draw = length_drop.sandwich(STORED, 0.6, seed=5, step=step)
        assert seen[3 * step : 3 * step + 3] == [smallest, draw, STORED]
        assert draw != STORED and length_drop.in_draws(draw, STORED, 0.6)
    assert info["pyramid"]["keep_ratios"] == STORED  # the saved model and its dev score use the stored schedule
    assert info["train"]["length_drop"]["forwards_per_step"] == 2 and info["config"]["length_drop"] == 0.6
    assert json.loads((out / "config.json").read_text())["pyramid"]["keep_ratios"] == STORED


def test_a_length_drop_run_is_deterministic_differs_from_a_plain_one_and_resumes_to_the_same_weights(
    tiny_model, task, tmp_path
):
    straight = finetune(ld_config(tiny_model, tmp_path / "a", epochs=2), task_data=task, progress=False)
    plain = finetune(ld_config(tiny_model, tmp_path / "plain", epochs=2, length_drop=0.0), task_data=task,
                     progress=False)  # fmt: skip
    assert not torch.equal(weights(straight)["classifier.weight"], weights(plain)["classifier.weight"])
    config = ld_config(tiny_model, tmp_path / "resumed", epochs=2)

    def interrupt(step: int) -> None:
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(config, task_data=task, progress=False, save_every_steps=3, step_callback=interrupt)
    resumed = finetune(config, task_data=task, progress=False)
    assert json.loads((resumed / "run.json").read_text())["train"]["resumed_at_steps"] == [6]
    assert_same_weights(weights(straight), weights(resumed))


def test_length_drop_with_distillation_counts_the_teachers_forward(tiny_model, task, tmp_path):
    teacher = finetune(tiny_config(tiny_model, tmp_path / "dense", method="dense", lengths=None, epochs=1),
                       task_data=task, progress=False)  # fmt: skip
    out = finetune(ld_config(tiny_model, tmp_path / "kd", model=str(teacher), distill_weight=0.5), task_data=task,
                   progress=False)  # fmt: skip
    assert json.loads((out / "run.json").read_text())["train"]["length_drop"]["forwards_per_step"] == 3


BAD = {
    "above 1": (dict(length_drop=1.5), r"--length-drop: must be a number in \[0, 1\]"),
    "not a number": (dict(length_drop="0.5"), r"--length-drop: must be a number"),
    "fixed lengths": (dict(keep_ratios=None, lengths=[8, 4]), "--length-drop: trains a keep-ratio schedule.*fixed"),
    "dense": (dict(keep_ratios=None, method="dense"), "--length-drop: .*--method dense"),
    "input_first_k": (dict(keep_ratios=None, method="input_first_k", lengths=[8, 8]), "--length-drop: .*input_first_k"),
}


@pytest.mark.parametrize(("overrides", "message"), list(BAD.values()), ids=list(BAD))
def test_bad_length_drop_names_the_flag(tiny_model, tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(ld_config(tiny_model, tmp_path / "x", **overrides))


def test_eq5_as_ratios_takes_length_drop(tiny_model, tmp_path):
    validate_config(ld_config(tiny_model, tmp_path / "x", keep_ratios=None, schedule="ratio", p=0.25, prune_upto=2))


def test_the_command_line_flag_reaches_the_config_and_a_bad_one_is_one_line(tiny_model, tmp_path, capsys):
    from pyramid_bert.commands.finetune import config_from_args

    parser = cli.build_parser()
    args = parser.parse_args(["finetune", "--task", "rt-polarity", "--out", "x", "--keep-ratios", "0.5,0.25",
                              "--length-drop", "0.3"])  # fmt: skip
    assert config_from_args(args).length_drop == 0.3
    assert config_from_args(parser.parse_args(["finetune", "--task", "rt-polarity", "--out", "x"])).length_drop == 0.0
    for argv, needle in ((["--keep-ratios", "0.5,0.25", "--length-drop", "2"], "--length-drop"),
                         (["--lengths", "8,4", "--length-drop", "0.5"], "--length-drop: trains a keep-ratio")):  # fmt: skip
        try:
            code = cli.main(["finetune", "--task", "rt-polarity", "--model", str(tiny_model), "--out",
                             str(tmp_path / "o"), *argv])  # fmt: skip
        except SystemExit as exit_:
            code = exit_.code
        lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert code == 2 and len(lines) == 1 and needle in lines[-1], lines
    assert not (tmp_path / "o").exists()


def test_length_drop_round_trips_through_config_trial_variant_and_candidate(tmp_path):
    config = FinetuneConfig(task="rt-polarity", keep_ratios=STORED, length_drop=0.4)
    assert FinetuneConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert FinetuneConfig(task="rt-polarity", keep_ratios=STORED).same_as_saved({"task": "rt-polarity",
                                                                               "keep_ratios": STORED})  # fmt: skip
    assert "length_drop" in OPTION_FIELDS
    trial = TrialSpec(task="rt-polarity", model="minilm-l6", method="coreset", schedule="r", keep_ratios=(0.5, 0.25),
                      options={"length_drop": 0.4})  # fmt: skip
    assert TrialSpec.from_dict(json.loads(json.dumps(trial.to_dict()))) == trial
    assert trial.key != TrialSpec(**{**trial.__dict__, "options": None}).key
    run = {k: v for k, v in trial.finetune_config(str(tmp_path / "t")).items() if k != "trial_options"}
    assert FinetuneConfig.from_dict(run).length_drop == 0.4
    variant = Variant("CS LD", "coreset", "r", keep_ratios=(0.5, 0.25), options=(("length_drop", 0.4),))
    dense = TrialSpec(task="rt-polarity", model="minilm-l6", method="dense", schedule="dense")
    assert dict(variant.spec(dense, TrainingBudget()).options) == {"length_drop": 0.4}
    candidate = Candidate(keep_ratios=(0.5, 0.25), options={"length_drop": 0.4})
    assert Candidate.from_dict(candidate.to_dict()) == candidate and "length_drop=0.4" in candidate.label
    assert FinetuneConfig(task="x", **candidate.finetune_fields()).length_drop == 0.4
