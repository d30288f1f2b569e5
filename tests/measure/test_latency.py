"""The deployment benchmark's parts: variants built from one fp32 model, unpadded single sentences, every call
timed, and summaries from raw samples (pyramid_bert.measure.latency)."""

from __future__ import annotations

import pytest
import torch

from pyramid_bert import is_pyramidized
from pyramid_bert.errors import ConfigError
from pyramid_bert.measure.latency import (
    DEFAULT_VARIANTS,
    LATENCY,
    Sample,
    build_variants,
    deploy_samples,
    deploy_variants,
    single_sentences,
    summarize,
)
from pyramid_bert.patch.quantize import model_precision
from pyramid_bert.spec import PyramidSettings
from tiny_models import batch, tiny_bert

SETTINGS = PyramidSettings(None, "coreset", keep_ratios=[0.5, 0.5, 0.5])


def encodings(size=6, tokens=12):
    input_ids, attention_mask = batch(size, tokens)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": torch.zeros(size, dtype=torch.long)}


def test_single_sentences_are_cut_to_their_own_length():
    data = encodings()
    sentences = single_sentences(data, 4)
    assert len(sentences) == 4
    for i, inputs in enumerate(sentences):
        length = int(data["attention_mask"][i].sum())
        assert inputs["input_ids"].shape == (1, length) and bool(inputs["attention_mask"].all())
        assert torch.equal(inputs["input_ids"][0], data["input_ids"][i, :length])


def test_variants_are_built_from_the_fp32_model_which_stays_as_it_was():
    dense = tiny_bert()
    models = build_variants(dense, SETTINGS)
    assert list(models) == ["dense fp32", "dense int8", "pyramid fp32", "pyramid int8"]
    assert not is_pyramidized(dense) and model_precision(dense) == "fp32"
    assert [is_pyramidized(m) for m in models.values()] == [False, False, True, True]
    assert [model_precision(m) for m in models.values()] == ["fp32", "int8", "fp32", "int8"]
    with pytest.raises(ConfigError, match="unique names"):
        build_variants(dense, SETTINGS, [DEFAULT_VARIANTS[0], DEFAULT_VARIANTS[0]])


def test_deploy_variants_keep_the_reference_and_name_the_flag_on_a_bad_precision():
    assert [v.name for v in deploy_variants("int8")] == ["dense fp32", "dense int8", "pyramid int8"]
    assert [v.name for v in deploy_variants("fp32")] == ["dense fp32", "pyramid fp32"]
    with pytest.raises(ConfigError, match="--precision"):
        deploy_variants("int4")


def test_every_variant_is_timed_once_per_sentence_and_repeat_and_each_pass():
    samples = deploy_samples(tiny_bert(), SETTINGS, encodings(), batch_sizes=[1, 4], requests=3, repeats=2)
    latency = [s for s in samples if s.kind == LATENCY]
    assert len(latency) == 4 * 3 * 2
    for name in ("dense fp32", "pyramid int8"):
        assert sorted((s.repeat, s.item) for s in latency if s.variant == name) == [(r, i) for r in range(2) for i in range(3)]
    passes = [s for s in samples if s.kind != LATENCY]
    assert len(passes) == 4 * 2 and {s.batch_size for s in passes} == {4} and all(s.item == -1 for s in passes)
    assert all(s.seconds > 0 for s in samples)


def test_summaries_pair_each_call_with_the_reference_call_of_the_same_sentence_and_repeat():
    def sample(variant, item, seconds):
        return Sample(LATENCY, variant, 1, 1, 0, item, 10, seconds)

    samples = [sample("dense fp32", 0, 4.0), sample("dense fp32", 1, 1.0), sample("dense int8", 0, 2.0),
               sample("dense int8", 1, 1.0), sample("pyramid int8", 0, 1.0), sample("pyramid int8", 1, 0.5)]  # fmt: skip
    rows = {row.variant: row for row in summarize(samples)}
    assert rows["dense fp32"].speedup == 1.0 and rows["dense fp32"].vs_dense_twin is None
    assert rows["dense int8"].speedup == pytest.approx(1.5)  # ratios 2 and 1: median 1.5 (means: 2.5 / 1.5)
    assert rows["pyramid int8"].speedup == pytest.approx(3.0)  # ratios 4 and 2
    assert rows["pyramid int8"].vs_dense_twin == pytest.approx(2.0)  # against dense int8: ratios 2 and 2
    assert rows["dense fp32"].p50_ms == pytest.approx(2500.0) and rows["dense fp32"].calls == 2
    with pytest.raises(ConfigError, match="reference variant"):
        summarize(samples[2:])


def test_compiled_variants_follow_each_chosen_variant_and_pair_with_their_dense_twin():
    from pyramid_bert.measure.latency import deploy_variants, twin_name

    names = [variant.name for variant in deploy_variants("int8", compile=True)]
    assert names == [
        "dense fp32", "dense int8", "pyramid int8",
        "dense fp32 compiled", "dense int8 compiled", "pyramid int8 compiled",
    ]  # fmt: skip
    assert twin_name("pyramid int8 compiled") == "dense int8 compiled"
    assert [variant.name for variant in deploy_variants("fp32")] == ["dense fp32", "pyramid fp32"]
