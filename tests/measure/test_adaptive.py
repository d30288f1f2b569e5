"""Keep thresholds in practice: calibration to target keep ratios, realised counts, their FLOPs, and the flags."""

from __future__ import annotations

import pytest
import torch

from pyramid_bert import cli, pyramid_settings, pyramidize
from pyramid_bert.errors import ConfigError
from pyramid_bert.measure.adaptive import (
    calibrate_thresholds,
    count_summary,
    realised_counts,
    realised_flops,
    threshold_for_ratio,
)
from pyramid_bert.measure.speed import predicted_split_speedup
from pyramid_bert.schedule import encoder_flops
from pyramid_bert.training.batching import Batch
from pyramid_bert.training.config import FinetuneConfig, apply_selection, resolve_lengths
from tiny_models import LAYERS, batch, tiny_bert

GEOMETRY = dict(hidden=32, intermediate=37, num_layers=LAYERS)


def batches(count: int = 3) -> list[Batch]:
    made = []
    for seed in range(count):
        input_ids, attention_mask = batch(batch_size=6, tokens=24, seed=seed)
        made.append(Batch(torch.arange(6) + 6 * seed, {"input_ids": input_ids, "attention_mask": attention_mask}))
    return made


def test_threshold_for_ratio_hits_a_reachable_target_exactly():
    scores = [torch.tensor([3.0, 1.0, 2.0]), torch.tensor([0.5])]  # real tokens 4 and 2 (CLS included)
    real = torch.tensor([4, 2])
    # keep ratio of threshold t: mean(1 + #{>= t}) / n: t in (2, 3] -> (2/4 + 1/2) / 2 = 0.5
    threshold = threshold_for_ratio(scores, real, 0.5)
    assert 2.0 < threshold <= 3.0
    assert 0.0 <= threshold_for_ratio(scores, real, 1.0) <= 0.5  # keeps everything
    assert threshold_for_ratio(scores, real, 0.01) > 3.0  # CLS alone is the nearest
    with pytest.raises(ConfigError, match="target keep ratio"):
        threshold_for_ratio(scores, real, 0.0)


@pytest.mark.parametrize("targets", [[0.7, 0.5, 0.3], [1.0, 0.6, 0.6]])
def test_calibrated_thresholds_realise_the_target_mean_keep_ratios(targets):
    model, data = tiny_bert(), batches()
    thresholds = calibrate_thresholds(model, targets, data)
    assert pyramid_settings(model).keep_thresholds == thresholds and (thresholds[0] == 0.0) == (targets[0] == 1.0)
    summary = count_summary(realised_counts(model, data))
    for layer, target in zip(summary, targets, strict=True):
        assert layer["keep_ratio"] == pytest.approx(target, abs=0.03)
        assert layer["min"] <= layer["mean"] <= layer["max"] and layer["std"] >= 0


def test_realised_counts_and_flops_follow_the_kept_tokens():
    model = pyramidize(tiny_bert(), method="attention", keep_thresholds=[0.95, 1.0, 1.0])
    data = batches(2)
    realised = realised_counts(model, data)
    assert realised.counts.shape == (LAYERS, 12) and torch.equal(realised.real, torch.cat(
        [b.inputs["attention_mask"].sum(1) for b in data]))  # fmt: skip
    assert (realised.counts <= realised.real).all() and (realised.counts[1:] <= realised.counts[:-1]).all()
    for (size, width, widths), b in zip(realised.widths, range(2), strict=True):
        assert widths == realised.counts[:, 6 * b : 6 * b + 6].amax(dim=1).tolist() and size == 6 and width == 24
    flops = realised_flops(realised, GEOMETRY)
    n0, counts0 = int(realised.real[0]), realised.counts[:, 0].tolist()
    assert flops["per_example"] > encoder_flops(n0, counts0, **GEOMETRY)  # a sum over the 12 examples
    assert flops["batched"] < flops["dense_batched"] and flops["per_example"] < flops["dense_per_example"]
    predicted = predicted_split_speedup(model, data, data)
    assert predicted == pytest.approx(flops["dense_batched"] / flops["batched"])


def test_finetune_config_and_flag_carry_thresholds():
    parser = cli.build_parser()
    words = ["finetune", "--task", "rt-polarity", "--out", "x", "--method", "attention", "--keep-thresholds",
             "0,1,1.2", "--soft-threshold-temperature", "0.05"]  # fmt: skip
    from pyramid_bert.commands.finetune import config_from_args

    config = config_from_args(parser.parse_args(words))
    assert config.keep_thresholds == [0.0, 1.0, 1.2] and config.soft_threshold_temperature == 0.05
    assert FinetuneConfig.from_dict(config.to_json_dict()) == config
    assert resolve_lengths(config, 20, LAYERS) == [20] * LAYERS
    model = apply_selection(tiny_bert(), config, None)
    assert pyramid_settings(model).keep_thresholds == [0.0, 1.0, 1.2]
    assert pyramid_settings(model).soft_threshold_temperature == 0.05
    evaluate = parser.parse_args(["evaluate", "ckpt", "--only-infer", "attention", "--keep-thresholds", "1,1,1"])
    assert evaluate.keep_thresholds == [1.0, 1.0, 1.0]
    with pytest.raises(SystemExit):
        parser.parse_args([*words[:-2], "--keep-thresholds", "1,-1,1"])


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(method="coreset"), "--keep-thresholds: keep_thresholds: for methods attention only"),
        (dict(keep_thresholds=[1.0, 1.0]), "--keep-thresholds: keep_thresholds: must be 3"),
        (dict(keep_ratios=[1, 1, 1]), "--keep-thresholds: the one schedule; remove --keep-ratios"),
    ],
)
def test_bad_threshold_configs_name_the_flag(changes, message):
    config = FinetuneConfig(task="rt-polarity", method="attention", keep_thresholds=[1.0, 1.0, 1.0])
    config = FinetuneConfig.from_dict({**config.to_dict(), **changes})
    with pytest.raises(ConfigError, match=message):
        resolve_lengths(config, 20, LAYERS)
