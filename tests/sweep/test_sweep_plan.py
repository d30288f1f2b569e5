"""Planning: Table 9 schedules for any N and depth, Appendix C truncations and pooling, trial counts."""

from __future__ import annotations

import json

import pytest

from pyramid_bert import schedule
from pyramid_bert.errors import ConfigError, DataError
from pyramid_bert.sweep.plan import (
    PAPER_CORESET_MS,
    MethodVariant,
    ModelShape,
    TrainingBudget,
    grid_schedules,
    input_truncations,
    method_schedules,
    nearest_schedules,
    plan_trials,
    pool_schedules,
)
from pyramid_bert.sweep.presets import PRESETS, get_preset
from pyramid_bert.sweep.request import model_shape
from pyramid_bert.sweep.spec import SWEEP_ACCEPTED_METHODS, SWEEP_METHODS

BERT_BASE = ModelShape(12, 768, 3072)
MINILM = ModelShape(6, 384, 1536)


def test_truncations_are_those_of_appendix_c():
    assert input_truncations(256) == list(range(240, 15, -16))
    assert input_truncations(128) == [112, 96, 80, 64, 48, 32, 16, 8]
    assert input_truncations(64) == [48, 32, 16, 8, 4]
    assert all(k < 50 for k in input_truncations(50))


def test_grid_for_bert_base_at_128_is_table_9_without_its_repeated_row(tmp_path):
    schedules = grid_schedules(128, BERT_BASE)
    assert len(schedules) == 29  # 30 rows, (3, 0.25) twice
    by_label = {s.label: s for s in schedules}
    assert by_label["p=0.25 u=3"].lengths == (80, 50) + (32,) * 10
    assert by_label["p=0.5 u=11"].lengths == (120, 112, 105, 99, 93, 87, 82, 77, 72, 68, 64, 64)
    assert all(s.predicted_speedup > 1 for s in schedules)


def test_grid_applies_to_a_six_layer_model():
    schedules = grid_schedules(64, MINILM)
    assert all(len(s.lengths) == 6 for s in schedules)
    assert len({s.lengths for s in schedules}) == len(schedules)
    assert {s.lengths for s in schedules} >= {tuple(schedule.sequence_lengths(64, 6, 0.25, 3))}


def test_pool_schedules_cover_windows_2_to_6_at_every_layer():
    schedules = pool_schedules(64, MINILM)
    assert len(schedules) == 5 * 6
    first = schedules[0]
    assert first.pool_windows == (2, 1, 1, 1, 1, 1) and first.lengths is None
    assert {max(s.pool_windows) for s in schedules} == {2, 3, 4, 5, 6}


def test_nearest_schedules_pick_distinct_schedules_sorted_by_speedup():
    schedules = grid_schedules(64, MINILM)
    chosen = nearest_schedules(schedules, (3.5, 1.5, 1.5))
    assert len(chosen) == 3 == len(set(chosen))
    assert [s.predicted_speedup for s in chosen] == sorted(s.predicted_speedup for s in chosen)
    assert abs(chosen[-1].predicted_speedup - 3.5) < 0.2


def test_full_plan_counts_every_method_schedule_m_and_seed():
    trials = plan_trials(tasks={"rt-polarity": 64}, model="minilm-l6", shape=MINILM, seeds=(0, 1))
    grid = len(grid_schedules(64, MINILM))
    per_seed = grid * len(PAPER_CORESET_MS) + 3 * grid + len(input_truncations(64)) + 30 + 1
    assert len(trials) == 2 * per_seed
    assert len({t.key for t in trials}) == len(trials)
    assert {t.method for t in trials} == set(SWEEP_METHODS)
    assert trials[0].seed == 0 and trials[-1].seed == 1  # seed-major
    coreset_ms = {t.m for t in trials if t.method == "coreset"}
    assert coreset_ms == {1, 0.1, 0.2, 0.3, 0.4, None}


def test_energy_is_swept_when_named_and_not_by_default():
    """The default methods stay the paper's; energy, named, gets the grid's schedules like the other methods."""
    assert "energy" not in SWEEP_METHODS and "energy" in SWEEP_ACCEPTED_METHODS
    trials = plan_trials(tasks={"rt-polarity": 64}, model="minilm-l6", shape=MINILM, methods=("energy", "dense"))
    assert len([t for t in trials if t.method == "energy"]) == len(grid_schedules(64, MINILM))
    variant = MethodVariant("PiToMe", "energy", (("duplicity_attention", True),))
    trials = plan_trials(tasks={"rt-polarity": 64}, model="minilm-l6", shape=MINILM, methods=("dense",),
                         method_variants=(variant,))  # fmt: skip
    assert {t.variant for t in trials if t.method == "energy"} == {"PiToMe"}


def test_smoke_plan_gives_every_column_one_schedule_per_measured_target_and_the_budget():
    from pyramid_bert.sweep.request import SweepRequest, plan_sweep

    quick = get_preset("smoke")
    trials = plan_sweep(SweepRequest(preset="smoke", synthetic=True)).trials  # provisional: before the timing pass
    per_column = {c: sum((t.variant or t.method) == c for t in trials) for c in (*SWEEP_METHODS, "CS+", "1st+merge")}
    n_targets = len(quick.speed_pass.targets)
    assert per_column["coreset"] == n_targets * len(quick.coreset_ms)
    assert per_column["dense"] == 1
    assert all(per_column[c] == n_targets for c in ("attention", "first_k", "random", "input_first_k", "average_pool",
                                                    "CS+", "1st+merge"))  # fmt: skip
    assert all(t.max_train_examples == quick.budget.max_train_examples for t in trials)


def test_finetune_config_carries_the_schedule_of_each_method():
    trials = plan_trials(tasks={"rt-polarity": 64}, model="minilm-l6", shape=MINILM,
                         speedup_targets=(2.0,), budget=TrainingBudget(epochs=1))  # fmt: skip
    configs = {t.method: t.finetune_config("/out") for t in trials}
    assert configs["average_pool"]["pool_windows"] and configs["average_pool"]["lengths"] is None
    assert len(set(configs["input_first_k"]["lengths"])) == 1
    assert configs["dense"]["lengths"] is None and configs["dense"]["pool_windows"] is None
    assert configs["coreset"]["out"] == "/out" and configs["coreset"]["epochs"] == 1
    assert configs["coreset"]["trial_options"] == {"timing_repeats": 7, "time_train_step": True}


def test_bad_method_preset_and_empty_inputs_are_refused_with_the_valid_names():
    with pytest.raises(ConfigError, match="coreset, attention"):
        plan_trials(tasks={"t": 64}, model="m", shape=MINILM, methods=("fast",))
    with pytest.raises(ConfigError, match="tasks"):
        plan_trials(tasks={}, model="m", shape=MINILM)
    with pytest.raises(ConfigError, match="default, smoke, selection, accuracy, accuracy-trec, paper"):
        get_preset("fast")
    assert set(PRESETS) == {"default", "smoke", "selection", "accuracy", "accuracy-trec", "paper"}
    with pytest.raises(ConfigError, match="method must be one of"):
        method_schedules("magic", 64, MINILM)


def test_m_k_minus_1_spellings_are_one_trial_identity():
    from pyramid_bert.spec import parse_m
    from pyramid_bert.sweep.spec import TrialSpec

    assert parse_m("k-1") is None and parse_m("none") is None and parse_m("0.2") == 0.2
    spec = TrialSpec(task="rt-polarity", model="minilm-l6", method="coreset", schedule="p=0.25 u=3",
                     lengths=(40, 25, 16, 16, 16, 16), m=None, seed=0)  # fmt: skip
    assert TrialSpec.from_dict({**spec.to_dict(), "m": "k-1"}).key == spec.key


def test_default_preset_plans_every_column_and_its_estimate_fits_the_hour():
    from pyramid_bert.sweep.request import SweepRequest, plan_sweep

    preset = get_preset("default")
    setup = plan_sweep(SweepRequest(preset="default", synthetic=True))
    trials = setup.trials  # the dense trials and the provisional choice (the timing pass chooses on measured speed)
    assert preset.seeds >= 3 and set(preset.methods) == set(SWEEP_METHODS) and preset.protocol == "warm"
    assert {group.name for group in setup.speed_groups} == {*SWEEP_METHODS[:-1], "CS+", "1st+merge"}
    assert preset.speed_pass.repeats >= 5 and preset.speed_pass.targets == (1.4, 2.0, 3.0, 3.6)
    dense = {t.seed: t.key for t in trials if t.method == "dense"}
    assert len(dense) == preset.seeds
    assert all(t.init_from == dense[t.seed] for t in trials if t.method != "dense")
    cs_plus = {t.options for t in trials if t.variant == "CS+"}
    assert cs_plus == {(("distance", "cosine"), ("duplicity_attention", True), ("merge", True))}
    assert {t.options for t in trials if t.variant == "1st+merge"} == {(("merge", True),)}
    assert all(t.max_eval_examples is None for t in trials)  # whole dev and test splits
    assert setup.estimated_minutes <= 55  # plus data fetch and the report


def test_trials_moved_onto_data_files_get_new_keys_and_warm_trials_follow_their_dense_trial():
    from pyramid_bert.sweep.spec import TrialSpec, with_data

    trials = plan_trials(tasks={"reviews.csv": 40}, model="minilm-l6", shape=ModelShape(6, 384, 1536),
                         methods=("dense", "coreset"), seeds=range(2), protocol="warm")  # fmt: skip
    data = {"train": "/d/reviews.csv", "dev": None, "test": None, "text_columns": ["text"], "label_column": "label",
            "max_length": 40, "sha256": "ab"}  # fmt: skip
    moved = with_data(trials, data)
    assert len(moved) == len(trials)
    assert not {t.key for t in moved} & {t.key for t in trials}
    dense_keys = {t.seed: t.key for t in moved if t.method == "dense"}
    assert all(t.init_from == dense_keys[t.seed] for t in moved if t.method != "dense")
    assert all(dict(t.data)["text_columns"] == ("text",) for t in moved)
    again = TrialSpec.from_dict(json.loads(json.dumps(moved[1].to_dict())))
    assert again.key == moved[1].key and again.finetune_config("/ck")["trial_options"]["data"]["max_length"] == 40
    assert "data" not in trials[1].identity()  # trials without files keep the keys they always had


@pytest.mark.parametrize(
    ("config", "shape"),
    [
        ({"model_type": "bert", "num_hidden_layers": 4, "hidden_size": 32, "intermediate_size": 64}, (4, 32, 64)),
        ({"model_type": "distilbert", "n_layers": 3, "dim": 48, "hidden_dim": 96}, (3, 48, 96)),
    ],
)
def test_a_sweep_reads_the_shape_of_each_family_from_its_own_config_names(tmp_path, config, shape):
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert model_shape(str(tmp_path), synthetic=False) == shape


def test_a_config_without_the_sizes_is_one_clear_error_naming_the_flag(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "num_hidden_layers": 4}))
    with pytest.raises(DataError, match="--model: .* lacks 'hidden_size'"):
        model_shape(str(tmp_path), synthetic=False)
