import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pyramid_bert.errors import ConfigError
from pyramid_bert.selection import (
    attention_select,
    attention_significance,
    average_pool,
    average_pool_reference,
    compiled_rounds,
    distance_space,
    first_k,
    gather_tokens,
    kcenter_greedy,
    kcenter_greedy_reference,
    kcenter_greedy_rows,
    kcenter_greedy_torch,
    random_select,
    resolve_m,
)


def random_padded_batch(batch, tokens, dim, seed, pad=True, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, tokens, dim, generator=generator, dtype=dtype)
    lengths = torch.randint(1, tokens + 1, (batch,), generator=generator) if pad else torch.full((batch,), tokens)
    mask = torch.arange(tokens)[None, :] < lengths[:, None]
    return x, mask


@pytest.mark.parametrize("m", [1, 2, 0.2, 0.5, None])
@pytest.mark.parametrize("pad", [False, True])
def test_fast_equals_reference_on_random_inputs(m, pad):
    for seed in range(12):
        tokens = 5 + seed * 3
        x, mask = random_padded_batch(3, tokens, 6, seed, pad=pad)
        for k in (1, 2, tokens // 2, tokens):
            fast = kcenter_greedy(x, k, m=m, mask=mask)
            slow = kcenter_greedy_reference(x, k, m=m, mask=mask)
            assert torch.equal(fast, slow), (seed, k, m)
            assert torch.equal(kcenter_greedy_torch(x, k, m=m, mask=mask), slow), (seed, k, m)


def test_fast_equals_reference_in_float32_on_well_separated_points():
    x, mask = random_padded_batch(4, 40, 16, seed=7, dtype=torch.float32)
    for m in (1, 0.3, None):
        reference = kcenter_greedy_reference(x, 20, m, mask)
        assert torch.equal(kcenter_greedy(x, 20, m, mask), reference)
        assert torch.equal(kcenter_greedy_torch(x, 20, m, mask), reference)


def bert_like_states(batch, tokens, dim, seed):
    """float32 states shaped like post-LayerNorm BERT ones: unit-scale features plus 4 outlier dimensions
    around +-100 shared by every token (as in BERT's hidden states), some rows padded."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, tokens, dim, generator=generator)
    outliers = torch.randperm(dim, generator=generator)[:4]
    x[:, :, outliers] = torch.tensor([100.0, -100.0, 80.0, -120.0]) + 5 * torch.randn(
        batch, tokens, 4, generator=generator
    )
    lengths = torch.randint(tokens // 2, tokens + 1, (batch,), generator=generator)
    lengths[0] = tokens
    return x, torch.arange(tokens)[None, :] < lengths[:, None]


def assert_greedy_in_float64(x, mask, k, m, order, relative_tolerance):
    """``order [B, k]`` is a k-Center-greedy-batch-m selection of ``x`` when distances are taken in float64:
    CLS first; each round takes real tokens whose float64 distance to their nearest center is the round's
    largest, up to ``relative_tolerance`` x the squared norms (float32 rounding of the Gram identity); padding
    only once no real token is left; no token twice."""
    per_round = resolve_m(m, k)
    for points, real, chosen in zip(x.double(), mask, order.tolist(), strict=True):
        assert chosen[0] == 0 and len(set(chosen)) == k
        sq = (points * points).sum(-1)
        tolerance = relative_tolerance * 2 * float(sq.max())
        distances = ((points[:, None, :] - points[None, :, :]) ** 2).sum(-1)
        nearest = distances[0].clone()
        selected, start = {0}, 1
        while start < k:
            new = chosen[start : start + min(per_round, k - start)]
            left = [j for j in range(len(points)) if j not in selected and real[j]]
            new_real = [j for j in new if real[j]]
            assert len(new_real) == min(len(new), len(left)), "padding chosen while real tokens were left"
            passed_over = [j for j in left if j not in new]
            if new_real and passed_over:
                assert min(nearest[new_real]) >= max(nearest[passed_over]) - tolerance
            selected.update(new)
            nearest = torch.minimum(nearest, distances[new].min(dim=0).values)
            start += len(new)


@pytest.mark.parametrize("dim", [384, 768])
def test_compiled_and_torch_paths_match_the_float64_reference_on_bert_like_states(dim):
    x, mask = bert_like_states(2, 96, dim, seed=dim)
    for m in (1, 0.2, None):
        for k in (8, 48):
            compiled = kcenter_greedy(x, k, m, mask)  # float32 Gram product + compiled rounds
            torch_rounds = kcenter_greedy_torch(x, k, m, mask)  # float32 Gram product + torch rounds (CUDA path)
            for order in (compiled, torch_rounds):
                # float32 in, so exact ties within rounding may go either way; 4 ulps of the squared norms
                assert_greedy_in_float64(x, mask, k, m, order, relative_tolerance=4 * torch.finfo(torch.float32).eps)
            # In float64 (inputs upcast) both paths give exactly the reference's selection.
            reference = kcenter_greedy_reference(x, k, m, mask)
            assert torch.equal(kcenter_greedy(x.double(), k, m, mask), reference), (m, k)
            assert torch.equal(kcenter_greedy_torch(x.double(), k, m, mask), reference), (m, k)


@pytest.mark.parametrize("m", [1, 2, 0.2, 0.5, None])
@pytest.mark.parametrize("pad", [False, True])
def test_row_by_row_path_equals_reference_on_random_inputs(m, pad):
    for seed in range(8):
        tokens = 5 + seed * 4
        x, mask = random_padded_batch(3, tokens, 6, seed, pad=pad)
        for k in (1, 2, tokens // 2, tokens):
            reference = kcenter_greedy_reference(x, k, m=m, mask=mask)
            assert torch.equal(kcenter_greedy_rows(x, k, m=m, mask=mask), reference)  # compiled CPU rounds
            with compiled_rounds(False):
                assert torch.equal(kcenter_greedy_rows(x, k, m=m, mask=mask), reference)  # torch rounds (CUDA path)


@pytest.mark.parametrize("distance", ["euclidean", "cosine", "standardized"])
def test_row_by_row_path_equals_the_gram_paths_on_duplicates_padding_batch_of_one(distance):
    x, mask = random_padded_batch(5, 31, 8, seed=3)
    x[:, 18:] = x[:, 1:14]  # exact copies: ties at distance 0
    for m in (1, 3, 0.3, None):
        for k in (1, 4, 17, 31):
            rows = kcenter_greedy_rows(x, k, m, mask, distance=distance)
            assert torch.equal(rows, kcenter_greedy(x, k, m, mask, distance=distance)), (m, k)
            assert torch.equal(rows, kcenter_greedy_torch(x, k, m, mask, distance=distance)), (m, k)
            assert torch.equal(kcenter_greedy_rows(x[2:3], k, m, mask[2:3], distance=distance), rows[2:3])
            with compiled_rounds(False):
                assert torch.equal(kcenter_greedy_rows(x, k, m, mask, distance=distance), rows), (m, k)


def test_row_by_row_path_is_greedy_in_float32_on_long_inputs():
    x, mask = bert_like_states(2, 400, 64, seed=5)
    for m in (1, 0.1, None):
        for compiled in (True, False):
            with compiled_rounds(compiled):
                order = kcenter_greedy_rows(x, 120, m, mask)
            assert_greedy_in_float64(x, mask, 120, m, order, relative_tolerance=4 * torch.finfo(torch.float32).eps)


def test_the_float64_greedy_check_catches_a_wrong_selection():
    x, mask = bert_like_states(1, 64, 384, seed=1)
    order = kcenter_greedy(x, 16, 1, mask)
    assert_greedy_in_float64(x, mask, 16, 1, order, relative_tolerance=1e-6)
    wrong = order.clone()
    wrong[0, 1] = next(j for j in range(1, 64) if j not in order[0].tolist())  # not the farthest token
    with pytest.raises(AssertionError):
        assert_greedy_in_float64(x, mask, 16, 1, wrong, relative_tolerance=1e-6)


def test_compiled_rounds_and_torch_rounds_agree_on_duplicates_and_padding():
    x, mask = random_padded_batch(6, 33, 8, seed=11, dtype=torch.float32)
    x[:, 20:] = x[:, 1:14]  # exact copies: many ties at distance 0
    for m in (1, 3, 0.25, None):
        for k in (1, 5, 20, 33):
            assert torch.equal(kcenter_greedy(x, k, m, mask), kcenter_greedy_torch(x, k, m, mask)), (m, k)


def test_compiled_kernel_is_in_use_on_cpu():
    from pyramid_bert import kcenter_kernel

    assert kcenter_kernel.AVAILABLE, "numba is a dependency: the CPU fast path must be compiled"


def test_hand_computed_tiny_case():
    # points on a line: 0, 1, 10, 4, 9 ; CLS = 0
    x = torch.tensor([[[0.0], [1.0], [10.0], [4.0], [9.0]]])
    # m = 1: farthest from {0} is 10 (idx 2); then nearest distances: 1->1, 4->4, 9->1: pick 4 (idx 3)
    assert kcenter_greedy(x, 3, m=1).tolist() == [[0, 2, 3]]
    # m = 2 in one round: the two farthest from {0}: 10 (idx 2), 9 (idx 4)
    assert kcenter_greedy(x, 3, m=2).tolist() == [[0, 2, 4]]
    assert kcenter_greedy(x, 3, m=None).tolist() == [[0, 2, 4]]


def test_last_round_adds_only_what_reaches_k():
    x, _ = random_padded_batch(2, 30, 4, seed=3, pad=False)
    for k in (1, 2, 7, 30):
        assert kcenter_greedy(x, k, m=4).shape == (2, k)


def test_padding_only_after_real_tokens_and_lowest_index_first():
    x, _ = random_padded_batch(1, 8, 3, seed=0, pad=False)
    mask = torch.tensor([[True, True, True, False, False, False, False, False]])
    idx = kcenter_greedy(x, 6, m=1, mask=mask)
    assert sorted(idx[0, :3].tolist()) == [0, 1, 2]
    assert idx[0, 3:].tolist() == [3, 4, 5]
    assert mask.gather(1, idx).tolist() == [[True] * 3 + [False] * 3]


def test_batch_of_one_and_k_equals_n():
    x, _ = random_padded_batch(1, 9, 3, seed=5, pad=False)
    idx = kcenter_greedy(x, 9, m=1)
    assert sorted(idx[0].tolist()) == list(range(9))
    assert idx[0, 0] == 0


def test_exact_duplicates_never_chosen_while_distinct_token_uncovered():
    base = torch.randn(1, 4, 5, generator=torch.Generator().manual_seed(1))
    # tokens: 0 1 2 3 then copies of 0, 1, 2
    x = torch.cat([base, base[:, :3]], dim=1)
    idx = kcenter_greedy(x, 4, m=1)
    assert sorted(idx[0].tolist()) == [0, 1, 2, 3]
    assert torch.equal(idx, kcenter_greedy_reference(x, 4, m=1))


def test_batch_rounds_never_pick_a_copy_of_a_center_from_an_earlier_round():
    # Algorithm 1 picks a round's m tokens against the centers chosen before the round, so two copies of one
    # uncovered token may enter together; a copy of an existing center (distance 0) comes after every
    # distinct real token.
    base = torch.randn(1, 6, 5, generator=torch.Generator().manual_seed(2))
    x = torch.cat([base, base[:, :1], base[:, :1]], dim=1)  # tokens 6 and 7 copy CLS
    for m in (2, 3, None):
        idx = kcenter_greedy(x, 6, m=m)
        assert sorted(idx[0].tolist()) == list(range(6)), m
        assert torch.equal(idx, kcenter_greedy_reference(x, 6, m=m))


def covering_radius(points, centers):
    return max(min(float(torch.dist(points[j], points[c])) for c in centers) for j in range(len(points)))


@settings(max_examples=40, deadline=None)
@given(
    tokens=st.integers(2, 8),
    k=st.integers(1, 8),
    seed=st.integers(0, 10_000),
    duplicates=st.booleans(),
)
def test_m1_covering_radius_within_twice_optimum(tokens, k, seed, duplicates):
    k = min(k, tokens)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(1, tokens, 2, generator=generator, dtype=torch.float64)
    if duplicates:
        x[0, tokens // 2 :] = x[0, : tokens - tokens // 2].clone()
    greedy = covering_radius(x[0], kcenter_greedy(x, k, m=1)[0].tolist())
    optimum = min(covering_radius(x[0], (0, *rest)) for rest in itertools.combinations(range(1, tokens), k - 1))
    assert greedy <= 2 * optimum + 1e-9


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 3),
    tokens=st.integers(1, 12),
    data=st.data(),
)
def test_properties_no_duplicates_cls_first_padding_last(batch, tokens, data):
    k = data.draw(st.integers(1, tokens))
    m = data.draw(st.one_of(st.integers(1, 5), st.floats(0.05, 0.95), st.none()))
    seed = data.draw(st.integers(0, 1000))
    x, mask = random_padded_batch(batch, tokens, 3, seed)
    idx = kcenter_greedy(x, k, m=m, mask=mask)
    assert idx.shape == (batch, k)
    assert (idx[:, 0] == 0).all()
    for row, real in zip(idx.tolist(), mask, strict=True):
        assert len(set(row)) == k
        flags = [bool(real[j]) for j in row]
        real_count = int(real.sum())
        # all real tokens before any padding, and padding only once real tokens run out
        assert flags == sorted(flags, reverse=True)
        assert sum(flags) == min(k, real_count)
    assert torch.equal(idx, kcenter_greedy_reference(x, k, m=m, mask=mask))


def test_resolve_m():
    assert resolve_m(1, 80) == 1
    assert resolve_m(0.2, 80) == 16
    assert resolve_m(0.1, 32) == 4  # ceil(3.2)
    assert resolve_m(None, 80) == 79
    assert resolve_m(None, 1) == 1
    for bad in (0, -1, 0.0, 1.0, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="m must be"):
            resolve_m(bad, 10)


@pytest.mark.parametrize("k", [0, 11, 2.5])
def test_bad_k_names_the_valid_range(k):
    x = torch.randn(2, 10, 3)
    with pytest.raises(ConfigError, match=r"k must be an int in \[1, N\] = \[1, 10\]"):
        kcenter_greedy(x, k)


def test_bad_mask_shape_and_non_finite_inputs():
    x = torch.randn(2, 10, 3)
    with pytest.raises(ConfigError, match="mask must have shape"):
        kcenter_greedy(x, 3, mask=torch.ones(2, 9, dtype=torch.bool))
    for bad in (math.nan, math.inf):
        y = x.clone()
        y[1, 4, 2] = bad
        with pytest.raises(ConfigError, match="NaN or inf"):
            kcenter_greedy(y, 3)


def test_first_k_skips_interior_padding_and_keeps_order():
    mask = torch.tensor([[True, False, True, True, False]])
    assert first_k(mask, 4).tolist() == [[0, 2, 3, 1]]
    assert first_k(torch.ones(2, 6, dtype=torch.bool), 3).tolist() == [[0, 1, 2]] * 2


def test_random_select_is_seeded_cls_first_padding_last():
    mask = torch.tensor([[True] * 6 + [False] * 4] * 3)
    first = random_select(mask, 8, torch.Generator().manual_seed(4))
    again = random_select(mask, 8, torch.Generator().manual_seed(4))
    assert torch.equal(first, again)
    assert (first[:, 0] == 0).all()
    assert sorted(first[0, :6].tolist()) == list(range(6))
    assert first[0, 6:].tolist() == [6, 7]
    others = {tuple(random_select(mask, 8, torch.Generator().manual_seed(s))[0].tolist()) for s in range(10)}
    assert len(others) > 1


def test_attention_select_by_significance():
    probs = torch.zeros(1, 2, 4, 4)
    probs[0, :, :, 3] = 0.5  # key 3 receives the most
    probs[0, :, :, 1] = 0.3
    probs[0, :, :, 2] = 0.2
    significance = attention_significance(probs)
    assert attention_select(significance, 3).tolist() == [[0, 3, 1]]
    mask = torch.tensor([[True, True, True, False]])
    assert attention_select(significance, 4, mask).tolist() == [[0, 1, 2, 3]]
    # padding queries do not count towards significance
    assert attention_significance(probs, mask)[0, 3] == pytest.approx(0.5 * 2 * 3)


@pytest.mark.parametrize("window", [1, 2, 3, 5])
def test_average_pool_equals_reference(window):
    x, mask = random_padded_batch(3, 11, 4, seed=window)
    fast, fast_mask = average_pool(x, mask, window)
    slow, slow_mask = average_pool_reference(x, mask, window)
    assert fast.shape == (3, 1 + math.ceil(10 / window), 4)
    assert torch.allclose(fast, slow)
    assert torch.equal(fast_mask, slow_mask)


def test_gather_keeps_original_order_and_gradients():
    x = torch.randn(2, 6, 3, requires_grad=True)
    mask = torch.ones(2, 6, dtype=torch.bool)
    idx = torch.tensor([[0, 4, 2], [0, 5, 1]])
    kept, kept_mask, ordered = gather_tokens(x, mask, idx)
    assert ordered.tolist() == [[0, 2, 4], [0, 1, 5]]
    assert torch.equal(kept[0], x[0, [0, 2, 4]])
    kept.sum().backward()
    assert x.grad[0, 4].abs().sum() > 0 and x.grad[0, 3].abs().sum() == 0


def test_compiled_rounds_switch_gives_identical_results_and_restores_itself():
    from pyramid_bert import selection

    x, mask = random_padded_batch(2, 30, 5, seed=3, dtype=torch.float32)
    compiled = kcenter_greedy(x, 12, 1, mask)
    with selection.compiled_rounds(False):
        assert not selection._compiled_rounds_enabled
        assert torch.equal(kcenter_greedy(x, 12, 1, mask), compiled)
    assert selection._compiled_rounds_enabled


def test_kcenter_greedy_inside_torch_compile_equals_eager():
    x = torch.randn(2, 9, 4, generator=torch.Generator().manual_seed(5))
    mask = torch.ones(2, 9, dtype=torch.bool)
    mask[1, 6:] = False

    def select(points, real):
        return kcenter_greedy(points * 2.0, 5, m=1, mask=real)  # a traced op before the (eager) rounds

    compiled = torch.compile(select, dynamic=False)
    assert torch.equal(compiled(x, mask), select(x, mask))


def test_the_standardized_space_stays_finite_when_subnormal_numbers_are_flushed_to_zero():
    # one real token: every std is 0, so the floor decides; it must be a normal number, as a runtime that flushes
    # subnormal numbers to 0 (torch.set_flush_denormal(True) here) would divide by 0
    x = torch.randn(2, 5, 4)
    mask = torch.tensor([[True, False, False, False, False], [True, True, True, False, False]])
    if not torch.set_flush_denormal(True):
        pytest.skip("this CPU cannot flush subnormal numbers")
    try:
        space = distance_space(x, mask, "standardized")
    finally:
        torch.set_flush_denormal(False)
    assert torch.isfinite(space).all()
    assert torch.equal(space[1], distance_space(x[1:], mask[1:], "standardized")[0])


@pytest.mark.parametrize("m", [1, None])
def test_standardized_coreset_handles_an_example_with_one_real_token_in_a_padded_batch(m):
    # every std of that example is 0: dividing by a floor near float32's smallest number overflowed (a ConfigError
    # for non-finite hidden states, in eager PyTorch, whenever keep ratios left a short example one token)
    x, _ = random_padded_batch(3, 7, 6, seed=5, dtype=torch.float32)
    mask = torch.arange(7)[None, :] < torch.tensor([7, 1, 4])[:, None]
    got = kcenter_greedy(x, 4, m=m, mask=mask, distance="standardized")
    assert torch.equal(got, kcenter_greedy_reference(x, 4, m=m, mask=mask, distance="standardized"))
