"""The timing harness: interleaved rounds, paired speedups, > 1 for a cheaper callable, ~1 for identical ones."""

from __future__ import annotations

import time

import pytest

from pyramid_bert.errors import ConfigError
from pyramid_bert.measure import timing
from pyramid_bert.measure.timing import SpeedupStats, TimingStats, speedup_stats, time_interleaved


class FakeClock:
    """perf_counter stand-in: each callable advances it by its own cost; calls are logged."""

    def __init__(self) -> None:
        self.now = 0.0
        self.calls: list[str] = []

    def __call__(self) -> float:
        return self.now

    def work(self, name: str, seconds: float):
        def run() -> None:
            self.calls.append(name)
            self.now += seconds

        return run


def test_repeats_are_interleaved_round_robin_after_warmup(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(timing.time, "perf_counter", clock)
    result = time_interleaved({"a": clock.work("a", 2.0), "b": clock.work("b", 0.5)}, warmup=1, repeats=4)
    assert clock.calls == ["a", "b"] + ["a", "b", "b", "a", "a", "b", "b", "a"]
    assert result["a"].samples == [2.0] * 4 and result["b"].samples == [0.5] * 4
    assert speedup_stats(result["a"], result["b"]) == SpeedupStats(4.0, 4.0, 4.0)


def test_speedup_uses_paired_ratios():
    base = TimingStats([1.0, 2.0, 4.0])
    other = TimingStats([0.5, 2.0, 1.0])
    stats = speedup_stats(base, other)  # ratios 2, 1, 4
    assert stats.median == pytest.approx(2.0)
    assert stats.q25 == pytest.approx(1.5) and stats.q75 == pytest.approx(3.0)


def test_timing_stats_summaries():
    stats = TimingStats([3.0, 1.0, 2.0, 4.0])
    assert stats.median == pytest.approx(2.5)
    assert stats.q25 == pytest.approx(1.75) and stats.q75 == pytest.approx(3.25)
    assert stats.to_dict()["samples"] == [3.0, 1.0, 2.0, 4.0]


def test_real_clock_reports_speedup_above_one_for_a_cheaper_callable_and_about_one_for_identical_ones():
    # Sleeps, not computation: their length barely depends on how busy the shared machine is.
    result = time_interleaved(
        {"slow": lambda: time.sleep(0.03), "fast": lambda: time.sleep(0.003), "slow_twin": lambda: time.sleep(0.03)},
        warmup=1, repeats=5,
    )  # fmt: skip
    assert speedup_stats(result["slow"], result["fast"]).median > 1.5
    assert 0.5 < speedup_stats(result["slow"], result["slow_twin"]).median < 2.0


def test_bad_arguments_are_refused():
    with pytest.raises(ConfigError, match="repeats"):
        time_interleaved({"a": lambda: None}, repeats=0)
    with pytest.raises(ConfigError, match="at least one"):
        time_interleaved({})
    with pytest.raises(ConfigError, match="paired samples"):
        speedup_stats(TimingStats([1.0]), TimingStats([1.0, 2.0]))


def test_ratio_range_is_the_median_and_the_extremes_of_the_paired_ratios_with_their_coverage():
    from pyramid_bert.measure.timing import ratio_range

    base = TimingStats([2.0, 3.0, 1.0, 4.0, 2.0, 3.0])
    other = TimingStats([1.0, 1.0, 1.0, 1.0, 2.0, 2.0])  # ratios 2, 3, 1, 4, 1, 1.5
    spread = ratio_range(base, other)
    assert spread.ratios == (2.0, 3.0, 1.0, 4.0, 1.0, 1.5)
    assert (spread.median, spread.low, spread.high) == (1.75, 1.0, 4.0)
    assert spread.coverage == pytest.approx(1 - 1 / 32)  # 96.9% for 6 ratios; 93.75% for 5
    assert ratio_range(TimingStats([1.0] * 5), TimingStats([1.0] * 5)).coverage == pytest.approx(0.9375)
    with pytest.raises(ConfigError, match="same, non-zero number"):
        ratio_range(TimingStats([1.0]), TimingStats([1.0, 2.0]))


def test_several_pyramid_models_are_timed_against_one_dense_run_per_round(monkeypatch):
    import torch

    from pyramid_bert import pyramidize
    from pyramid_bert.measure import speed
    from tiny_models import batch, tiny_bert

    input_ids, attention_mask = batch(batch_size=6, tokens=20)
    encodings = {"input_ids": input_ids, "attention_mask": attention_mask}
    dense = tiny_bert()
    pyramids = {"half": pyramidize(tiny_bert(), [10, 10, 10], method="first_k"),
                "quarter": pyramidize(tiny_bert(), [5, 5, 5], method="first_k")}  # fmt: skip
    clock = FakeClock()
    monkeypatch.setattr(timing.time, "perf_counter", clock)
    costs = {id(dense): 1.0, id(pyramids["half"]): 0.5, id(pyramids["quarter"]): 0.25}
    real_forward = speed.split_forward

    def priced_forward(model, batches, device):  # each split pass advances the fake clock by the model's cost
        run = real_forward(model, batches, device)
        return lambda: (run(), clock.work(str(id(model)), costs[id(model)])())

    monkeypatch.setattr(speed, "split_forward", priced_forward)
    timed = speed.time_against_dense(dense, pyramids, encodings, batch_size=4, device=torch.device("cpu"), repeats=5)
    assert set(timed) == {"half", "quarter"}
    assert timed["half"]["speedup"]["ratios"] == [2.0] * 5 and timed["quarter"]["speedup"]["median"] == 4.0
    assert timed["quarter"]["speedup"]["n"] == 5 and len(timed["half"]["dense_seconds"]) == 5
    assert clock.calls.count(str(id(dense))) == 1 + 5  # one dense run per round (warm-up included), shared
    assert timed["half"]["predicted"] > 1.0
