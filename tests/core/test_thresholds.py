"""Keep thresholds (adaptive per-example counts, LTP-style): the pure functions against their references, the
pyramid forward against per-example and dense runs, the soft mask's hard limit, validation and the saved config."""

from __future__ import annotations

import pytest
import torch

from pyramid_bert import kept_input_positions, load_pyramid_model, pyramid_settings, pyramidize
from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.plan import plan_batch
from pyramid_bert.spec import PyramidSettings
from pyramid_bert.thresholds import (
    soft_keep_weights,
    soft_keep_weights_reference,
    threshold_counts,
    threshold_counts_reference,
    threshold_width_bound,
)
from tiny_models import batch, tiny_bert

THRESHOLDS = [0.9, 1.0, 1.05]


def random_scores(batch_size: int, tokens: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Relative scores of softmax attention over real keys (mean 1 per example) and a padding mask ``[B, n]``."""
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, tokens + 1, (batch_size,), generator=generator)
    lengths[0] = tokens
    mask = torch.arange(tokens)[None, :] < lengths[:, None]
    logits = torch.randn(batch_size, 3, tokens, tokens, generator=generator).masked_fill(~mask[:, None, None], -1e9)
    probs = logits.softmax(-1) * mask[:, None, :, None]
    return probs.sum(dim=(1, 2)) / 3, mask


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("threshold", [0.0, 0.5, 1.0, 1.7, 4.0])
def test_counts_equal_the_reference_on_random_padded_scores(seed, threshold):
    scores, mask = random_scores(5, 13, seed)
    assert torch.equal(threshold_counts(scores, mask, threshold), threshold_counts_reference(scores, mask, threshold))
    one = threshold_counts(scores[1:2], mask[1:2], threshold)  # batch of one
    assert torch.equal(one, threshold_counts_reference(scores[1:2], mask[1:2], threshold))


def test_counts_keep_ties_at_the_threshold_and_cls_whatever_its_score():
    scores = torch.tensor([[0.0, 1.0, 1.0, 0.5, 1.5], [3.0, 1.0, 1.0, 1.0, 9.0]])
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    assert threshold_counts(scores, mask, 1.0).tolist() == [4, 3]  # CLS + 1.0, 1.0, 1.5; padding never
    assert threshold_counts(scores, mask, 0.0).tolist() == mask.sum(1).tolist()  # 0 keeps every real token


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("threshold", [1.0, 1.3, 2.0, 3.5])
def test_no_count_exceeds_the_width_bound(seed, threshold):
    scores, mask = random_scores(6, 17, seed)
    scores = scores * 4 ** torch.rand(scores.shape, generator=torch.Generator().manual_seed(seed))  # skewed
    scores = scores / (scores * mask).sum(1, keepdim=True) * mask.sum(1, keepdim=True)  # mean 1 again
    assert int(threshold_counts(scores, mask, threshold).max()) <= threshold_width_bound(17, threshold)
    flat = mask.float()  # uniform attention: every score exactly 1
    assert threshold_width_bound(17, 1.0) == 17 == int(threshold_counts(flat, mask, 1.0).max())


def test_width_bound_values():
    assert threshold_width_bound(20, 0.5) == 20 and threshold_width_bound(20, 2.0) == 11
    assert threshold_width_bound(100, 4.0) == 26 and threshold_width_bound(3, 10.0) == 1


@pytest.mark.parametrize("temperature", [1e-3, 0.1, 2.0])
def test_soft_weights_equal_the_reference_and_become_the_hard_mask(temperature):
    scores, mask = random_scores(4, 11, 2)
    weights = soft_keep_weights(scores, mask, 1.0, temperature)
    assert torch.allclose(weights, soft_keep_weights_reference(scores, mask, 1.0, temperature), atol=1e-6)
    hard = soft_keep_weights(scores, mask, 1.0, 1e-9)
    assert torch.equal(hard.sum(1).long(), threshold_counts(scores, mask, 1.0))


# ----------------------------------------------------------------------------------------- the model
def threshold_model(attn: str = "sdpa", thresholds=THRESHOLDS, **extra) -> torch.nn.Module:
    model = tiny_bert(attn, **extra)
    return pyramidize(model, method="attention", keep_thresholds=thresholds)


def kept_counts(model: torch.nn.Module) -> list[list[int]]:
    return [real.sum(1).tolist() for _, real in kept_input_positions(model)]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_threshold_zero_gives_the_dense_logits(attn):
    dense, pyramid = tiny_bert(attn), threshold_model(attn, [0.0, 0.0, 0.0])
    for input_ids, attention_mask in (batch(), batch(batch_size=1, tokens=9, padded=False)):
        with torch.no_grad():
            expected = dense(input_ids=input_ids, attention_mask=attention_mask).logits
            got = pyramid(input_ids=input_ids, attention_mask=attention_mask).logits
        assert torch.allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_batched_counts_and_logits_equal_each_example_alone(attn):
    """The slow reference: every example run alone, unpadded (its counts cannot depend on the others)."""
    model = threshold_model(attn)
    input_ids, attention_mask = batch(batch_size=5, tokens=20, seed=4)
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        batched = kept_counts(model)
        assert len({tuple(layer) for layer in batched}) > 1 and min(min(layer) for layer in batched) < 20
        for b in range(5):
            real = int(attention_mask[b].sum())
            alone = model(input_ids=input_ids[b : b + 1, :real], attention_mask=attention_mask[b : b + 1, :real])
            assert torch.allclose(alone.logits, logits[b : b + 1], atol=1e-5), b
            assert [layer[0] for layer in kept_counts(model)] == [layer[b] for layer in batched], b


def test_first_layer_counts_equal_the_reference_from_the_dense_attention():
    """Layer 1 sees the dense model's attention: its counts follow from the output attentions by hand."""
    dense, model = tiny_bert("eager"), threshold_model("eager")
    input_ids, attention_mask = batch(batch_size=4, tokens=16, seed=7)
    with torch.no_grad():
        probs = dense(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True).attentions[0]
        model(input_ids=input_ids, attention_mask=attention_mask)
    mask = attention_mask.bool()
    scores = (probs * mask[:, None, :, None]).sum(dim=(1, 2)) / probs.shape[1]
    assert kept_counts(model)[0] == threshold_counts_reference(scores, mask, THRESHOLDS[0]).tolist()


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_soft_mask_tends_to_hard_pruning_as_the_temperature_falls(attn):
    """Training mode (dropout off), T -> 0: the soft mask's logits are hard pruning's; a warm T differs."""
    no_dropout = dict(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    hard = threshold_model(attn, **no_dropout)
    input_ids, attention_mask = batch(batch_size=4, tokens=20, seed=4)
    with torch.no_grad():
        expected = hard(input_ids=input_ids, attention_mask=attention_mask).logits
        results = {}
        for temperature in (1e-7, 0.5):
            soft = pyramidize(tiny_bert(attn, **no_dropout), method="attention", keep_thresholds=THRESHOLDS,
                              soft_threshold_temperature=temperature).train()  # fmt: skip
            results[temperature] = soft(input_ids=input_ids, attention_mask=attention_mask).logits
            assert kept_counts(soft) == [attention_mask.sum(1).tolist()] * 3  # nothing shrinks in training
            soft.eval()
            assert torch.allclose(soft(input_ids=input_ids, attention_mask=attention_mask).logits, expected)
    assert torch.allclose(results[1e-7], expected, rtol=0, atol=1e-6)
    assert not torch.allclose(results[0.5], expected, rtol=0, atol=1e-5)


def test_soft_mask_trains_the_model_weights():
    model = pyramidize(tiny_bert(), method="attention", keep_thresholds=THRESHOLDS, soft_threshold_temperature=0.1)
    model.train()
    input_ids, attention_mask = batch()
    output = model(input_ids=input_ids, attention_mask=attention_mask, labels=torch.tensor([0, 1, 2, 0]))
    output.loss.backward()
    assert model.bert.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0


def test_plan_of_thresholds_marks_selecting_layers_and_bounds_widths():
    settings = PyramidSettings(None, "attention", keep_thresholds=[0.0, 2.0, 0.0]).validated(3)
    plan = plan_batch(settings, torch.ones(2, 20, dtype=torch.bool), masked=False, num_layers=3)
    assert [(layer.width, layer.keeps_all) for layer in plan.layers] == [(20, True), (11, False), (11, True)]
    assert plan.padded  # after a selecting layer the examples' counts differ


# ----------------------------------------------------------------------------------------- settings
@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(method="coreset", keep_thresholds=[1, 1, 1]), "keep_thresholds: for methods attention only"),
        (dict(keep_thresholds=[1.0, 1.0]), "keep_thresholds: must be 3 finite numbers >= 0"),
        (dict(keep_thresholds=[1.0, -0.1, 1.0]), "keep_thresholds: must be 3 finite numbers >= 0"),
        (dict(keep_thresholds=[1.0, float("nan"), 1.0]), "keep_thresholds: must be 3"),
        (dict(keep_thresholds=[1.0, True, 1.0]), "keep_thresholds: must be 3"),
        (dict(keep_thresholds=[1, 1, 1], lengths=[4, 4, 4]), "keep_thresholds: give lengths, keep_ratios or"),
        (dict(keep_thresholds=[1, 1, 1], keep_ratios=[1, 1, 1]), "keep_thresholds: give lengths, keep_ratios or"),
        (dict(lengths=[4, 4, 4], soft_threshold_temperature=0.1), "soft_threshold_temperature: needs keep_thr"),
        (dict(keep_thresholds=[1, 1, 1], soft_threshold_temperature=-1), "soft_threshold_temperature: must be"),
    ],
)
def test_bad_threshold_settings_name_the_field(settings, message):
    settings = {"lengths": None, "method": "attention", **settings}
    with pytest.raises(ConfigError, match=message):
        PyramidSettings(**settings).validated(3)


def test_threshold_settings_round_trip_through_the_saved_config(tmp_path):
    model = pyramidize(tiny_bert(), method="attention", keep_thresholds=[0, 1, 2], soft_threshold_temperature=0.01)
    settings = pyramid_settings(model)
    assert settings.keep_thresholds == [0.0, 1.0, 2.0] and PyramidSettings.from_dict(settings.to_dict()) == settings
    model.save_pretrained(tmp_path)
    loaded = load_pyramid_model(str(tmp_path))
    assert pyramid_settings(loaded) == settings
    input_ids, attention_mask = batch()
    with torch.no_grad():
        expected = model(input_ids=input_ids, attention_mask=attention_mask).logits
        assert torch.allclose(loaded(input_ids=input_ids, attention_mask=attention_mask).logits, expected)
