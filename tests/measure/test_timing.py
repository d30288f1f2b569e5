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
