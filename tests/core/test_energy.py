"""Energy-aware merging (PiToMe): the steps, the batched merging against its reference, and the pyramid forward
against a per-example reference forward."""

import math

import pytest
import torch

from pyramid_bert import kept_input_positions, pyramid_settings, pyramidize
from pyramid_bert.duplicity import size_bias
from pyramid_bert.energy import (
    energy_kernel,
    energy_merge,
    energy_merge_reference,
    layer_margin,
    merge_steps,
    ratio_merge_steps,
)
from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.plan import plan_batch
from pyramid_bert.schedule import ratio_keep
from pyramid_bert.selection import ratio_counts
from pyramid_bert.spec import PyramidSettings, SelectionOptions, parse_margin
from tiny_models import LAYERS, batch, tiny_bert


def simulated_steps(tokens: int, keep: int) -> int:
    """Steps as the method describes them: each removes min(left, floor((n - 1) / 2)) until n = keep (k = 1: until
    one mergeable token is left, which is dropped without a step)."""
    steps = 0
    while tokens > keep and (tokens - 1) // 2 > 0:
        tokens -= min(tokens - keep, (tokens - 1) // 2)
        steps += 1
    return steps


def test_merge_steps_count_the_halvings():
    for tokens in range(1, 70):
        for keep in range(1, tokens + 1):
            assert merge_steps(tokens, keep) == simulated_steps(tokens, keep), (tokens, keep)
    assert merge_steps(100, 25) == 3 and merge_steps(20, 10) == 2 and merge_steps(21, 11) == 1


def test_ratio_merge_steps_cover_every_example_length():
    ratios = (0.5, 0.25, 0.25)
    steps = ratio_merge_steps(ratios, 40)
    for real in range(1, 41):
        current = real
        for layer, ratio in enumerate(ratios):
            keep = min(ratio_keep(ratio, real), current)
            assert merge_steps(current, keep) <= steps[layer]
            current = keep
    assert steps == (2, 2, 0)  # layer 1: an even length; layer 2: e.g. 7 real tokens, 4 -> 2


def test_energy_kernel_and_margins():
    c = torch.tensor([-1.0, 0.0, 0.5, 0.89, 0.91, 1.0], dtype=torch.float64)
    expected = [math.expm1(-1.9), math.expm1(-0.9), math.expm1(-0.4), math.expm1(-0.01), 0.91, 1.0]
    assert torch.allclose(energy_kernel(c, 0.9), torch.tensor(expected, dtype=torch.float64))
    assert layer_margin("auto", 0, 6) == pytest.approx(0.9) and layer_margin("auto", 3, 6) == pytest.approx(0.45)
    assert layer_margin(0.3, 5, 6) == 0.3


def random_case(seed, batch_size=4, tokens=14, dim=8, duplicates=False):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, tokens, dim, generator=generator, dtype=torch.float64)
    x = x + 0.8 * torch.randn(1, 1, dim, generator=generator, dtype=torch.float64)  # a shared direction: cos > 0
    if duplicates:
        x[:, tokens // 2 :] = x[:, 1 : 1 + tokens - tokens // 2].clone()  # twins (no triplets)
    lengths = torch.randint(1, tokens + 1, (batch_size,), generator=generator)
    lengths[0] = tokens
    mask = torch.arange(tokens)[None, :] < lengths[:, None]
    sizes = mask.double() * torch.randint(1, 4, mask.shape, generator=generator).double()
    return x, mask, sizes


def needed_steps(mask, k, counts):
    real = mask.sum(1)
    keep = torch.minimum(counts if counts is not None else torch.full_like(real, k), real)
    return max(merge_steps(int(n), int(kept)) for n, kept in zip(real, keep, strict=True))


def check_against_reference(x, mask, sizes, k, margin, counts=None):
    steps = needed_steps(mask, k, counts)
    fast = energy_merge(x, mask, sizes, k, steps, margin, counts=counts)
    slow = energy_merge_reference(x, mask, sizes, k, margin, counts=counts)
    for got, expected, name in zip(fast, slow, ("ordered", "kept_mask", "slots"), strict=True):
        assert torch.equal(got, expected), name
    more = energy_merge(x, mask, sizes, k, steps + 2, margin, counts=counts)  # rows that are done stay done
    assert all(torch.equal(a, b) for a, b in zip(more, fast, strict=True))
    return fast


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("k", [1, 2, 4, 7, 14])
@pytest.mark.parametrize("margin", [0.9, 0.3, -1.0])
def test_energy_merge_matches_the_reference(seed, k, margin):
    x, mask, sizes = random_case(seed, duplicates=seed % 2 == 1)
    ordered, kept_mask, slots = check_against_reference(x, mask, sizes if seed < 2 else None, k, margin)
    real = mask.sum(1)
    assert torch.equal(kept_mask.sum(1), torch.minimum(real, torch.tensor(k)))  # k slots, or every real token
    assert bool(ordered[:, 0].eq(0).all()) and bool(kept_mask[:, 0].all())  # CLS kept, first
    assert bool(kept_mask.gather(1, slots)[mask].all())  # every real token ends in a kept slot
    for b in range(x.shape[0]):
        kept = ordered[b][kept_mask[b]]
        assert kept.tolist() == sorted(kept.tolist())
        assert slots[b, kept].tolist() == list(range(len(kept)))  # a kept token in its own slot
        if k == 1:
            assert slots[b][mask[b]].eq(0).all()


@pytest.mark.parametrize("ratio", [0.5, 0.25, 0.1])
@pytest.mark.parametrize("seed", range(3))
def test_energy_merge_with_per_example_counts_matches_the_reference(ratio, seed):
    x, mask, sizes = random_case(seed, batch_size=5, tokens=24, duplicates=seed == 2)
    real = mask.sum(1)
    counts = ratio_counts(real, real, ratio)
    _, kept_mask, _ = check_against_reference(x, mask, sizes, int(counts.max()) + seed, 0.6, counts=counts)
    assert torch.equal(kept_mask.sum(1), counts)


def test_batch_of_one_keep_all_and_rows_alone():
    x, mask, sizes = random_case(5, batch_size=3, tokens=12)
    together = energy_merge(x, mask, sizes, 5, merge_steps(12, 5), 0.7)
    for b in range(3):
        n = int(mask[b].sum())
        alone = energy_merge(x[b : b + 1, :n], mask[b : b + 1, :n], sizes[b : b + 1, :n], min(5, n),
                             merge_steps(n, min(5, n)), 0.7)  # fmt: skip
        kept = together[1][b].sum()
        assert torch.equal(together[0][b, :kept], alone[0][0, :kept]) and torch.equal(together[2][b, :n], alone[2][0])
    ordered, kept_mask, slots = energy_merge(x, mask, sizes, 12, 0, 0.7)  # k = n: nothing merges
    assert torch.equal(ordered, torch.arange(12).expand(3, 12)) and torch.equal(kept_mask, mask)
    assert torch.equal(slots, torch.arange(12).expand(3, 12).masked_fill(~mask, 0))


def test_duplicates_are_merged_first():
    """Tokens with an exact twin have the highest energy: removing as many tokens as there are twins merges each
    twin into its copy, and every distinct token stays."""
    generator = torch.Generator().manual_seed(0)
    distinct = torch.randn(1, 11, 64, generator=generator, dtype=torch.float64)
    x = torch.cat([distinct, distinct[:, [3, 7, 9]]], dim=1)  # positions 11, 12, 13 copy 3, 7, 9
    mask = torch.ones(1, 14, dtype=torch.bool)
    ordered, kept_mask, slots = check_against_reference(x, mask, None, 11, 0.9)
    assert slots[0, 11:].tolist() == slots[0, [3, 7, 9]].tolist()  # each twin merged into its copy
    assert sorted(set(slots[0].tolist())) == list(range(11))  # the others alone in their slots


@pytest.mark.parametrize("seed", range(3))
def test_many_copies_of_a_token_tie_as_in_the_reference(seed):
    """Triplets and more, merged step after step: snapped similarities keep their energies exactly tied."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 16, 8, generator=generator, dtype=torch.float64)
    x[:, 6:] = x[:, 1:11]  # overlapping copy: some tokens appear three times
    x[:, 12:] = x[:, 2:6].clone()
    mask = torch.arange(16)[None, :] < torch.tensor([16, 11, 7])[:, None]
    sizes = mask.double() * torch.randint(1, 4, mask.shape, generator=generator).double()
    for k in (1, 3, 5, 12):
        check_against_reference(x, mask, sizes, k, 0.9)
        check_against_reference(x, mask, None, k, 0.2)


# ------------------------------------------------------------------------------------------- the pyramid forward


def reference_logits(model, input_ids, schedule, options):
    """One unpadded example through the model's own modules, layer by layer, merging with the reference."""
    bert, settings = model.bert, pyramid_settings(model)
    hidden = bert.embeddings(input_ids=input_ids[None])
    n = hidden.shape[1]
    sizes, real = torch.ones(1, n), n
    for j, layer in enumerate(bert.encoder.layer):
        mask = torch.ones(1, hidden.shape[1], dtype=torch.bool)
        bias = size_bias(sizes, mask, hidden.dtype) if options.get("duplicity_attention") and j > 0 else None
        attended = layer.attention(hidden, bias)[0]
        current = attended.shape[1]
        keep = min(ratio_keep(schedule["keep_ratios"][j], real), current) if "keep_ratios" in schedule else \
            min(schedule["lengths"][j], current)  # fmt: skip
        margin = layer_margin(settings.options.energy_margin, j, LAYERS)
        ordered, _, slots = energy_merge_reference(attended, mask, sizes, keep, margin)
        rows, new_sizes = [], []
        for slot, position in enumerate(ordered[0, :keep].tolist()):
            members = [i for i in range(current) if int(slots[0, i]) == slot]
            total = sum(float(sizes[0, i]) for i in members)
            own = slot == 0 or len(members) == 1
            rows.append(attended[0, position] if own else sum(sizes[0, i] * attended[0, i] for i in members) / total)
            new_sizes.append(total)
        hidden, sizes = layer.feed_forward_chunk(torch.stack(rows)[None]), torch.tensor([new_sizes])
    return model.classifier(bert.pooler(hidden))[0]


SCHEDULES = [dict(lengths=[12, 6, 3]), dict(keep_ratios=[0.5, 0.25, 0.25]), dict(keep_ratios=[0.8, 0.3, 0.1])]
FORWARD_OPTIONS = [{}, dict(duplicity_attention=True), dict(energy_margin=0.2)]


@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("options", FORWARD_OPTIONS)
def test_pyramid_logits_equal_a_per_example_reference_forward(schedule, options):
    model = tiny_bert("eager")
    input_ids, attention_mask = batch(batch_size=5, tokens=20, seed=3)
    pyramidize(model, method="energy", **schedule, **options)
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        for row in range(5):
            n = int(attention_mask[row].sum())
            expected = reference_logits(model, input_ids[row, :n], schedule, options)
            assert torch.allclose(logits[row], expected, atol=1e-5), row


@pytest.mark.parametrize("schedule", [dict(lengths=[12, 8, 4]), dict(keep_ratios=[0.5, 0.25, 0.25])])
def test_sizes_sum_to_the_real_tokens_and_repeated_words_merge_first(schedule):
    """Without position embeddings a repeated word is an exact duplicate at layer 1: 16 -> 12 tokens merges the
    four repeats into their twins and keeps every word once."""
    model = tiny_bert("eager")
    model.bert.embeddings.position_embeddings.weight.data.zero_()
    ids = torch.tensor([[2, 11, 12, 13, 14, 15, 16, 11, 12, 13, 17, 18, 19, 14, 20, 21]])
    pyramidize(model, method="energy", **schedule)
    with torch.no_grad():
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    for layer in model.bert.encoder.layer:
        assert torch.allclose(layer._pyramid.sizes_in.sum(1), torch.tensor([16.0]))
    if "lengths" in schedule:
        kept, _ = kept_input_positions(model)[0]
        assert sorted(ids[0, kept[0]].tolist()) == sorted(set(ids[0].tolist()))


# ------------------------------------------------------------------------------------------- options and plan


def test_energy_options_are_checked():
    assert parse_margin("auto") == "auto" and parse_margin("0.5") == 0.5 and parse_margin(-1) == -1.0
    for bad in ("1.5", "x", True, float("nan")):
        with pytest.raises(ConfigError, match="--energy-margin: must be auto or a cosine similarity"):
            parse_margin(bad)
    with pytest.raises(ConfigError, match="--energy-margin: for methods energy only, not coreset"):
        pyramidize(tiny_bert(), [12, 8, 8], energy_margin=0.5)
    with pytest.raises(ConfigError, match="--merge: for methods coreset, attention, first_k, random only, not energy"):
        pyramidize(tiny_bert(), [12, 8, 8], method="energy", merge=True)
    with pytest.raises(ConfigError, match="--distance: for methods coreset, attention, first_k, random only"):
        pyramidize(tiny_bert(), [12, 8, 8], method="energy", distance="cosine")
    settings = PyramidSettings([12, 8, 8], "energy", options=SelectionOptions(duplicity_attention=True))
    assert settings.validated(LAYERS).tracks_sizes and PyramidSettings([12, 8, 8], "energy").tracks_sizes
    assert not PyramidSettings([12, 8, 8], "coreset").tracks_sizes


def test_plan_gives_energy_its_steps_without_reading():
    ratios = PyramidSettings(None, "energy", keep_ratios=[0.5, 0.25, 0.25]).validated(3)
    key_mask = torch.arange(20)[None, :] < torch.tensor([20, 9, 3])[:, None]
    plan = plan_batch(ratios, key_mask, masked=True, num_layers=3)
    assert [layer.merge_steps for layer in plan.layers] == [2, 2, 0]  # the worst lengths up to 20
    fixed = PyramidSettings([16, 4, 4], "energy").validated(3)
    plan = plan_batch(fixed, key_mask, masked=True, num_layers=3)
    assert [layer.merge_steps for layer in plan.layers] == [1, 3, 0]
    assert plan_batch(PyramidSettings([16, 4, 4]).validated(3), key_mask, True, 3).layers[1].merge_steps == 0
