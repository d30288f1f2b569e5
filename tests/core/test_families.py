"""Every encoder family pyramidize supports beyond BERT, on tiny random models built from each family's config:
full-length schedules equal the dense model, padded rows equal each example alone, kept tokens keep their original
order, settings survive save / load, and unpyramidize restores the dense model."""

import pytest
import torch

from pyramid_bert import (
    METHODS,
    is_pyramidized,
    kept_input_positions,
    load_pyramid_model,
    pyramid_settings,
    pyramidize,
    unpyramidize,
)
from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.hf import PyramidLayerMixin
from tiny_models import LAYERS, batch, tiny_albert, tiny_deberta, tiny_distilbert, tiny_modernbert


def tiny_modernbert_mean(attn="sdpa", seed=0, **extra):
    return tiny_modernbert(attn, seed, pooling="mean", **extra)


BUILDERS = {
    "distilbert": tiny_distilbert, "albert": tiny_albert, "deberta": tiny_deberta, "modernbert": tiny_modernbert,
    "modernbert-mean": tiny_modernbert_mean,
}  # fmt: skip
ATTENTION = {family: ("eager", "sdpa") for family in BUILDERS} | {"deberta": ("eager",)}
CASES = [(family, attn) for family, kinds in ATTENTION.items() for attn in kinds]
NO_DUPLICITY = {"deberta"}  # its attention takes a boolean mask: refused with a ConfigError


def schedule(method, tokens=20):
    if method == "average_pool":
        return dict(pool_windows=[1, 2, 3])
    if method == "input_first_k":
        return dict(lengths=[tokens // 2] * LAYERS)
    return dict(lengths=[tokens - 4, tokens // 2, tokens // 3])


def logits(model, input_ids, attention_mask):
    with torch.no_grad():
        return model(input_ids=input_ids, attention_mask=attention_mask).logits


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("family", "attn"), CASES)
def test_full_length_schedule_gives_exactly_the_dense_logits(family, attn, method):
    model = BUILDERS[family](attn)
    input_ids, attention_mask = batch()
    dense = logits(model, input_ids, attention_mask)
    if method == "average_pool":
        pyramidize(model, method=method, pool_windows=[1] * LAYERS)
    else:
        pyramidize(model, [20] * LAYERS, method=method)
    assert torch.equal(dense, logits(model, input_ids, attention_mask))


@pytest.mark.parametrize("position", ["middle", "end"])
@pytest.mark.parametrize("method", [name for name in METHODS if name != "random"])  # random draws per layout
@pytest.mark.parametrize(("family", "attn"), CASES)
def test_padded_rows_equal_each_example_alone(family, attn, method, position):
    model = pyramidize(BUILDERS[family](attn), method=method, position=position, **schedule(method))
    input_ids, attention_mask = batch(batch_size=5, tokens=20, seed=3)
    assert attention_mask.sum(dim=1).tolist() == [20, 4, 15, 16, 18]
    together = logits(model, input_ids, attention_mask)
    for row, n in enumerate(attention_mask.sum(dim=1).tolist()):
        alone = logits(model, input_ids[row : row + 1, :n], attention_mask[row : row + 1, :n])
        assert torch.allclose(together[row], alone[0], atol=1e-5), (method, row, n)


SIZE_VARIANTS = [
    dict(distance="cosine"), dict(distance="standardized", m=None), dict(duplicity_attention=True),
    dict(merge=True), dict(duplicity_attention=True, merge=True, m=2),
]  # fmt: skip


ENERGY_VARIANTS = [dict(method="energy", keep_ratios=True), dict(method="energy", duplicity_attention=True)]


@pytest.mark.parametrize("options", SIZE_VARIANTS + [dict(keep_ratios=True)] + ENERGY_VARIANTS, ids=str)
@pytest.mark.parametrize(("family", "attn"), CASES)
def test_core_set_variants_and_keep_ratios_give_each_example_its_own_result(family, attn, options):
    options = dict(options)
    if family in NO_DUPLICITY and options.get("duplicity_attention"):
        with pytest.raises(ConfigError, match="--duplicity-attention: not supported"):
            pyramidize(BUILDERS[family](attn), [14, 9, 5], **options)
        return
    if options.pop("keep_ratios", False):
        options["keep_ratios"] = [0.8, 0.5, 0.3]
    else:
        options["lengths"] = [14, 9, 5]
    model = pyramidize(BUILDERS[family](attn), **options)
    input_ids, attention_mask = batch(batch_size=4, tokens=20, seed=6)
    together = logits(model, input_ids, attention_mask)
    for row, n in enumerate(attention_mask.sum(dim=1).tolist()):
        alone = logits(model, input_ids[row : row + 1, :n], attention_mask[row : row + 1, :n])
        assert torch.allclose(together[row], alone[0], atol=1e-5), (options, row, n)


def record_selections(model):
    """Wrap every pyramid layer's selection step: [(input hidden [B, n, D], kept [B, k, D]), ...] in call order."""
    calls = []
    for module in {id(m): m for m in model.modules() if isinstance(m, PyramidLayerMixin)}.values():
        original = module._pyramid_reduce

        def recorded(hidden, key_mask, weights, original=original):
            kept, kept_mask = original(hidden, key_mask, weights)
            calls.append((hidden, kept))
            return kept, kept_mask

        module._pyramid_reduce = recorded
    return calls


@pytest.mark.parametrize("position", ["middle", "end"])
@pytest.mark.parametrize(("method", "m"), [("coreset", 1), ("coreset", None), ("attention", 1), ("random", 1)])
@pytest.mark.parametrize(("family", "attn"), CASES)
def test_kept_tokens_are_input_rows_in_their_original_order(family, attn, method, m, position):
    """Follow every kept real row back to the row of the layer's input it is: CLS first, positions increasing, and
    the same positions kept_input_positions reports (padding rows may coincide, e.g. in DeBERTa)."""
    model = pyramidize(BUILDERS[family](attn), [14, 9, 5], method=method, m=m, position=position, seed=1)
    calls = record_selections(model)
    input_ids, attention_mask = batch(batch_size=4, tokens=20, seed=5)
    logits(model, input_ids, attention_mask)
    assert len(calls) == LAYERS
    positions = torch.arange(20).expand(4, 20)
    for (chosen_from, kept), (reported, real) in zip(calls, kept_input_positions(model), strict=True):
        match = (kept[:, :, None, :] == chosen_from[:, None, :, :]).all(dim=-1)  # [B, k, n]
        assert match.sum(dim=-1)[real].eq(1).all() and match.any(dim=-1).all()
        positions = positions.gather(1, match.float().argmax(dim=-1))
        assert positions[:, 0].eq(0).all()
        for row in range(4):
            assert (positions[row][real[row]].diff() > 0).all()
        assert torch.equal(positions[real], reported[real])
    assert positions.shape == (4, 5)


@pytest.mark.parametrize("family", BUILDERS)
def test_save_load_round_trip_and_unpyramidize(family, tmp_path):
    options = dict(merge=True) if family in NO_DUPLICITY else dict(duplicity_attention=True)
    model = pyramidize(BUILDERS[family](), [16, 10, 6], method="coreset", m=0.3, **options)
    input_ids, attention_mask = batch()
    model.save_pretrained(tmp_path)
    reloaded = load_pyramid_model(str(tmp_path)).eval()
    assert is_pyramidized(reloaded) and pyramid_settings(reloaded) == pyramid_settings(model)
    assert torch.equal(logits(model, input_ids, attention_mask), logits(reloaded, input_ids, attention_mask))
    dense = logits(BUILDERS[family](), input_ids, attention_mask)
    unpyramidize(reloaded)
    unpyramidize(reloaded)  # idempotent
    assert not is_pyramidized(reloaded) and not hasattr(reloaded.config, "pyramid")
    assert not any(type(m).__name__.startswith("Pyramid") or hasattr(m, "_pyramid") for m in reloaded.modules())
    assert torch.equal(dense, logits(reloaded, input_ids, attention_mask))


@pytest.mark.parametrize("family", [family for family, kinds in ATTENTION.items() if len(kinds) > 1])
def test_attention_select_chooses_the_same_under_sdpa_and_eager(family):
    input_ids, attention_mask = batch(batch_size=4, tokens=20, seed=9)
    results = [
        logits(pyramidize(BUILDERS[family](attn, seed=2), [14, 8, 4], method="attention"), input_ids, attention_mask)
        for attn in ATTENTION[family]
    ]
    assert torch.allclose(results[0], results[-1], atol=1e-5)


@pytest.mark.parametrize("family", BUILDERS)
def test_selection_trains_every_layer(family):
    model = pyramidize(BUILDERS[family]().train(), [12, 8, 4], m=0.25)
    input_ids, attention_mask = batch(batch_size=8, tokens=16, seed=1)
    loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=input_ids[:, 1] % 3).loss
    loss.backward()
    layers = {id(m): m for m in model.modules() if isinstance(m, PyramidLayerMixin)}.values()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for layer in layers for p in layer.parameters())


def test_albert_calls_its_one_shared_layer_at_each_length():
    model = tiny_albert()
    shared = model.albert.encoder.albert_layer_groups[0].albert_layers[0]
    seen = []
    shared.ffn.register_forward_hook(lambda _m, inputs, _out: seen.append(inputs[0].shape[1]))
    pyramidize(model, [16, 10, 6])
    logits(model, *batch(tokens=20))
    assert seen == [16, 10, 6]
    assert sum(isinstance(m, PyramidLayerMixin) for m in model.modules()) == 1


def test_albert_with_several_layers_per_group_is_refused():
    with pytest.raises(ConfigError, match="inner_group_num=2 is not supported"):
        pyramidize(tiny_albert(inner_group_num=2), [16, 10, 6])


def dense_deberta_layer(encoder, j, hidden, positions):
    """The model's own layer j on one example's tokens ``hidden [1, k, D]`` at ``positions [k]``, relative
    positions in the model's native single-example form ``[1, k, k]``."""
    from transformers.models.deberta_v2.modeling_deberta_v2 import make_log_bucket_position

    layer = encoder.layer[j]
    relative = make_log_bucket_position(positions[:, None] - positions[None, :], 8, 64).long()[None]
    everything = torch.ones(1, 1, len(positions), len(positions), dtype=torch.bool)
    with torch.no_grad():
        output, _ = layer._pyramid_original_class.forward(
            layer, hidden, everything, relative_pos=relative, rel_embeddings=encoder.get_rel_embedding()
        )
    return output[0]


def test_deberta_relative_positions_are_those_of_the_kept_tokens_original_positions():
    """Each layer of a pyramid DeBERTa equals the model's own layer run on one example's kept tokens with relative
    positions built from their ORIGINAL positions, and not from 0..k-1."""
    model = pyramidize(tiny_deberta(initializer_range=0.3), [14, 9, 5], position="end")  # positions matter
    encoder = model.deberta.encoder
    inputs, outputs = [], []
    for layer in encoder.layer:
        layer.register_forward_pre_hook(lambda _m, args: inputs.append(args[0]))
        layer.register_forward_hook(lambda _m, _args, out: outputs.append(out))
    input_ids, attention_mask = batch(batch_size=3, tokens=20, seed=8)  # 20, 17, 20 real tokens
    logits(model, input_ids, attention_mask)
    kept = kept_input_positions(model)
    checked = moved = 0
    for j in (1, 2):  # layers whose input tokens are no longer 0..n-1
        positions, real = kept[j - 1]
        state = encoder._pyramid_states[j]
        for b in range(3):
            p, hidden = positions[b][real[b]], inputs[j][b : b + 1, real[b]]
            slots = state.kept_mask[b]
            selected = state.kept_order[b][slots]  # end position: the layer's output rows it kept
            reference = dense_deberta_layer(encoder, j, hidden, p)[selected]
            assert torch.allclose(outputs[j][b][slots], reference, atol=1e-5)
            if not torch.equal(p, torch.arange(len(p))):  # 0..k-1 would give another result
                from_zero = dense_deberta_layer(encoder, j, hidden, torch.arange(len(p)))[selected]
                assert not torch.allclose(outputs[j][b][slots], from_zero, atol=0.05)
                moved += 1
            checked += 1
    assert checked == 6 and moved >= 5


def test_deberta_refuses_what_it_cannot_run():
    with pytest.raises(ConfigError, match="conv_kernel_size > 0"):
        pyramidize(tiny_deberta(conv_kernel_size=3), [16, 10, 6])
    with pytest.raises(ConfigError, match="attn_implementation='sdpa' is not supported"):
        model = tiny_deberta()
        model.config._attn_implementation = "sdpa"
        pyramidize(model, [16, 10, 6])


@pytest.mark.parametrize("family", BUILDERS)
def test_flops_model_counts_what_the_layers_compute(family):
    """FLOPs counted by torch in the pyramid layers (dense = a full-length schedule) equal the cost model with the
    family's geometry: DistilBERT's config names, ALBERT per call of its shared layer, DeBERTa's relative-position
    terms (less the per-batch projections of its relative embeddings, which the model leaves out)."""
    from torch.utils.flop_counter import FlopCounterMode

    from pyramid_bert.geometry import flops_geometry
    from pyramid_bert.schedule import encoder_flops

    for lengths in ([24] * LAYERS, [12, 6, 3]):
        model = pyramidize(BUILDERS[family]("eager"), lengths, method="first_k", position="middle")
        layers = [name for name, module in model.named_modules() if isinstance(module, PyramidLayerMixin)]
        counter = FlopCounterMode(display=False)
        with counter, torch.no_grad():
            model(input_ids=torch.randint(5, 99, (2, 24)))
        counts = counter.get_flop_counts()
        counted = sum(sum(counts[f"{type(model).__name__}.{name}"].values()) for name in layers)
        expected = 2 * encoder_flops(24, lengths, **flops_geometry(model.config))
        if family == "deberta":  # share_att_key: query and key projections of the 2 * 8 bucket embeddings, per layer
            expected += LAYERS * 2 * (2 * 2 * 8 * 32 * 32)
        assert counted == expected, (lengths, counted, expected)


def dense_modernbert_layer(model, j, hidden, positions):
    """The model's own layer j on one example's tokens ``hidden [1, k, D]`` at original ``positions [k]``: rotary
    embeddings from those positions, and for a local layer the model's own window rule over them."""
    layer = model.model.layers[j]
    rotary = model.model.rotary_emb(hidden, positions[None], layer.attention_type)
    mask = None
    if layer.attention_type == "sliding_attention":
        mask = ((positions[:, None] - positions[None, :]).abs() <= model.config.sliding_window)[None, None]
        if model.config._attn_implementation == "eager":  # additive
            mask = torch.zeros(mask.shape).masked_fill(~mask, torch.finfo(torch.float32).min)
    with torch.no_grad():
        return layer._pyramid_original_class.forward(layer, hidden, attention_mask=mask, position_embeddings=rotary)[0]


@pytest.mark.parametrize("spread", [1, 2])  # 2: the input comes with position_ids 0, 2, 4, ...
@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_modernbert_rotary_and_local_window_follow_the_kept_tokens_original_positions(attn, spread):
    """Each layer of a pyramid ModernBERT equals the model's own layer run on one example's kept tokens with cos /
    sin and the sliding window of their ORIGINAL positions (the input's position_ids when given), not 0..k-1."""
    model = pyramidize(tiny_modernbert(attn, initializer_range=0.3), [14, 9, 5], position="end")
    inputs, outputs = [], []
    for layer in model.model.layers:
        layer.register_forward_pre_hook(lambda _m, args: inputs.append(args[0]))
        layer.register_forward_hook(lambda _m, _args, out: outputs.append(out))
    input_ids, attention_mask = batch(batch_size=3, tokens=20, seed=8)  # 20, 17, 20 real tokens
    with torch.no_grad():
        model(input_ids=input_ids, attention_mask=attention_mask, position_ids=torch.arange(20)[None] * spread)
    kept = kept_input_positions(model)
    moved = 0
    for j in (1, 2):  # layer 1 is local, layer 2 global
        positions, real = kept[j - 1]
        state = model.model._pyramid_states[j]
        for b in range(3):
            p, hidden = positions[b][real[b]] * spread, inputs[j][b : b + 1, real[b]]
            slots = state.kept_mask[b]
            selected = state.kept_order[b][slots]
            reference = dense_modernbert_layer(model, j, hidden, p)[selected]
            assert torch.allclose(outputs[j][b][slots], reference, atol=1e-5)
            if not torch.equal(p, torch.arange(len(p))):
                from_zero = dense_modernbert_layer(model, j, hidden, torch.arange(len(p)))[selected]
                assert not torch.allclose(outputs[j][b][slots], from_zero, atol=0.05)
                moved += 1
    assert moved >= 5


def test_modernbert_mean_pooling_weighs_kept_tokens_by_the_input_tokens_they_stand_for():
    model = pyramidize(tiny_modernbert_mean(), [14, 9, 5], merge=True, duplicity_attention=True)
    pooled = []
    model.head.register_forward_pre_hook(lambda _m, args: pooled.append(args[0]))
    input_ids, attention_mask = batch(batch_size=4, tokens=20, seed=6)
    with torch.no_grad():
        last = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True).hidden_states[-1]
    key_mask, sizes = model.model._pyramid_last
    assert torch.equal(sizes.sum(dim=1), attention_mask.sum(dim=1).float())  # every input token counted once
    weighted = (last * sizes[:, :, None]).sum(dim=1) / sizes.sum(dim=1, keepdim=True)
    plain = (last * key_mask[:, :, None]).sum(dim=1) / key_mask.sum(dim=1, keepdim=True)
    assert torch.allclose(pooled[0], weighted, atol=1e-6)
    assert not torch.allclose(pooled[0], plain, atol=1e-3)


def test_modernbert_refuses_packed_batches_and_other_kernels():
    model = pyramidize(tiny_modernbert(), [16, 10, 6])
    with pytest.raises(ConfigError, match="packed .unpadded. batches .cu_seq_lens_q. are not supported"):
        model(input_ids=batch()[0], cu_seq_lens_q=torch.tensor([0, 20]))
    other = tiny_modernbert()
    other.config._attn_implementation = "flash_attention_2"
    with pytest.raises(ConfigError, match="attn_implementation='flash_attention_2' is not supported"):
        pyramidize(other, [16, 10, 6])



@pytest.mark.parametrize("family", ["distilbert", "deberta", "modernbert-mean"])  # ALBERT has no checkpointing
def test_gradient_checkpointing_gives_the_same_gradients(family):
    input_ids, attention_mask = batch(batch_size=4, tokens=20)
    grads = []
    for checkpointing in (False, True):
        model = BUILDERS[family]().train()
        for module in model.modules():  # no dropout: the two runs must draw nothing
            if isinstance(module, torch.nn.Dropout):
                module.p = 0.0
        pyramidize(model, [14, 9, 5], m=0.3, merge=True)
        if checkpointing:
            model.gradient_checkpointing_enable()
        calls = record_selections(model)
        model(input_ids=input_ids, attention_mask=attention_mask, labels=torch.tensor([0, 1, 2, 0])).loss.backward()
        assert len(calls) == LAYERS * (2 if checkpointing else 1)  # checkpointing re-ran every layer
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
