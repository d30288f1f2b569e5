import pytest
import torch
from transformers import (
    BertModel,
)

from pyramid_bert import METHODS, is_pyramidized, load_pyramid_model, pyramid_settings, pyramidize, unpyramidize
from pyramid_bert.errors import ConfigError
from tiny_models import LAYERS, batch, tiny_bert, tiny_roberta


def pyramid_kwargs(method, tokens, layers=LAYERS):
    if method == "average_pool":
        return dict(pool_windows=[1, 2, 1][:layers] + [1] * max(0, layers - 3))
    if method == "input_first_k":
        return dict(lengths=[tokens // 2] * layers)
    return dict(lengths=[tokens - 4, tokens // 2, tokens // 3][:layers])


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_full_lengths_give_exactly_the_dense_logits(method, attn):
    model = tiny_bert(attn)
    input_ids, attention_mask = batch()
    with torch.no_grad():
        dense = model(input_ids=input_ids, attention_mask=attention_mask).logits
        if method == "average_pool":
            pyramidize(model, method=method, pool_windows=[1] * LAYERS)
        else:
            pyramidize(model, [20] * LAYERS, method=method)
        pyramid = model(input_ids=input_ids, attention_mask=attention_mask).logits
    assert torch.equal(dense, pyramid)


@pytest.mark.parametrize("method", [name for name in METHODS if name != "random"])  # random draws per layout
@pytest.mark.parametrize("position", ["middle", "end"])
def test_padded_batch_equals_each_example_alone(method, position):
    """The batched pyramid on padded rows gives what each unpadded example gives on its own."""
    model = tiny_bert("eager")
    input_ids, attention_mask = batch(batch_size=5, tokens=20, seed=3)
    pyramidize(model, position=position, method=method, **pyramid_kwargs(method, 20))
    real = attention_mask.sum(dim=1).tolist()
    # rows shorter and longer than Input-first-k's k = 10, with odd and even counts for Average-pool's windows
    assert real == [20, 4, 15, 16, 18]
    with torch.no_grad():
        together = model(input_ids=input_ids, attention_mask=attention_mask).logits
        for row in range(5):
            n = int(attention_mask[row].sum())
            alone = model(
                input_ids=input_ids[row : row + 1, :n], attention_mask=attention_mask[row : row + 1, :n]
            ).logits
            assert torch.allclose(together[row], alone[0], atol=1e-5), (method, row, n)


@pytest.mark.parametrize("method", METHODS)
def test_shapes_shrink_as_configured(method):
    model = tiny_bert(model_class=BertModel)
    input_ids, attention_mask = batch(tokens=20)
    seen = []
    for layer in model.encoder.layer:
        layer.output.register_forward_hook(lambda _m, _i, out: seen.append(out.shape[1]))
    pyramidize(model, method=method, **pyramid_kwargs(method, 20))
    with torch.no_grad():
        out = model(input_ids=input_ids, attention_mask=attention_mask)
    expected = {
        "average_pool": [20, 11, 11],
        "input_first_k": [10, 10, 10],
    }.get(method, [16, 10, 6])
    assert seen == expected
    assert out.last_hidden_state.shape == (4, expected[-1], 32)
    assert out.pooler_output.shape == (4, 32)


def test_end_position_runs_the_ffn_before_selection():
    model = tiny_bert(model_class=BertModel)
    seen = []
    for layer in model.encoder.layer:
        layer.output.register_forward_hook(lambda _m, _i, out: seen.append(out.shape[1]))
    pyramidize(model, [16, 10, 6], position="end")
    with torch.no_grad():
        out = model(*batch(tokens=20))
    assert seen == [20, 16, 10]
    assert out.last_hidden_state.shape[1] == 6


@pytest.mark.parametrize(
    ("method", "m"), [("coreset", 1), ("coreset", 0.3), ("coreset", None), ("attention", 1), ("random", 1)]
)
@pytest.mark.parametrize("position", ["middle", "end"])
def test_cls_is_kept_and_kept_tokens_stay_in_order(method, m, position):
    """Follow every token to its original position: each layer's kept rows are found among the rows it selected
    from; CLS must come first and the original positions must increase (on padded rows too)."""
    model = tiny_bert("eager", model_class=BertModel)
    input_ids, attention_mask = batch(batch_size=4, tokens=20, seed=5)
    pyramidize(model, [14, 9, 5], method=method, m=m, position=position, seed=1)
    before, after = [], []  # per layer: the states selection chose from, and what it kept
    for layer in model.encoder.layer:
        if position == "middle":  # selection between the attention sublayer and the FFN
            layer.attention.register_forward_hook(lambda _m, _i, out: before.append(out[0]))
            layer.intermediate.register_forward_pre_hook(lambda _m, inputs: after.append(inputs[0]))
        else:  # selection after the FFN: from the FFN's output to the layer's output
            layer.output.register_forward_hook(lambda _m, _i, out: before.append(out))
            layer.register_forward_hook(lambda _m, _i, out: after.append(out if torch.is_tensor(out) else out[0]))
    with torch.no_grad():
        model(input_ids=input_ids, attention_mask=attention_mask)
    positions = torch.arange(20).expand(4, 20)  # original position of each row of the layer's input
    for chosen_from, kept in zip(before, after, strict=True):
        # the exact row of chosen_from that each kept row is (rows are distinct: they carry position embeddings)
        match = (kept[:, :, None, :] == chosen_from[:, None, :, :]).all(dim=-1)  # [B, k, n]
        assert match.sum(dim=-1).eq(1).all()
        positions = positions.gather(1, match.float().argmax(dim=-1))
        assert positions[:, 0].eq(0).all()  # CLS first
        assert (positions[:, 1:] > positions[:, :-1]).all()  # original order, strictly increasing
    assert positions.shape == (4, 5)
    real = attention_mask.bool()
    for row in range(4):  # padding is kept only once every real token is
        kept_real = real[row, positions[row]]
        assert kept_real.all() or kept_real.sum() == real[row].sum()


def test_rows_with_fewer_real_tokens_than_kept_length():
    model = tiny_bert()
    input_ids, attention_mask = batch(batch_size=3, tokens=20)
    attention_mask[1, 3:] = 0  # only 3 real tokens, fewer than every l_j
    pyramidize(model, [16, 10, 6])
    with torch.no_grad():
        together = model(input_ids=input_ids, attention_mask=attention_mask).logits
        alone = model(input_ids=input_ids[1:2, :3], attention_mask=attention_mask[1:2, :3]).logits
    assert torch.isfinite(together).all()
    assert torch.allclose(together[1], alone[0], atol=1e-5)


def test_batch_of_one():
    model = tiny_bert()
    pyramidize(model, [16, 10, 6])
    with torch.no_grad():
        logits = model(*batch(batch_size=1, tokens=20)).logits
    assert logits.shape == (1, 3)


def test_attention_select_same_choice_under_sdpa_and_eager():
    input_ids, attention_mask = batch(batch_size=4, tokens=20, seed=9)
    results = []
    for attn in ("eager", "sdpa"):
        model = pyramidize(tiny_bert(attn, seed=2), [14, 8, 4], method="attention")
        with torch.no_grad():
            results.append(model(input_ids=input_ids, attention_mask=attention_mask).logits)
    assert torch.allclose(results[0], results[1], atol=1e-5)


def test_unpyramidize_restores_the_dense_model_and_second_pyramidize_replaces_first():
    model = tiny_bert()
    input_ids, attention_mask = batch()
    with torch.no_grad():
        dense = model(input_ids=input_ids, attention_mask=attention_mask).logits
        pyramidize(model, [16, 10, 6], method="attention")
        pyramidize(model, [12, 8, 4], method="coreset", m=0.5)
        assert pyramid_settings(model).lengths == [12, 8, 4]
        assert model.config.pyramid["method"] == "coreset"
        second = model(input_ids=input_ids, attention_mask=attention_mask).logits
        fresh = pyramidize(tiny_bert(), [12, 8, 4], method="coreset", m=0.5)
        assert torch.equal(second, fresh(input_ids=input_ids, attention_mask=attention_mask).logits)
        unpyramidize(model)
        unpyramidize(model)  # idempotent
        assert not is_pyramidized(model)
        assert not hasattr(model.config, "pyramid")
        assert type(model.bert.encoder).__name__ == "BertEncoder"
        assert {type(layer).__name__ for layer in model.bert.encoder.layer} == {"BertLayer"}
        assert not any(hasattr(layer, "_pyramid") for layer in model.bert.encoder.layer)
        assert torch.equal(dense, model(input_ids=input_ids, attention_mask=attention_mask).logits)
    assert not model.bert.encoder.layer[0].attention.self.query._forward_hooks


def test_save_and_reload_round_trip(tmp_path):
    model = pyramidize(tiny_bert(), [16, 10, 6], method="coreset", m=0.3)
    input_ids, attention_mask = batch()
    model.save_pretrained(tmp_path)
    reloaded = load_pyramid_model(str(tmp_path)).eval()
    assert is_pyramidized(reloaded)
    assert pyramid_settings(reloaded) == pyramid_settings(model)
    with torch.no_grad():
        assert torch.equal(
            model(input_ids=input_ids, attention_mask=attention_mask).logits,
            reloaded(input_ids=input_ids, attention_mask=attention_mask).logits,
        )


def test_roberta_is_supported():
    model = tiny_roberta()
    input_ids, attention_mask = batch()
    input_ids = input_ids.clamp_min(2).masked_fill(attention_mask == 0, 1)
    with torch.no_grad():
        dense = model(input_ids=input_ids, attention_mask=attention_mask).logits
        pyramidize(model, [20] * LAYERS)
        assert torch.equal(dense, model(input_ids=input_ids, attention_mask=attention_mask).logits)
        pyramidize(model, [16, 10, 6], method="attention")
        assert model(input_ids=input_ids, attention_mask=attention_mask).logits.shape == (4, 2)


def test_random_select_is_reproducible_by_seed():
    input_ids, attention_mask = batch()
    outputs = []
    for seed in (5, 5, 6):
        model = pyramidize(tiny_bert(), [10, 6, 3], method="random", seed=seed)
        with torch.no_grad():
            outputs.append(model(input_ids=input_ids, attention_mask=attention_mask).logits)
    assert torch.equal(outputs[0], outputs[1])
    assert not torch.equal(outputs[0], outputs[2])


def test_bf16_inference_runs():
    model = pyramidize(tiny_bert().to(torch.bfloat16), [16, 10, 6], m=1)
    with torch.no_grad():
        logits = model(*batch()).logits
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()


@pytest.mark.parametrize("method", ["coreset", "attention", "random"])
def test_tiny_model_fine_tunes_with_selection(method):
    torch.manual_seed(0)
    model = pyramidize(tiny_bert().train(), [12, 8, 4], method=method, m=0.25)
    input_ids, attention_mask = batch(batch_size=16, tokens=16, seed=1)
    labels = (input_ids[:, 1] % 3).long()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert model.bert.encoder.layer[0].attention.self.query.weight.grad is not None


def test_bad_arguments_name_the_parameter():
    model = tiny_bert()
    with pytest.raises(ConfigError, match="method must be one of"):
        pyramidize(model, [10] * LAYERS, method="magic")
    with pytest.raises(ConfigError, match="position: must be one of"):
        pyramidize(model, [10] * LAYERS, position="start")
    with pytest.raises(ConfigError, match="one entry per encoder layer"):
        pyramidize(model, [10] * 5)
    with pytest.raises(ConfigError, match="must not increase"):
        pyramidize(model, [5, 10, 10])
    with pytest.raises(ConfigError, match="m: must be"):
        pyramidize(model, [10] * LAYERS, m=0)
    with pytest.raises(ConfigError, match="unknown option.*'mrege'.*valid: m, position"):
        pyramidize(model, [10] * LAYERS, mrege=True)
    with pytest.raises(ConfigError, match="--merge: for methods coreset, attention, first_k, random only"):
        pyramidize(model, [10] * LAYERS, method="input_first_k", merge=True)
    with pytest.raises(ConfigError, match="lengths must be constant"):
        pyramidize(model, [10, 8, 8], method="input_first_k")
    with pytest.raises(ConfigError, match="pool_windows"):
        pyramidize(model, [10] * LAYERS, method="average_pool")
    with pytest.raises(ConfigError, match="needs lengths"):
        pyramidize(model, None)
    assert not is_pyramidized(model)


def test_unsupported_model_names_the_supported_ones():
    from transformers import GPT2Config, GPT2Model

    with pytest.raises(ConfigError, match="supports model types bert, roberta"):
        pyramidize(GPT2Model(GPT2Config(n_layer=1, n_embd=8, n_head=2)), [4])


def test_non_finite_hidden_states_reaching_selection_are_reported():
    model = pyramidize(tiny_bert(model_class=BertModel), [10, 6, 3])
    with torch.no_grad():
        model.encoder.layer[0].attention.output.dense.bias.fill_(float("nan"))
        with pytest.raises(ConfigError, match="NaN or inf"):
            model(*batch())


def test_hugging_face_trainer_fine_tunes_a_pyramid_model(tmp_path):
    from torch.utils.data import Dataset
    from transformers import Trainer, TrainingArguments

    input_ids, attention_mask = batch(batch_size=32, tokens=16, seed=4)
    labels = (input_ids[:, 1] % 3).long()

    class Examples(Dataset):
        def __len__(self):
            return 32

        def __getitem__(self, i):
            return {"input_ids": input_ids[i], "attention_mask": attention_mask[i], "labels": labels[i]}

    model = pyramidize(tiny_bert().train(), [12, 8, 4], method="coreset", m=0.25)
    before = model.bert.encoder.layer[0].attention.self.query.weight.detach().clone()
    arguments = TrainingArguments(
        output_dir=str(tmp_path), num_train_epochs=3, per_device_train_batch_size=8, learning_rate=3e-3,
        report_to=[], save_strategy="no", logging_steps=1, use_cpu=True, seed=0,
    )  # fmt: skip
    trainer = Trainer(model=model, args=arguments, train_dataset=Examples())
    trainer.train()
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 12
    assert sum(losses[-3:]) < sum(losses[:3])
    assert is_pyramidized(model)
    assert not torch.equal(before, model.bert.encoder.layer[0].attention.self.query.weight)


def test_output_hidden_states_and_attentions_report_each_layer_at_its_length():
    model = pyramidize(tiny_bert("eager", model_class=BertModel), [16, 10, 6])
    with torch.no_grad():
        out = model(*batch(tokens=20), output_hidden_states=True, output_attentions=True)
    assert [h.shape[1] for h in out.hidden_states] == [20, 16, 10, 6]
    assert [a.shape[-1] for a in out.attentions] == [20, 16, 10]
    assert torch.equal(out.hidden_states[-1], out.last_hidden_state)


def test_average_pool_settings_round_trip(tmp_path):
    model = pyramidize(tiny_bert(), method="average_pool", pool_windows=[1, 2, 3])
    assert pyramid_settings(model).lengths is None
    model.save_pretrained(tmp_path)
    reloaded = load_pyramid_model(str(tmp_path)).eval()
    assert pyramid_settings(reloaded).pool_windows == [1, 2, 3]
    input_ids, attention_mask = batch()
    with torch.no_grad():
        assert torch.equal(
            model(input_ids=input_ids, attention_mask=attention_mask).logits,
            reloaded(input_ids=input_ids, attention_mask=attention_mask).logits,
        )


@pytest.mark.parametrize("method", ["coreset", "attention", "first_k", "average_pool", "energy"])
def test_gradient_checkpointing_gives_the_same_gradients(method):
    input_ids, attention_mask = batch(batch_size=4, tokens=20)
    labels = torch.tensor([0, 1, 2, 0])
    grads = []
    for checkpointing in (False, True):
        model = tiny_bert(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0).train()
        pyramidize(model, method=method, **pyramid_kwargs(method, 20))
        if checkpointing:
            model.gradient_checkpointing_enable()
        model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss.backward()
        grads.append(model.bert.encoder.layer[0].attention.self.query.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-6)
