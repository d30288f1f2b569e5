"""Means with t intervals and paired differences over seeds, against values computed by hand."""

from __future__ import annotations

import math

import pytest

from pyramid_bert.errors import ConfigError
from pyramid_bert.report.stats import PairedDifference, format_difference, holm, mean_ci, paired_difference, verdict

T_975_DF2 = 4.302652729911275  # Student t quantile 0.975 with 2 degrees of freedom (tables)


def test_mean_ci_of_three_seeds_is_the_t_interval():
    summary = mean_ci([0.80, 0.82, 0.84])
    # mean 0.82, s = 0.02, half width t(0.975, 2) * 0.02 / sqrt(3) = 0.049683
    assert summary.mean == pytest.approx(0.82)
    assert summary.std == pytest.approx(0.02)
    assert summary.half_width == pytest.approx(T_975_DF2 * 0.02 / math.sqrt(3))
    assert summary.half_width == pytest.approx(0.049683, abs=1e-6)
    assert (summary.low, summary.high) == pytest.approx((0.82 - 0.049683, 0.82 + 0.049683), abs=1e-6)
    assert summary.n == 3


def test_one_value_has_no_interval_and_none_is_an_error():
    summary = mean_ci([0.7])
    assert summary.mean == 0.7 and summary.low is None and summary.half_width is None and summary.n == 1
    with pytest.raises(ConfigError, match="at least one value"):
        mean_ci([])


def test_paired_difference_by_hand_not_significant():
    a = {0: 0.80, 1: 0.82, 2: 0.84, 7: 0.9}  # seed 7 has no partner: left out
    b = {0: 0.78, 1: 0.81, 2: 0.80}
    diff = paired_difference(a, b)
    # d = 0.02, 0.01, 0.04: mean 0.023333, s = 0.0152753, t = 2.6458 (t^2 = 7); df 2: p = 1 - t / sqrt(t^2 + 2)
    assert diff.n == 3
    assert diff.mean == pytest.approx(0.0233333, abs=1e-7)
    half = T_975_DF2 * 0.0152753 / math.sqrt(3)
    assert (diff.low, diff.high) == pytest.approx((0.0233333 - half, 0.0233333 + half), abs=1e-6)
    assert diff.p_value == pytest.approx(1 - math.sqrt(7) / 3, abs=1e-9)
    assert not diff.significant
    assert verdict(diff, other="dense") == "no significant difference to dense (p = 0.118)"


def test_paired_difference_by_hand_significant():
    diff = paired_difference({0: 0.70, 1: 0.72, 2: 0.75}, {0: 0.72, 1: 0.741, 2: 0.769})
    # d = -0.02, -0.021, -0.019: mean -0.02, s = 0.001, t = -34.641 (t^2 = 1200): p = 1 - sqrt(1200 / 1202)
    assert diff.mean == pytest.approx(-0.02)
    assert diff.high == pytest.approx(-0.02 + T_975_DF2 * 0.001 / math.sqrt(3), abs=1e-9)
    assert diff.p_value == pytest.approx(1 - math.sqrt(1200 / 1202), rel=1e-6)
    assert diff.significant
    assert verdict(diff, other="dense") == "significantly worse than dense by 2.0 (p < 0.001)"


def test_paired_difference_edge_cases():
    assert paired_difference({0: 0.5}, {1: 0.5}) is None
    single = paired_difference({0: 0.5}, {0: 0.4})
    assert single.n == 1 and single.low is None and not single.significant
    assert verdict(single, other="dense") == "one seed: no test against dense"
    constant = paired_difference({0: 0.6, 1: 0.7}, {0: 0.5, 1: 0.6})  # the same +0.1 on both seeds (up to rounding)
    assert constant.mean == pytest.approx(0.1) and constant.no_spread
    assert constant.p_value == 0.5 and not constant.significant  # sign-flip test: 2 of the 2^2 sign patterns
    assert format_difference(constant, scale=100) == "+10.0 (same on all 2 seeds)"
    assert "exact sign-flip test" in verdict(constant, other="dense")
    assert verdict(None, other="Att") == "no common seeds with Att"


@pytest.mark.parametrize(("seeds", "p_value", "significant"), [(3, 0.25, False), (5, 0.0625, False), (6, 0.03125, True)])
def test_a_difference_without_spread_is_tested_exactly_not_called_certain(seeds, p_value, significant):
    a = {seed: 0.8 for seed in range(seeds)}
    b = {seed: 0.7 for seed in range(seeds)}
    difference = paired_difference(a, b)
    assert difference.no_spread and difference.p_value == pytest.approx(p_value)
    assert difference.significant is significant
    assert paired_difference(b, b).p_value == 1.0  # no difference at all


def test_holm_adjusts_a_family_of_p_values_by_hand():
    def diff(p_value):
        return PairedDifference(mean=0.01, low=0.0, high=0.02, n=3, p_value=p_value)

    family = [diff(0.01), None, diff(0.04), PairedDifference(0.01, None, None, 1, None), diff(0.03)]
    adjusted = holm(family)
    # sorted 0.01, 0.03, 0.04 -> 3 x 0.01 = 0.03; max(0.03, 2 x 0.03) = 0.06; max(0.06, 1 x 0.04) = 0.06
    assert [d.p_adjusted if d is not None else None for d in adjusted] == pytest.approx([0.03, None, 0.06, None, 0.06])
    assert adjusted[1] is None and adjusted[3].p_adjusted is None  # untested entries stay as they are
    assert {d.family for d in (adjusted[0], adjusted[2], adjusted[4])} == {3}
    assert adjusted[0].significant and not adjusted[2].significant and not adjusted[4].significant
    assert adjusted[0].low == family[0].low and adjusted[0].p_value == 0.01  # raw interval and p kept
    assert "Holm-adjusted over 3: 0.030" in verdict(adjusted[0], other="dense")
    assert holm([diff(0.2)])[0].p_adjusted == pytest.approx(0.2)


def test_a_mean_difference_that_rounds_to_zero_is_printed_without_a_minus_sign():
    # 79.271 - 79.271 computed from per-seed values is about -1e-14: "-0.0" would read as a loss
    difference = PairedDifference(-1e-14, -1.64, 1.64, 3, 0.99)
    assert format_difference(difference) == "+0.0 [-1.6, +1.6]"
    assert format_difference(PairedDifference(-0.04, -0.9, -0.04, 3, 0.04)) == "+0.0 [-0.9, -0.0] *"
