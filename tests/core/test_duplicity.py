"""Token sizes (the paper's Remark 1): assignment, cluster sizes, merging, proportional attention, distances."""

import pytest
import torch

from pyramid_bert import kept_input_positions, load_pyramid_model, pyramid_settings, pyramidize
from pyramid_bert.duplicity import (
    assign_to_centers,
    assign_to_centers_reference,
    cluster_sizes,
    merge_clusters,
    merge_clusters_reference,
    size_bias,
)
from pyramid_bert.errors import ConfigError
from pyramid_bert.selection import (
    DISTANCES,
    gather_tokens,
    kcenter_greedy,
    kcenter_greedy_reference,
    kcenter_greedy_torch,
    ratio_counts,
)
from tiny_models import LAYERS, batch, tiny_bert

SIZE_METHODS = ("coreset", "attention", "first_k", "random")


def random_case(seed, batch_size=3, tokens=12, dim=6, k=5, ratio=None):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, tokens, dim, generator=generator, dtype=torch.float64)
    x[..., 0] *= 30.0  # an outlier dimension, as in post-LayerNorm BERT states
    lengths = torch.randint(2, tokens + 1, (batch_size,), generator=generator)
    lengths[0] = tokens
    mask = torch.arange(tokens)[None, :] < lengths[:, None]
    indices = kcenter_greedy(x, k, m=1, mask=mask)
    counts = ratio_counts(lengths, lengths, ratio) if ratio is not None else None
    _, kept_mask, ordered = gather_tokens(x, mask, indices, counts)
    sizes = mask.double() * torch.randint(1, 4, mask.shape, generator=generator).double()
    return x, mask, ordered, kept_mask, sizes


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("ratio", [None, 0.5])
@pytest.mark.parametrize("seed", range(4))
def test_assignment_matches_the_reference_with_padding_and_ratio_slots(distance, ratio, seed):
    x, mask, ordered, kept_mask, _ = random_case(seed, ratio=ratio)
    fast = assign_to_centers(x, mask, ordered, kept_mask, distance)
    slow = assign_to_centers_reference(x, mask, ordered, kept_mask, distance)
    assert torch.equal(fast.masked_fill(~mask, 0), slow)
    # every real token lands on a real kept slot; a kept token on its own slot
    assert bool(kept_mask.gather(1, fast)[mask].all())
    for b in range(x.shape[0]):
        for c in range(ordered.shape[1]):
            if kept_mask[b, c]:
                assert int(fast[b, ordered[b, c]]) == c


@pytest.mark.parametrize("seed", range(4))
def test_cluster_sizes_and_merge_match_the_reference_and_sizes_sum_to_the_real_tokens(seed):
    x, mask, ordered, kept_mask, sizes = random_case(seed, ratio=0.5 if seed % 2 else None)
    kept = x.gather(1, ordered[:, :, None].expand(-1, -1, x.shape[-1]))
    slots = assign_to_centers(x, mask, ordered, kept_mask)
    totals = cluster_sizes(sizes, mask, slots, ordered.shape[1])
    merged = merge_clusters(x, sizes, mask, slots, kept)
    merged_ref, totals_ref = merge_clusters_reference(x, sizes, mask, slots, kept)
    assert torch.allclose(totals, totals_ref)
    assert torch.allclose(merged, merged_ref)
    assert torch.allclose(totals.sum(1), (sizes * mask).sum(1))
    assert bool((totals[~kept_mask] == 0).all()) and bool((totals[kept_mask] >= 1).all())
    assert torch.equal(merged[:, 0], x[:, 0])  # CLS is never averaged


def test_merging_singleton_clusters_equals_dropping():
    x, mask, ordered, kept_mask, sizes = random_case(0, k=12)  # k = N: every token is its own cluster
    kept = x.gather(1, ordered[:, :, None].expand(-1, -1, x.shape[-1]))
    slots = assign_to_centers(x, mask, ordered, kept_mask)
    assert torch.equal(merge_clusters(x, sizes, mask, slots, kept), kept)


def test_merging_exact_duplicates_equals_dropping_them():
    x = torch.randn(1, 6, 4, dtype=torch.float64)
    x[0, 3], x[0, 4] = x[0, 1], x[0, 2]  # tokens 3 and 4 duplicate 1 and 2
    mask = torch.ones(1, 6, dtype=torch.bool)
    ordered, kept_mask = torch.tensor([[0, 1, 2, 5]]), torch.ones(1, 4, dtype=torch.bool)
    kept = x[:, ordered[0]]
    slots = assign_to_centers(x, mask, ordered, kept_mask)
    assert slots.tolist() == [[0, 1, 2, 1, 2, 3]]
    assert torch.allclose(merge_clusters(x, torch.ones(1, 6, dtype=torch.float64), mask, slots, kept), kept)
    assert cluster_sizes(torch.ones(1, 6), mask, slots, 4).tolist() == [[1.0, 2.0, 2.0, 1.0]]


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_proportional_attention_weighs_a_key_of_size_s_as_s_copies_of_it(attn):
    """Remark 1: attention over kept tokens with log(size) added equals attention over the sequence in which
    each kept token is repeated size times (for the kept tokens' own outputs)."""
    layer = tiny_bert(attn).bert.encoder.layer[0]
    generator = torch.Generator().manual_seed(3)
    kept = torch.randn(1, 4, 32, generator=generator)
    sizes = torch.tensor([[1.0, 3.0, 1.0, 2.0]])
    expanded = kept.repeat_interleave(sizes[0].long(), dim=1)  # [1, 7, 32]
    with torch.no_grad():
        weighted = layer.attention(kept, size_bias(sizes, torch.ones(1, 4, dtype=torch.bool), kept.dtype))[0]
        copies = layer.attention(expanded, None)[0]
    first_copy = torch.tensor([0, 1, 4, 5])
    assert torch.allclose(weighted, copies[:, first_copy], atol=1e-5)
    with torch.no_grad():
        unweighted = layer.attention(kept, None)[0]
    assert not torch.allclose(unweighted, weighted, atol=1e-3)  # the sizes do change the result


def test_proportional_attention_with_all_sizes_one_is_standard_attention():
    layer = tiny_bert("eager").bert.encoder.layer[0]
    hidden = torch.randn(2, 5, 32)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    standard = torch.zeros(2, 5).masked_fill(~mask, torch.finfo(torch.float32).min)[:, None, None, :]
    with torch.no_grad():
        a = layer.attention(hidden, size_bias(torch.ones(2, 5), mask, hidden.dtype))[0]
        b = layer.attention(hidden, standard)[0]
    assert torch.allclose(a[mask], b[mask])


OPTIONS = [dict(duplicity_attention=True), dict(merge=True), dict(duplicity_attention=True, merge=True),
           dict(distance="cosine", duplicity_attention=True)]  # fmt: skip


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("method", SIZE_METHODS)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_full_length_schedules_with_size_options_give_the_dense_logits(options, method, attn):
    model = tiny_bert(attn)
    input_ids, attention_mask = batch()
    with torch.no_grad():
        dense = model(input_ids=input_ids, attention_mask=attention_mask).logits
        pyramidize(model, [20] * LAYERS, method=method, **options)
        pyramid = model(input_ids=input_ids, attention_mask=attention_mask).logits
    assert torch.allclose(dense, pyramid, atol=1e-5)


@pytest.mark.parametrize("options", OPTIONS)
@pytest.mark.parametrize("method", ("coreset", "attention", "first_k"))
@pytest.mark.parametrize("schedule", [dict(lengths=[16, 10, 6]), dict(keep_ratios=[0.8, 0.5, 0.3])])
def test_padded_batch_equals_each_example_alone_with_size_options(options, method, schedule):
    model = tiny_bert("eager")
    input_ids, attention_mask = batch(seed=1)
    pyramidize(model, method=method, **schedule, **options)
    with torch.no_grad():
        together = model(input_ids=input_ids, attention_mask=attention_mask).logits
        for row in range(input_ids.shape[0]):
            n = int(attention_mask[row].sum())
            alone = model(input_ids=input_ids[row : row + 1, :n], attention_mask=attention_mask[row : row + 1, :n])
            assert torch.allclose(together[row], alone.logits[0], atol=1e-5), row


@pytest.mark.parametrize("schedule", [dict(lengths=[16, 10, 6]), dict(keep_ratios=[0.8, 0.5, 0.3])])
def test_sizes_sum_to_the_real_tokens_at_every_layer(schedule):
    model = tiny_bert("sdpa")
    input_ids, attention_mask = batch(seed=2)
    pyramidize(model, method="coreset", duplicity_attention=True, **schedule)
    with torch.no_grad():
        model(input_ids=input_ids, attention_mask=attention_mask)
    real = attention_mask.sum(1).double()
    for layer in model.bert.encoder.layer:
        state = layer._pyramid
        assert torch.allclose(state.sizes_in.double().sum(1), real)
        assert bool((state.sizes_in[state.key_mask_in] >= 1).all())
    assert int(model.bert.encoder.layer[-1]._pyramid.sizes_in.max()) > 1  # something was assigned


def test_size_options_change_the_result_of_a_shrinking_schedule():
    input_ids, attention_mask = batch(seed=4)
    outputs = []
    for options in ({}, dict(duplicity_attention=True), dict(merge=True)):
        model = tiny_bert("sdpa")
        pyramidize(model, [12, 6, 4], method="coreset", **options)
        with torch.no_grad():
            outputs.append(model(input_ids=input_ids, attention_mask=attention_mask).logits)
    assert not torch.allclose(outputs[0], outputs[1]) and not torch.allclose(outputs[0], outputs[2])


def test_size_options_round_trip_through_save_and_load(tmp_path):
    model = tiny_bert("sdpa")
    pyramidize(model, [16, 8, 8], method="coreset", distance="standardized", duplicity_attention=True, merge=True)
    model.save_pretrained(tmp_path)
    loaded = load_pyramid_model(str(tmp_path))
    settings = pyramid_settings(loaded)
    assert (settings.options.distance, settings.options.duplicity_attention, settings.options.merge) == ("standardized", True, True)
    input_ids, attention_mask = batch()
    with torch.no_grad():
        assert torch.allclose(model(input_ids=input_ids, attention_mask=attention_mask).logits,
                              loaded(input_ids=input_ids, attention_mask=attention_mask).logits)  # fmt: skip


@pytest.mark.parametrize("distance", DISTANCES)
@pytest.mark.parametrize("m", [1, 3, None])
@pytest.mark.parametrize("seed", range(3))
def test_kcenter_with_each_distance_matches_the_reference(distance, m, seed):
    x, mask, *_ = random_case(seed)
    reference = kcenter_greedy_reference(x, 6, m=m, mask=mask, distance=distance)
    assert torch.equal(kcenter_greedy(x, 6, m=m, mask=mask, distance=distance), reference)
    assert torch.equal(kcenter_greedy_torch(x, 6, m=m, mask=mask, distance=distance), reference)


def test_cosine_ignores_token_norms_and_standardized_ignores_dimension_scales():
    x, mask, *_ = random_case(5)
    norms = torch.rand(x.shape[:2], dtype=torch.float64)[..., None] * 10 + 0.1
    scales = torch.rand(x.shape[-1], dtype=torch.float64) * 10 + 0.1
    cosine = kcenter_greedy(x, 6, mask=mask, distance="cosine")
    assert torch.equal(kcenter_greedy(x * norms, 6, mask=mask, distance="cosine"), cosine)
    standardized = kcenter_greedy(x, 6, mask=mask, distance="standardized")
    assert torch.equal(kcenter_greedy(x * scales, 6, mask=mask, distance="standardized"), standardized)
    assert not torch.equal(kcenter_greedy(x * scales, 6, mask=mask), kcenter_greedy(x, 6, mask=mask))


def test_bad_size_options_name_the_valid_choices():
    with pytest.raises(ConfigError, match="euclidean, cosine, standardized"):
        pyramidize(tiny_bert(), [16, 8, 8], distance="manhattan")
    with pytest.raises(ConfigError, match="coreset, attention, first_k, random"):
        pyramidize(tiny_bert(), method="average_pool", pool_windows=[1, 2, 1], merge=True)
    with pytest.raises(ConfigError, match="--duplicity-attention: must be true or false"):
        pyramidize(tiny_bert(), [16, 8, 8], duplicity_attention="yes")


@pytest.mark.parametrize("method", SIZE_METHODS + ("input_first_k", "energy"))
@pytest.mark.parametrize("schedule", [dict(lengths=[16, 10, 6]), dict(keep_ratios=[0.8, 0.5, 0.3])])
def test_kept_input_positions_are_nested_subsets_of_the_input_in_order(method, schedule):
    if method == "input_first_k":
        if "keep_ratios" in schedule:
            pytest.skip("Input-first-k takes a constant fixed schedule")
        schedule = dict(lengths=[12] * LAYERS)
    model = tiny_bert("eager")
    input_ids, attention_mask = batch(seed=3)
    pyramidize(model, method=method, **schedule)
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
    positions = kept_input_positions(model)
    assert [p.shape[1] for p, _ in positions] == [h.shape[1] for h in out.hidden_states[1:]]
    previous = [set(range(int(n))) for n in attention_mask.sum(1)]
    for layer_index, (kept, real) in enumerate(positions):
        following = model.bert.encoder.layer[layer_index + 1]._pyramid.key_mask_in if layer_index + 1 < LAYERS else None
        if following is not None:
            assert torch.equal(real, following)  # the real slots are what the next layer attends to
        for row in range(input_ids.shape[0]):
            chosen = kept[row][real[row]].tolist()
            assert chosen[0] == 0 and chosen == sorted(chosen) and set(chosen) <= previous[row]
            previous[row] = set(chosen)
    if method == "first_k" and "lengths" in schedule:
        full = attention_mask.sum(1) == attention_mask.shape[1]
        assert torch.equal(positions[-1][0][full], torch.arange(6).expand(int(full.sum()), 6))
