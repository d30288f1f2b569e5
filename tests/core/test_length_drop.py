"""LengthDrop's draws of keep-ratio schedules (bounds, monotone, seeded, sandwich) and set_keep_ratios (a model whose
schedule is changed in place answers as one pyramidized with that schedule)."""

from __future__ import annotations

import random

import pytest
import torch

from pyramid_bert import pyramid_settings, pyramidize
from pyramid_bert.errors import ConfigError
from pyramid_bert.length_drop import (
    FORWARDS_PER_STEP,
    check_length_drop,
    covering_bound,
    draw_keep_ratios,
    in_draws,
    sandwich,
    smallest_schedule,
    step_rng,
)
from pyramid_bert.patch.reschedule import set_keep_ratios
from tiny_models import LAYERS, batch, tiny_bert

SMALLEST = [0.5, 0.25, 0.25, 0.1]


# ------------------------------------------------------------------------------------------------ draws
@pytest.mark.parametrize("bound", [0.05, 0.3, 0.5, 1.0])
def test_every_draw_is_non_increasing_between_the_smallest_schedule_and_keeping_everything(bound):
    rng = random.Random(0)
    for _ in range(500):
        ratios = draw_keep_ratios(SMALLEST, bound, rng)
        assert len(ratios) == len(SMALLEST)
        assert all(floor <= ratio <= 1.0 for ratio, floor in zip(ratios, SMALLEST, strict=True))
        assert all(later <= earlier for earlier, later in zip(ratios, ratios[1:], strict=False))
        previous = [1.0, *ratios[:-1]]
        assert all(ratio >= (1 - bound) * prev - 1e-12 for ratio, prev in zip(ratios, previous, strict=True))
        assert in_draws(ratios, SMALLEST, bound)


def test_draws_fill_their_interval_from_the_smallest_schedule_to_everything():
    rng = random.Random(1)
    draws = [draw_keep_ratios(SMALLEST, 1.0, rng) for _ in range(2000)]
    first, last = [d[0] for d in draws], [d[-1] for d in draws]
    assert min(first) < 0.51 and max(first) > 0.99  # layer 1: uniform over [0.5, 1]
    assert min(last) < 0.11 and max(last) > 0.6
    assert sum(first) / len(first) == pytest.approx(0.75, abs=0.02)
    # a small bound keeps each layer near the one before: LAT's length_drop_ratio_bound
    small = [draw_keep_ratios(SMALLEST, 0.1, rng) for _ in range(500)]
    assert min(d[0] for d in small) >= 0.9 and min(d[1] for d in small) >= 0.81 - 1e-12


def test_a_smallest_schedule_of_ones_draws_only_ones_and_bound_zero_draws_keep_everything():
    assert draw_keep_ratios([1.0, 1.0], 0.7, random.Random(0)) == [1.0, 1.0]
    assert draw_keep_ratios(SMALLEST, 0.0, random.Random(0)) == [1.0] * 4


def test_draws_follow_the_seed_and_step_and_the_sandwich_starts_with_the_smallest_schedule():
    first = sandwich(SMALLEST, 0.5, seed=3, step=7)
    assert first == sandwich(SMALLEST, 0.5, seed=3, step=7)  # a resumed run draws the same
    assert len(first) == FORWARDS_PER_STEP and first[0] == SMALLEST
    assert first[1] == draw_keep_ratios(SMALLEST, 0.5, step_rng(3, 7))
    assert first[1] != sandwich(SMALLEST, 0.5, seed=3, step=8)[1]
    assert first[1] != sandwich(SMALLEST, 0.5, seed=4, step=7)[1]
    # the same in another process (a string seed is hashed with SHA-512, not the per-process hash)
    assert step_rng(0, 0).random() == pytest.approx(random.Random("pyramid-bert length-drop seed=0 step=0").random())


def test_in_draws_covering_bound_and_smallest_schedule_by_hand():
    assert in_draws([0.7, 0.7, 0.7, 0.7], SMALLEST, 0.3)
    assert not in_draws([0.7, 0.7, 0.7, 0.7], SMALLEST, 0.29)  # layer 1 drops 30% of everything
    assert not in_draws([0.4, 0.4, 0.4, 0.4], SMALLEST, 1.0)  # below the smallest at layer 1
    assert not in_draws([0.6, 0.7, 0.5, 0.5], SMALLEST, 1.0)  # increases
    assert covering_bound([[0.7, 0.7], [0.5, 0.25]]) == pytest.approx(0.5)
    assert covering_bound([[1.0, 1.0]]) == 0.0
    assert smallest_schedule([[0.7, 0.7], [0.5, 0.25], [0.6, 0.6]]) == [0.5, 0.25]
    with pytest.raises(ConfigError, match="--length-drop"):
        smallest_schedule([[0.5], [0.5, 0.5]])
    schedules = [[0.7, 0.7, 0.7, 0.7], [0.5, 0.25, 0.25, 0.25]]
    bound = covering_bound(schedules)
    assert all(in_draws(s, smallest_schedule(schedules), bound) for s in schedules)
    assert not all(in_draws(s, smallest_schedule(schedules), bound - 0.01) for s in schedules)


@pytest.mark.parametrize("value", [-0.1, 1.5, "0.5", True, None, float("nan")])
def test_a_bad_bound_names_the_flag(value):
    with pytest.raises(ConfigError, match=r"--length-drop: must be a number in \[0, 1\]"):
        check_length_drop(value)


# ----------------------------------------------------------------------------------------- set_keep_ratios
def _logits(model, inputs) -> torch.Tensor:
    input_ids, attention_mask = inputs
    with torch.no_grad():
        return model(input_ids=input_ids, attention_mask=attention_mask).logits


CASES = {
    "coreset": dict(method="coreset"),
    "coreset m=k-1 CS+": dict(method="coreset", m=None, distance="cosine", duplicity_attention=True, merge=True),
    "attention eager": dict(method="attention", attn="eager"),
    "attention sdpa": dict(method="attention"),
    "first_k": dict(method="first_k"),
}


@pytest.mark.parametrize("case", list(CASES.values()), ids=list(CASES))
@pytest.mark.parametrize("inputs", [batch(4, 20), batch(1, 9, seed=2), batch(3, 12, seed=3, padded=False)],
                         ids=["padded", "batch of 1", "unpadded"])  # fmt: skip
def test_set_then_reset_gives_the_logits_of_a_freshly_pyramidized_model(case, inputs):
    options = dict(case)
    attn = options.pop("attn", "sdpa")
    stored, other = [0.8, 0.5, 0.3], [1.0, 0.6, 0.6]
    model = pyramidize(tiny_bert(attn), keep_ratios=stored, **options)
    before = _logits(model, inputs)
    set_keep_ratios(model, other)
    assert torch.allclose(_logits(model, inputs), _logits(pyramidize(tiny_bert(attn), keep_ratios=other, **options), inputs), atol=1e-6)
    assert model.config.pyramid["keep_ratios"] == other and pyramid_settings(model).keep_ratios == other
    assert not torch.allclose(_logits(model, inputs), before)  # the schedule took effect
    set_keep_ratios(model, stored)
    fresh = pyramidize(tiny_bert(attn), keep_ratios=stored, **options)
    assert torch.equal(_logits(model, inputs), before)
    assert torch.allclose(before, _logits(fresh, inputs), atol=1e-6)
    assert pyramid_settings(model) == pyramid_settings(fresh) and model.config.pyramid == fresh.config.pyramid


def test_set_keep_ratios_keeps_every_ratio_one_schedule_exactly_dense():
    inputs = batch(4, 20)
    dense = _logits(tiny_bert(), inputs)
    model = set_keep_ratios(pyramidize(tiny_bert(), keep_ratios=[0.5] * LAYERS), [1.0] * LAYERS)
    assert torch.allclose(_logits(model, inputs), dense, atol=1e-6)


def test_set_keep_ratios_refuses_a_dense_model_a_fixed_schedule_and_a_bad_schedule():
    with pytest.raises(ConfigError, match="not pyramidized"):
        set_keep_ratios(tiny_bert(), [0.5] * LAYERS)
    with pytest.raises(ConfigError, match="fixed schedule"):
        set_keep_ratios(pyramidize(tiny_bert(), [8, 4, 2]), [0.5] * LAYERS)
    model = pyramidize(tiny_bert(), keep_ratios=[0.5] * LAYERS)
    with pytest.raises(ConfigError, match="must not increase"):
        set_keep_ratios(model, [0.5, 0.6, 0.6])
    with pytest.raises(ConfigError, match="one entry per encoder layer"):
        set_keep_ratios(model, [0.5, 0.5])
    assert pyramid_settings(model).keep_ratios == [0.5] * LAYERS  # a refused schedule changes nothing
