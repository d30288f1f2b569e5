"""int8 precision: quantizing a dense or pyramid model keeps the pyramid working, and saved folders name their
precision (pyramid_bert.precision, pyramid_bert.patch.quantize)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.ao.nn.quantized import dynamic as quantized_dynamic

from pyramid_bert import is_pyramidized, load_pyramid_model, pyramid_settings, pyramidize, unpyramidize
from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.hf import kept_input_positions
from pyramid_bert.patch.quantize import model_precision, quantize
from pyramid_bert.precision import PRECISIONS, check_precision, mark_precision, stored_precision
from pyramid_bert.spec import METHODS
from tiny_models import batch, tiny_bert

RATIOS = [0.5, 0.5, 0.25]


def logits(model, inputs):
    input_ids, attention_mask = inputs
    with torch.inference_mode():
        return model(input_ids=input_ids, attention_mask=attention_mask).logits


def pyramid(method: str, **options):
    model = tiny_bert()
    if method == "average_pool":
        return pyramidize(model, method=method, pool_windows=[2, 1, 2])
    if method == "input_first_k":
        return pyramidize(model, [12, 12, 12], method=method)
    return pyramidize(model, keep_ratios=RATIOS, method=method, **options)


def test_int8_swaps_every_linear_and_stays_close_to_fp32():
    model = tiny_bert()
    reference = logits(model, batch())
    quantize(model, "int8")
    assert model_precision(model) == "int8"
    assert not any(type(module) is nn.Linear for module in model.modules())
    quantized = logits(model, batch())
    assert quantized.shape == reference.shape
    assert not torch.equal(quantized, reference)  # it really runs other arithmetic
    assert torch.allclose(quantized, reference, atol=0.05)


def test_int8_scales_each_output_channel_of_a_weight_on_its_own():
    model = quantize(tiny_bert(), "int8")
    weights = [module.weight() for module in model.modules() if isinstance(module, quantized_dynamic.Linear)]
    assert weights and all(weight.qscheme() == torch.per_channel_affine for weight in weights)
    assert all(weight.q_per_channel_scales().numel() == weight.shape[0] for weight in weights)


def test_fp32_is_a_no_op_and_int8_twice_is_one_quantization():
    model = tiny_bert()
    assert quantize(model, "fp32") is model and model_precision(model) == "fp32"
    quantize(model, "int8")
    once = logits(model, batch())
    quantize(model, "int8")
    assert torch.equal(logits(model, batch()), once)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_runs_at_int8_with_the_same_shapes(method):
    fp32 = pyramid(method)
    int8 = quantize(copy.deepcopy(fp32), "int8")  # a copy captures Attention-select's Q and K into its own modules
    assert is_pyramidized(int8) and pyramid_settings(int8) == pyramid_settings(fp32)
    reference, quantized = logits(fp32, batch()), logits(int8, batch())
    assert quantized.shape == reference.shape and torch.isfinite(quantized).all()
    if method not in ("average_pool",):
        kept_fp32 = [real.sum(dim=1) for _, real in kept_input_positions(fp32)]
        kept_int8 = [real.sum(dim=1) for _, real in kept_input_positions(int8)]
        for a, b in zip(kept_fp32, kept_int8, strict=True):
            assert torch.equal(a, b)  # keep counts come from the mask, never from the (int8) values


def test_attention_select_keeps_its_query_and_key_hooks_through_the_swap():
    model = quantize(pyramid("attention"), "int8")  # SDPA: the selection reads Q and K captured by forward hooks
    assert len(model.bert.encoder.layer[0].attention.self.query._forward_hooks) == 1
    assert logits(model, batch()).shape == (4, 3)


def test_a_quantized_pyramid_unpyramidizes_to_the_quantized_dense_model():
    model = quantize(pyramid("coreset"), "int8")
    unpyramidize(model)
    dense = quantize(tiny_bert(), "int8")
    assert torch.allclose(logits(model, batch()), logits(dense, batch()))


def test_int8_refuses_a_model_off_the_cpu(monkeypatch):
    model = tiny_bert()

    class FakeDevice:
        type = "cuda"

        def __str__(self):
            return "cuda:0"

    parameter = next(model.parameters())
    monkeypatch.setattr(type(parameter), "device", property(lambda self: FakeDevice()), raising=False)
    with pytest.raises(ConfigError, match="--precision int8: runs on the CPU only"):
        quantize(model, "int8")


def test_an_unknown_precision_names_the_flag_and_the_choices():
    with pytest.raises(ConfigError, match=r"--precision: must be one of fp32, int8; got 'int4'"):
        quantize(tiny_bert(), "int4")
    assert check_precision("int8") == "int8" and PRECISIONS[0] == "fp32"


def test_a_saved_folder_loads_at_the_precision_its_config_names(tmp_path):
    model = pyramid("coreset")
    reference = logits(model, batch())
    mark_precision(model.config, "int8")
    model.save_pretrained(tmp_path)
    loaded = load_pyramid_model(str(tmp_path))
    assert stored_precision(loaded.config) == "int8"
    assert model_precision(loaded) == "int8" and is_pyramidized(loaded)
    assert torch.allclose(logits(loaded, batch()), reference, atol=0.05)
    as_trained = load_pyramid_model(str(tmp_path), precision="fp32")
    assert model_precision(as_trained) == "fp32"
    assert torch.allclose(logits(as_trained, batch()), reference, atol=1e-5)
    mark_precision(model.config, "fp32")
    assert stored_precision(model.config) == "fp32" and not hasattr(model.config, "precision")


def test_a_deep_copy_of_an_attention_select_pyramid_selects_from_its_own_attention():
    original = pyramid("attention")
    twin = copy.deepcopy(original)
    with torch.no_grad():  # the twin's attention differs: were its hooks the original's, it would select with stale Q, K
        for parameter in twin.bert.encoder.layer[0].attention.self.query.parameters():
            parameter.mul_(3.0)
    inputs = batch()
    before = logits(original, inputs)
    twin_logits = logits(twin, inputs)
    fresh = pyramidize(unpyramidize(copy.deepcopy(twin)), settings=pyramid_settings(twin))
    assert torch.equal(twin_logits, logits(fresh, inputs))
    assert torch.equal(logits(original, inputs), before)
    layer = original.bert.encoder.layer[0].attention.self.query
    assert not hasattr(layer, "_pyramid_output")  # nothing kept between forwards
