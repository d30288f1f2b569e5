"""Batching modes (padded / dynamic / sorted) and whole-split speed measurement."""

import pytest
import torch

from pyramid_bert import is_pyramidized, pyramidize
from pyramid_bert.errors import ConfigError
from pyramid_bert.measure.speed import measure_split_speed, measure_train_step_speed
from pyramid_bert.training.batching import BATCHING_MODES, batch_shapes, make_batches, real_lengths, restore_order
from pyramid_bert.training.scoring import predict_logits
from tiny_models import batch, tiny_bert


def encodings(count=11, tokens=20, seed=0):
    input_ids, attention_mask = batch(batch_size=count, tokens=tokens, seed=seed)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": torch.arange(count) % 3}


def test_padded_batches_are_the_split_in_order_at_full_width():
    data = encodings()
    batches = make_batches(data, 4, "padded")
    assert [b.positions.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10]]
    assert all(b.width == 20 for b in batches) and "labels" not in batches[0].inputs


def test_dynamic_batches_are_trimmed_to_their_longest_example():
    data = encodings()
    lengths = real_lengths(data)
    for b in make_batches(data, 4, "dynamic"):
        assert b.width == b.longest == int(lengths[b.positions].max())
        assert torch.equal(b.inputs["input_ids"], data["input_ids"][b.positions, : b.width])
        assert int(b.inputs["attention_mask"].sum()) == int(lengths[b.positions].sum())  # no real token dropped


def test_sorted_batches_go_longest_first_and_restore_split_order():
    data = encodings()
    batches = make_batches(data, 4, "sorted", with_labels=True)
    widths = [b.width for b in batches]
    assert widths == sorted(widths, reverse=True)
    order = torch.cat([b.positions for b in batches])
    assert sorted(order.tolist()) == list(range(11))
    restored = restore_order(batches, [b.inputs["labels"] for b in batches])
    assert torch.equal(restored, data["labels"])
    assert batch_shapes(batches)[0] == (4, widths[0], widths[0])


def test_batch_of_one_and_batch_larger_than_the_split():
    data = encodings(count=3)
    assert [len(b.positions) for b in make_batches(data, 1, "sorted")] == [1, 1, 1]
    assert [len(b.positions) for b in make_batches(data, 100, "dynamic")] == [3]


def test_bad_mode_batch_size_and_left_padding_are_clear_errors():
    data = encodings()
    with pytest.raises(ConfigError, match="--batching: must be one of padded, dynamic, sorted"):
        make_batches(data, 4, "bucketed")
    with pytest.raises(ConfigError, match="--batch-size"):
        make_batches(data, 0, "padded")
    left = dict(data, attention_mask=data["attention_mask"].flip(1))
    with pytest.raises(ConfigError, match="right-padded"):
        make_batches(left, 4, "dynamic")


@pytest.mark.parametrize("method", [None, "coreset", "attention", "first_k", "input_first_k", "average_pool"])
def test_predictions_do_not_depend_on_the_batching(method, one_thread):
    model = tiny_bert()
    if method == "average_pool":
        pyramidize(model, method=method, pool_windows=[1, 2, 1])
    elif method == "input_first_k":
        pyramidize(model, [8, 8, 8], method=method)
    elif method is not None:
        pyramidize(model, [12, 8, 5], method=method)
    data = encodings(count=13)
    logits = {mode: predict_logits(model, data, batch_size=4, device="cpu", batching=mode) for mode in BATCHING_MODES}
    for mode in ("dynamic", "sorted"):
        assert (logits[mode].argmax(1) == logits["padded"].argmax(1)).all(), mode
        assert torch.allclose(torch.from_numpy(logits[mode]), torch.from_numpy(logits["padded"]), atol=1e-5), mode


def _record_inputs(model, calls):
    original = model.forward

    def forward(**inputs):
        calls.append({key: value.clone() for key, value in inputs.items()})
        return original(**inputs)

    model.forward = forward


def test_split_speed_times_a_dense_model_on_the_same_batches(one_thread):
    dense = tiny_bert()
    pyramid = pyramidize(tiny_bert(), keep_ratios=[0.8, 0.5, 0.3])
    data = encodings(count=9)
    dense_calls, pyramid_calls = [], []
    _record_inputs(dense, dense_calls)
    _record_inputs(pyramid, pyramid_calls)
    speed = measure_split_speed(pyramid, dense, data, batch_size=4, device=torch.device("cpu"), warmup=0, repeats=2,
                                dense_modes=("padded", "sorted"))  # fmt: skip
    assert not is_pyramidized(dense) and is_pyramidized(pyramid)
    # 2 repeats x 2 modes x 3 batches each; interleaving rotates the order but each mode's batches are identical
    assert len(dense_calls) == len(pyramid_calls) == 12
    key = lambda call: (call["input_ids"].shape, call["input_ids"].sum().item())  # noqa: E731
    assert sorted(map(key, dense_calls)) == sorted(map(key, pyramid_calls))
    assert {call["input_ids"].shape[1] for call in dense_calls} > {20}  # padded and trimmed batches both seen
    assert set(speed["speedups"]) == {f"pyramid/{p} vs dense/{d}" for p in ("padded", "sorted") for d in ("padded", "sorted")}
    assert speed["paper_speedup"] == speed["speedups"]["pyramid/padded vs dense/padded"]
    assert speed["real_predicted"] > 1.0 and speed["examples"] == 9


def test_train_step_speed_uses_one_batch_padded_and_trimmed(one_thread):
    dense, pyramid = tiny_bert(), pyramidize(tiny_bert(), [12, 8, 5])
    data = encodings(count=9)
    step = measure_train_step_speed(pyramid, dense, data, batch_size=4, device=torch.device("cpu"), repeats=2)
    assert step["batch_size"] == 4 and step["widths"]["padded"] == 20
    assert step["widths"]["dynamic"] == int(real_lengths(data)[:4].max())
    assert set(step["speedups"]) == {"padded", "dynamic"} and not pyramid.training and not dense.training
