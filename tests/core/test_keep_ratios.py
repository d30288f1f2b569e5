"""Keep-ratio schedules: each example keeps ceil(r_j * its own real length) tokens after layer j."""

import pytest
import torch
from transformers import BertModel

from pyramid_bert import load_pyramid_model, pyramid_settings, pyramidize
from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.hf import RATIO_METHODS
from pyramid_bert.schedule import (
    batch_layer_lengths,
    batches_flops,
    encoder_flops,
    ratio_keep,
    ratio_lengths,
    sequence_lengths,
    sequence_ratios,
    validate_ratios,
)
from pyramid_bert.selection import first_k, gather_tokens, kcenter_greedy, ratio_counts
from tiny_models import LAYERS, batch, tiny_bert

RATIOS = [0.8, 0.5, 0.3]


# ------------------------------------------------------------------------------------------- schedule
def test_sequence_ratios_are_eq5_without_floor():
    assert sequence_ratios(6, 0.25, 2) == [0.5, 0.25, 0.25, 0.25, 0.25, 0.25]
    ratios = sequence_ratios(12, 0.25, 3)
    assert [128 * r for r in ratios][:3] == pytest.approx([80.63, 50.80, 32.0], abs=0.01)
    # floor(n * r) is the fixed-length schedule of Eq. 5
    assert [int(128 * r + 1e-9) for r in ratios] == sequence_lengths(128, 12, 0.25, 3)


def test_ratio_keep_rounds_up_guards_float_noise_and_stays_in_range():
    assert ratio_keep(0.5, 26) == 13
    assert ratio_keep(0.5, 27) == 14
    assert ratio_keep(0.3, 10) == 3  # 0.3 * 10 == 3.0000000000000004
    assert ratio_keep(0.01, 5) == 1  # at least CLS
    assert ratio_keep(1.0, 7) == 7


def test_ratio_lengths_hand_cases():
    assert ratio_lengths(26, [0.5, 0.25, 0.25]) == [13, 7, 7]
    assert ratio_lengths(1, [0.5, 0.25]) == [1, 1]
    assert ratio_lengths(64, [1.0, 1.0]) == [64, 64]


@pytest.mark.parametrize(
    "ratios, message",
    [([0.5, 0.6, 0.1], "must not increase"), ([0.5, 0.0, 0.0], r"\(0, 1\]"), ([1.5, 1, 1], r"\(0, 1\]"),
     ([0.5, 0.5], "one entry per encoder layer"), ([True, 0.5, 0.5], r"\(0, 1\]")],
)  # fmt: skip
def test_validate_ratios_rejects_bad_schedules(ratios, message):
    with pytest.raises(ConfigError, match=message):
        validate_ratios(ratios, 3)


def test_batch_layer_lengths_fixed_and_ratio():
    assert batch_layer_lengths(64, 20, lengths=[32, 16]) == [32, 16]
    assert batch_layer_lengths(20, 20, lengths=[32, 16]) == [20, 16]
    assert batch_layer_lengths(64, 20, ratios=[0.5, 0.25]) == [10, 5]  # padded batch: the width follows the longest
    assert batch_layer_lengths(20, 20) is None


def test_batches_flops_sums_batches_and_matches_encoder_flops():
    geometry = dict(hidden=32, intermediate=64, num_layers=2)
    one = encoder_flops(20, [10, 5], **geometry)
    assert batches_flops([(3, 20, 20)], ratios=[0.5, 0.25], **geometry) == 3 * one
    dense = batches_flops([(3, 20, 20), (2, 8, 8)], **geometry)
    assert dense == 3 * encoder_flops(20, None, **geometry) + 2 * encoder_flops(8, None, **geometry)


# ------------------------------------------------------------------------------------------- selection
def test_ratio_counts_hand_cases_padding_batch_of_one_and_one_long_example():
    real = torch.tensor([26, 4, 1])
    assert ratio_counts(real, real, 0.5).tolist() == [13, 2, 1]
    assert ratio_counts(real, torch.tensor([10, 4, 1]), 0.5).tolist() == [10, 2, 1]  # never more than it has
    assert ratio_counts(torch.tensor([7]), torch.tensor([7]), 0.25).tolist() == [2]


def test_gather_with_counts_equals_a_per_example_loop():
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(4, 12, 8, generator=generator)
    lengths = torch.tensor([12, 7, 3, 1])
    mask = torch.arange(12)[None, :] < lengths[:, None]
    counts = ratio_counts(lengths, lengths, 0.5)
    k = int(counts.max())
    order = kcenter_greedy(x, k, m=1, mask=mask)
    kept, kept_mask, _ = gather_tokens(x, mask, order, counts)
    for b in range(4):
        expected = kcenter_greedy(x[b : b + 1, : lengths[b]], int(counts[b]), m=1)[0].sort().values
        real_slots = kept_mask[b].nonzero().squeeze(1)
        assert kept_mask[b].sum() == counts[b]
        assert torch.equal(kept[b, real_slots], x[b, expected])


def test_gather_without_counts_is_unchanged():
    mask = torch.tensor([[True, True, True, False]])
    x = torch.arange(4.0).view(1, 4, 1)
    kept, kept_mask, ordered = gather_tokens(x, mask, first_k(mask, 4))
    assert kept.flatten().tolist() == [0, 1, 2, 3] and kept_mask.tolist() == [[True, True, True, False]]


# ------------------------------------------------------------------------------------------- the patch
@pytest.mark.parametrize("method", RATIO_METHODS)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_ratios_of_one_give_the_dense_logits(method, attn, one_thread):
    model = tiny_bert(attn)
    input_ids, attention_mask = batch(padded=False)
    padded_ids, padded_mask = batch(padded=True)
    with torch.no_grad():
        dense = model(input_ids=input_ids, attention_mask=attention_mask).logits
        dense_padded = model(input_ids=padded_ids, attention_mask=padded_mask).logits
        pyramidize(model, method=method, keep_ratios=[1.0] * LAYERS)
        assert torch.equal(model(input_ids=input_ids, attention_mask=attention_mask).logits, dense)
        # padded batch: the padding columns beyond the longest example are dropped, every real token is kept
        assert torch.allclose(model(input_ids=padded_ids, attention_mask=padded_mask).logits, dense_padded, atol=1e-5)


@pytest.mark.parametrize("method, m", [("coreset", 1), ("coreset", 2), ("coreset", None), ("attention", 1),
                                       ("first_k", 1)])  # fmt: skip
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_each_padded_row_equals_that_example_alone(method, m, attn, one_thread):
    model = pyramidize(tiny_bert(attn), method=method, m=m, keep_ratios=RATIOS)
    input_ids, attention_mask = batch(batch_size=5, tokens=20, seed=1)
    with torch.no_grad():
        together = model(input_ids=input_ids, attention_mask=attention_mask).logits
        for row in range(5):
            real = int(attention_mask[row].sum())
            alone = model(input_ids=input_ids[row : row + 1, :real]).logits
            assert torch.allclose(together[row], alone[0], atol=1e-5), (row, real)


def test_batch_width_follows_the_longest_example(one_thread):
    torch.manual_seed(0)
    model = tiny_bert(model_class=BertModel)
    pyramidize(model, keep_ratios=RATIOS)
    input_ids, attention_mask = batch(batch_size=3, tokens=20, seed=2)
    attention_mask[:, 15:] = 0  # the longest example now has 15 real tokens in a 20-wide tensor
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
    widths = [hidden.shape[1] for hidden in out.hidden_states[1:]]
    assert widths == ratio_lengths(15, RATIOS) == [12, 8, 5]


def test_save_and_load_round_trip(tmp_path, one_thread):
    model = pyramidize(tiny_bert(), method="coreset", m=1, keep_ratios=RATIOS)
    model.save_pretrained(tmp_path)
    loaded = load_pyramid_model(str(tmp_path)).eval()
    assert pyramid_settings(loaded).keep_ratios == RATIOS and pyramid_settings(loaded).lengths is None
    input_ids, attention_mask = batch()
    with torch.no_grad():
        expected = model(input_ids=input_ids, attention_mask=attention_mask).logits
        assert torch.equal(loaded(input_ids=input_ids, attention_mask=attention_mask).logits, expected)


@pytest.mark.parametrize(
    "kwargs, message",
    [(dict(method="input_first_k", keep_ratios=RATIOS), "keep_ratios work with methods"),
     (dict(method="average_pool", keep_ratios=RATIOS, pool_windows=[1, 2, 1]), "keep_ratios work with methods"),
     (dict(lengths=[10, 5, 5], keep_ratios=RATIOS), "not both"),
     (dict(keep_ratios=[0.5, 0.9, 0.1]), "must not increase")],
)  # fmt: skip
def test_bad_ratio_settings_are_clear_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        pyramidize(tiny_bert(), **kwargs)
