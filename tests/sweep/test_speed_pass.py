"""The separate timing pass: schedules chosen on measured speed (a point near every target), every configuration
timed once for all seeds, resumable from the store, and no trial timing itself afterwards."""

from __future__ import annotations

import pytest

from pyramid_bert.sweep.request import SweepRequest, plan_sweep
from pyramid_bert.sweep.speed_pass import CHOICE_META, run_speed_pass
from pyramid_bert.sweep.speed_plan import SpeedPass, choose_schedules, measured_speedup, next_probes
from pyramid_bert.sweep.store import ResultsStore
from pyramid_bert.sweep.synthetic import SyntheticTimer


def test_probes_go_where_the_measured_to_predicted_ratio_says_each_unmet_target_lies():
    predicted = [1.2, 1.5, 2.0, 2.5, 3.0, 3.6, 4.0]
    # nothing measured: the prediction nearest each target
    assert next_probes(predicted, {}, (1.5, 3.0), 0.08) == [1, 4]
    # measured 0.8 of predicted: 1.5 is met by index 2 (measured 1.6, within 8% of 1.5), 3.0 is not (2.4): of the
    # untimed, index 5 is predicted nearest once scaled (3.6 * 0.8 = 2.88; index 6: 3.2)
    assert next_probes(predicted, {1: 1.2, 2: 1.6, 4: 2.4}, (1.5, 3.0), 0.08) == [5]
    # a measured candidate serves one target only
    assert next_probes(predicted, {2: 2.0}, (2.0, 2.05), 0.08) == [2 + 1]


def test_each_target_gets_the_nearest_measured_schedule_at_most_once():
    measured = {0: 1.3, 1: 1.95, 2: 2.1, 3: 3.4}
    assert choose_schedules(measured, (2.0, 2.05, 3.0)) == [1, 2, 3]  # 2.0 takes 1.95, so 2.05 takes 2.1
    assert choose_schedules(measured, (3.0, 3.6)) == [2, 3]  # 3.6 takes the next nearest left: 2.1
    assert choose_schedules(measured, (1.35, 2.0, 3.0, 3.6, 5.0)) == [0, 1, 2, 3]  # each once, by measured speed
    assert choose_schedules({}, (2.0,)) == []


def _default_setup(tmp_path, **changes):
    return plan_sweep(SweepRequest(preset="default", synthetic=True, out=str(tmp_path / "sweep"), **changes))


def test_the_default_pass_gives_every_column_a_measured_point_within_15_percent_of_each_target(tmp_path):
    setup = _default_setup(tmp_path)
    with ResultsStore(setup.store_path) as store:
        trials = run_speed_pass(setup.speed_groups, store, SyntheticTimer(), setup.speed_pass, progress=False)
        speeds = {key: record.result["speedup"]["median"] for key, record in store.speeds().items()}
        assert all(record.result["speedup"]["n"] >= 5 for record in store.speeds().values())
    assert len(setup.speed_groups) == 8
    for group in setup.speed_groups:
        chosen = [trial for trial in trials if (trial.variant or trial.method) == group.name]
        assert {trial.seed for trial in chosen} == {0, 1, 2}
        assert all(trial.config_key in speeds for trial in chosen)  # every trained configuration was timed
        xs = sorted({speeds[trial.config_key] for trial in chosen})
        for target in (1.5, 2.0, 3.0):
            assert any(abs(x - target) <= 0.15 * target for x in xs), (group.name, target, xs)
            assert min(xs) < target < max(xs), (group.name, target, xs)  # a measured point on each side


class _StopAfter(SyntheticTimer):
    """A synthetic timer that dies (as a killed driver would) after ``blocks`` timings."""

    def __init__(self, blocks: int) -> None:
        super().__init__()
        self.blocks = blocks

    def time(self, specs):
        if len(self.timed) == self.blocks:
            raise KeyboardInterrupt
        return super().time(specs)


def test_an_interrupted_pass_resumes_with_what_it_measured_and_chooses_as_an_uninterrupted_one(tmp_path):
    whole = _default_setup(tmp_path / "whole")
    with ResultsStore(whole.store_path) as store:
        expected = run_speed_pass(whole.speed_groups, store, SyntheticTimer(), whole.speed_pass, progress=False)
    setup = _default_setup(tmp_path / "cut")
    with ResultsStore(setup.store_path) as store:
        with pytest.raises(KeyboardInterrupt):
            run_speed_pass(setup.speed_groups, store, _StopAfter(3), setup.speed_pass, progress=False)
        kept = set(store.speeds())
    assert kept  # the blocks that finished survive
    resumed_timer = SyntheticTimer()
    with ResultsStore(setup.store_path) as store:
        resumed = run_speed_pass(setup.speed_groups, store, resumed_timer, setup.speed_pass, progress=False)
    assert not kept & {key for block in resumed_timer.timed for key in block}  # nothing timed twice
    assert [t.key for t in resumed] == [t.key for t in expected]


def test_a_resumed_sweep_trains_the_schedules_chosen_the_first_time(tmp_path):
    setup = _default_setup(tmp_path)
    with ResultsStore(setup.store_path) as store:
        first = run_speed_pass(setup.speed_groups, store, SyntheticTimer(), setup.speed_pass, progress=False)
        choice = store.get_meta(CHOICE_META)
        store._connection.execute("DELETE FROM speeds")  # even if the measurements were gone, the choice stays
        timer = SyntheticTimer()
        again = run_speed_pass(setup.speed_groups, store, timer, setup.speed_pass, progress=False)
    assert set(choice) == {group.name for group in setup.speed_groups}
    assert [t.key for t in again] == [t.key for t in first] and timer.timed == []


def test_after_the_pass_no_trial_times_itself_and_the_report_reads_the_pass(tmp_path, capsys):
    from pyramid_bert.cli import main
    from pyramid_bert.sweep import runner

    seen = []
    real_config = runner.trial_config
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "trial_config", lambda *a, **k: seen.append(real_config(*a, **k)) or seen[-1])
        assert main(["sweep", "--synthetic", "--preset", "smoke", "--out", str(tmp_path / "s"), "--no-progress"]) == 0
    assert seen and all(config["trial_options"]["measure_speed"] is False for config in seen)
    assert main(["report", str(tmp_path / "s" / "results.sqlite"), "--out", str(tmp_path / "r"), "--no-plots"]) == 0
    report = (tmp_path / "r" / "report.md").read_text()
    assert "| CS+ |" in report and "| 1st+merge |" in report
    assert "; measured near" in report and "X [" in report  # each cell's measured x with its interval


def test_a_measured_speedup_needs_every_configuration_of_its_schedule(tmp_path):
    setup = _default_setup(tmp_path)
    coreset = next(group for group in setup.speed_groups if group.name == "coreset")
    m1, k1 = coreset.configurations(0)  # m = 1 and m = k-1 share the schedule
    assert measured_speedup(coreset, 0, {m1.config_key: 2.0}) is None
    assert measured_speedup(coreset, 0, {m1.config_key: 2.0, k1.config_key: 2.2}) == pytest.approx(2.1)


def test_a_speed_pass_needs_five_repeats_and_targets_above_one():
    from pyramid_bert.errors import ConfigError

    with pytest.raises(ConfigError, match="repeats must be >= 5"):
        SpeedPass(repeats=3)
    with pytest.raises(ConfigError, match="above 1"):
        SpeedPass(targets=(0.5,))
