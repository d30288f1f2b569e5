"""Evaluation of a checkpoint: metric, speed fields, only-infer, memory probe, corrupted folders, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from sklearn.metrics import accuracy_score

from pyramid_bert import cli, schedule
from pyramid_bert.errors import CheckpointError, ConfigError
from pyramid_bert.measure.evaluate import evaluate_checkpoint
from pyramid_bert.measure.memory import measure_peak_memory
from pyramid_bert.training.checkpoint import validate_checkpoint
from pyramid_bert.training.loop import FinetuneConfig, finetune
from train_fixtures import make_keyword_task, write_tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def task():
    return make_keyword_task(sizes=(64, 32, 40))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, task) -> dict[str, Path]:
    """A dense and a coreset checkpoint of the tiny BERT (trained once for the module)."""
    root = tmp_path_factory.mktemp("runs")
    model = write_tiny_bert(root / "tiny")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    folders = {}
    for method, lengths in (("dense", None), ("coreset", [8, 4])):
        config = FinetuneConfig(task="rt-polarity", model=str(model), method=method, lengths=lengths, epochs=6,
                                lr=1e-2, batch_size=16, out=str(root / method))  # fmt: skip
        folders[method] = finetune(config, task_data=task, progress=False)
    torch.set_num_threads(previous)
    return folders


def copy_run(source: Path, destination: Path) -> Path:
    shutil.copytree(source, destination)
    return destination


def test_metric_matches_sklearn_on_the_checkpoint_predictions(runs, task):
    from pyramid_bert import load_pyramid_model
    from pyramid_bert.data import tokenize_split
    from pyramid_bert.training.metrics import predictions_from_logits

    result = evaluate_checkpoint(runs["coreset"], task_data=task, measure_speed=False, write_json=False)
    model = load_pyramid_model(str(runs["coreset"])).eval()
    encodings = tokenize_split(__import__("transformers").AutoTokenizer.from_pretrained(runs["coreset"]), task, "test")
    labels = encodings.pop("labels")
    with torch.inference_mode():
        logits = model(**encodings).logits.numpy()
    expected = accuracy_score(labels.numpy(), predictions_from_logits(logits, is_regression=False))
    assert result.metric_name == "accuracy" and result.examples == 40
    assert result.metric == pytest.approx(expected)
    assert result.metric >= 0.9  # the tiny pyramid model really learned the keyword task


def test_speed_fields_and_cost_model_figures(runs, task):
    result = evaluate_checkpoint(runs["coreset"], task_data=task, timing_repeats=3, timing_warmup=1)
    speed = result.speed
    assert set(speed["seconds"]) == {"dense/padded", "dense/dynamic", "dense/sorted", "pyramid/padded",
                                     "pyramid/sorted"}  # fmt: skip
    assert all(len(stats["samples"]) == 3 for stats in speed["seconds"].values())
    assert speed["examples"] == 40 and speed["batch_size"] == 128 and speed["seq_len"] == 16 and speed["threads"] == 1
    assert result.speedup["paper"]["median"] == speed["speedups"]["pyramid/padded vs dense/padded"]["median"]
    assert result.speedup["sorted"]["median"] == speed["speedups"]["pyramid/sorted vs dense/sorted"]["median"]
    assert result.predicted_speedup_padded == pytest.approx(
        schedule.predicted_speedup(16, [8, 4], hidden=32, intermediate=64, num_layers=2)
    )
    assert speed["train_step"]["batch_size"] == 16 and speed["train_step"]["widths"]["padded"] == 16
    assert result.predicted_speedup == pytest.approx(
        schedule.predicted_speedup(16, [8, 4], hidden=32, intermediate=64, num_layers=2)
    )
    assert result.space_reduction == pytest.approx(schedule.attention_space_reduction(16, [8, 4]))
    assert result.space_reduction_exact == pytest.approx(1 - (16**2 + 8**2) / (2 * 16**2))
    written = json.loads((runs["coreset"] / "eval-test.json").read_text())
    assert written["metric"] == result.metric and written["lengths"] == [8, 4]
    assert written["speedup_median"] == result.speedup["paper"]["median"] and written == result.to_row()
    row = result.trial_columns()
    assert row["test_metric"] == result.metric and row["sorted_speedup_q25"] == result.speedup["sorted"]["q25"]


def test_the_timed_dense_twin_is_dense_has_the_same_weights_and_gets_the_same_inputs(runs, task, monkeypatch):
    """Spy on every forward of the two models evaluate times: the dense one runs all N tokens through every
    layer, shares the pyramid model's weights, and is fed exactly the tensors the pyramid model is fed."""
    from pyramid_bert import is_pyramidized
    from pyramid_bert.measure import evaluate
    from pyramid_bert.patch import hf

    calls: dict[str, list] = {"dense": [], "pyramid": []}
    models = {}

    def spy(name, model):
        models[name] = model

        def record(module, args, kwargs):
            inputs = {key: value.clone() for key, value in kwargs.items() if torch.is_tensor(value)}
            order = len(calls["dense"]) + len(calls["pyramid"])
            calls[name].append({"pyramidized": is_pyramidized(module), "inputs": inputs, "lengths": [], "order": order})

        model.register_forward_pre_hook(record, with_kwargs=True)
        for layer in model.base_model.encoder.layer:  # the tokens each layer hands on
            layer.register_forward_hook(lambda _m, _i, out: calls[name][-1]["lengths"].append(
                (out if torch.is_tensor(out) else out[0]).shape[1]))  # fmt: skip
        return model

    real_dense, real_pyramid = evaluate._load_dense, hf.load_pyramid_model
    monkeypatch.setattr(evaluate, "_load_dense", lambda path: spy("dense", real_dense(path)))
    monkeypatch.setattr(hf, "load_pyramid_model", lambda path, **kw: spy("pyramid", real_pyramid(path, **kw)))
    evaluate_checkpoint(runs["coreset"], task_data=task, timing_repeats=2, timing_warmup=1, write_json=False,
                        timing_dense_modes=("padded", "sorted"))  # fmt: skip

    def width(call):
        return call["inputs"]["input_ids"].shape[1]

    assert calls["dense"] and calls["pyramid"]
    assert {width(call) for call in calls["dense"]} > {16}  # padded to N and padded per batch
    assert all(not call["pyramidized"] and call["lengths"] == [width(call)] * 2 for call in calls["dense"])
    assert all(call["pyramidized"] and call["lengths"] == [min(8, width(call)), min(4, width(call))]
               for call in calls["pyramid"])  # fmt: skip
    dense_weights, pyramid_weights = models["dense"].state_dict(), models["pyramid"].state_dict()
    assert dense_weights.keys() == pyramid_weights.keys()
    assert all(torch.equal(dense_weights[key], pyramid_weights[key]) for key in dense_weights)

    def signature(call):
        return tuple((key, tuple(value.flatten().tolist())) for key, value in sorted(call["inputs"].items()))

    # from the dense model's first forward on (the timing), both models see the same set of batches
    first_timed = min(call["order"] for call in calls["dense"])
    dense_inputs = {signature(call) for call in calls["dense"]}
    timed_pyramid = {signature(call) for call in calls["pyramid"] if call["order"] > first_timed}
    assert dense_inputs == timed_pyramid
    assert any("labels" in call["inputs"] for call in calls["dense"])  # the training step was timed too


def test_dense_checkpoint_has_speedup_one_without_timing(runs, task):
    result = evaluate_checkpoint(runs["dense"], task_data=task, split="dev", write_json=False)
    assert result.speed is None and result.speedup["paper"]["median"] == 1.0
    assert result.predicted_speedup == 1.0 and result.space_reduction == 0.0


def test_only_infer_applies_selection_to_dense_weights_at_inference(runs, task):
    result = evaluate_checkpoint(
        runs["dense"], task_data=task, only_infer={"method": "input_first_k", "lengths": [2, 2]}, timing_repeats=2,
    )  # fmt: skip
    assert result.method == "input_first_k" and result.lengths == [2, 2] and result.only_infer
    assert result.speed is not None
    # the dense twin is timed on whole sentences, not on inputs already cut to k (then it would be as fast)
    assert result.speed["real_predicted"] > 2.0 and result.speed["paper_predicted"] > 2.0
    assert (runs["dense"] / "eval-test-only-infer.json").is_file()
    dense = evaluate_checkpoint(runs["dense"], task_data=task, measure_speed=False, write_json=False)
    # Cutting the input to CLS and the first word hides the keyword from most sentences.
    assert result.metric < dense.metric - 0.2
    with pytest.raises(ConfigError, match="densely fine-tuned"):
        evaluate_checkpoint(runs["coreset"], task_data=task, only_infer={"method": "coreset", "lengths": [4, 2]})
    with pytest.raises(ConfigError, match="unknown key"):
        evaluate_checkpoint(runs["dense"], task_data=task, only_infer={"method": "coreset", "k": 3})


def test_labels_that_do_not_fit_the_head_are_refused(runs):
    three_class = make_keyword_task(sizes=(8, 8, 8), num_labels=3)
    with pytest.raises(ConfigError, match="3 label.*2 output"):
        evaluate_checkpoint(runs["dense"], task_data=three_class, measure_speed=False, write_json=False)


def test_missing_or_corrupted_checkpoint_files_are_named(runs, tmp_path):
    with pytest.raises(CheckpointError, match="no such folder"):
        validate_checkpoint(tmp_path / "nowhere")
    missing = copy_run(runs["coreset"], tmp_path / "missing")
    (missing / "config.json").unlink()
    with pytest.raises(CheckpointError, match="missing config.json"):
        evaluate_checkpoint(missing, measure_speed=False)
    truncated = copy_run(runs["coreset"], tmp_path / "truncated")
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="model.safetensors is corrupted"):
        validate_checkpoint(truncated)
    flipped = copy_run(runs["coreset"], tmp_path / "flipped")
    data = bytearray((flipped / "model.safetensors").read_bytes())
    data[-100] ^= 0xFF  # a weight byte: the header still parses, only the checksum can tell
    (flipped / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        validate_checkpoint(flipped)
    garbage = copy_run(runs["coreset"], tmp_path / "garbage")
    (garbage / "model.safetensors").write_bytes(b"not a safetensors file at all")
    with pytest.raises(CheckpointError, match="corrupted"):
        validate_checkpoint(garbage)


def test_memory_probe_reports_peak_rss_of_a_fresh_process_that_sees_the_activations(runs):
    # One fresh process (each costs an import of torch + transformers). A [1024, 64] batch through the
    # tiny BERT keeps tens of MB of activations for backward: the probe must see them above the model.
    result = measure_peak_memory(runs["coreset"], mode="train", variant="dense", batch_size=1024, seq_len=64)
    assert result["mode"] == "train" and result["variant"] == "dense" and result["batch_size"] == 1024
    assert result["peak_mb"] > 50  # python + torch + transformers alone take far more than this
    assert result["peak_mb"] >= result["before_mb"] > 0
    assert result["step_mb"] > 20
    assert "fresh process" in result["method"] or "ru_maxrss" in result["method"]


def test_cli_evaluate_prints_a_table_and_writes_json(runs, task, monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("pyramid_bert.data.load_task", lambda *args, **kwargs: task)
    out_json = tmp_path / "result.json"
    code = cli.main(["evaluate", str(runs["coreset"]), "--repeats", "2", "--json-out", str(out_json)])
    printed = capsys.readouterr().out
    assert code == 0
    assert "accuracy" in printed and "real speedup" in printed and "paper speedup" in printed and "predicted speedup" in printed
    assert json.loads(out_json.read_text())["lengths"] == [8, 4]


def test_cli_reports_bad_input_in_one_line_without_traceback(runs, capsys, tmp_path):
    assert cli.main(["evaluate", str(tmp_path / "nowhere")]) == 2
    error = capsys.readouterr().err
    assert "no such folder" in error and "Traceback" not in error
    code = cli.main(["finetune", "--task", "nope", "--out", str(tmp_path / "x")])
    error = capsys.readouterr().err
    assert code == 2 and "valid tasks:" in error and "rt-polarity" in error and "Traceback" not in error
    code = cli.main(["finetune", "--task", "rt-polarity", "--method", "magic", "--out", str(tmp_path / "x")])
    assert code == 2 and "valid methods: dense, coreset" in capsys.readouterr().err


def test_memory_pair_adds_a_training_step_at_the_dynamic_width(monkeypatch, tmp_path):
    from pyramid_bert.measure import memory as memory_module
    from pyramid_bert.measure.evaluate import measure_memory_pair

    calls = []
    monkeypatch.setattr(memory_module, "measure_peak_memory", lambda folder, **kw: calls.append(kw) or {"peak_mb": 1})
    memory = measure_memory_pair(tmp_path, n=64, batch_size=128, train_batch_size=48, device="cpu", selection=None,
                                 include_pyramid=True, dynamic_train_width=37)  # fmt: skip
    assert set(memory) == {"train_dense", "train_pyramid", "infer_dense", "infer_pyramid", "train_dense_dynamic",
                           "train_pyramid_dynamic"}  # fmt: skip
    dynamic = [call for call in calls if call["seq_len"] == 37]
    assert [(call["mode"], call["variant"], call["batch_size"]) for call in dynamic] == [
        ("train", "dense", 48), ("train", "pyramid", 48)]  # fmt: skip


def test_memory_pair_measures_inference_at_the_asked_precision_and_training_at_fp32(monkeypatch, tmp_path):
    from pyramid_bert.measure import memory as memory_module
    from pyramid_bert.measure.evaluate import measure_memory_pair

    calls = []
    monkeypatch.setattr(memory_module, "measure_peak_memory", lambda folder, **kw: calls.append(kw) or {"peak_mb": 1})
    measure_memory_pair(tmp_path, n=64, batch_size=128, train_batch_size=48, device="cpu", selection=None,
                        include_pyramid=True, precision="int8")  # fmt: skip
    assert {call["precision"] for call in calls} == {"int8"}  # the child quantizes infer steps only (see below)


def test_memory_probe_quantizes_the_inference_step_it_measures(runs, monkeypatch):
    from pyramid_bert.measure import memory as memory_module

    seen = []
    monkeypatch.setattr(memory_module, "quantize", lambda model, precision: seen.append(precision) or model)
    spec = {"checkpoint": str(runs["coreset"]), "variant": "pyramid", "batch_size": 2, "seq_len": 8, "device": "cpu",
            "threads": 1, "selection": None}  # fmt: skip
    memory_module._measure_here({**spec, "mode": "infer", "precision": "int8"})
    memory_module._measure_here({**spec, "mode": "train", "precision": "int8"})
    assert seen == ["int8"]
