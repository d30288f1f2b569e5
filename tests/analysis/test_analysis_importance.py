"""Token importance (Figures 4-5): the MI, the split forward, removal by core-set order, and the command."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pyramid_bert import cli
from pyramid_bert.analysis import importance as imp
from train_fixtures import make_keyword_task, write_tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")


def test_mi_of_identical_predictions_is_the_entropy_of_the_labels_in_nats():
    balanced = np.array([0, 1] * 50)
    assert math.isclose(imp.mutual_information(balanced, balanced), math.log(2), rel_tol=1e-12)
    skewed = np.array([0] * 70 + [1] * 20 + [2] * 10)
    expected = -sum(p * math.log(p) for p in (0.7, 0.2, 0.1))
    assert math.isclose(imp.mutual_information(skewed, skewed), expected, rel_tol=1e-12)
    assert math.isclose(imp.entropy(skewed), expected, rel_tol=1e-12)


def test_mi_of_independent_predictions_is_zero_and_of_relabelled_ones_is_the_entropy():
    a = np.array([0, 0, 1, 1] * 10)
    b = np.array([0, 1, 0, 1] * 10)
    assert math.isclose(imp.mutual_information(a, b), 0.0, abs_tol=1e-12)
    assert math.isclose(imp.mutual_information(1 - a, a), math.log(2), rel_tol=1e-12)


@pytest.fixture(scope="module")
def tiny():
    import tempfile
    from pathlib import Path

    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from pyramid_bert.data import tokenize_split

    folder = write_tiny_bert(Path(tempfile.mkdtemp()) / "tiny", num_layers=3, num_labels=2, seed=1)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    encodings = tokenize_split(AutoTokenizer.from_pretrained(folder), make_keyword_task(sizes=(4, 6, 4)), "dev")
    inputs = {key: value for key, value in encodings.items() if key != "labels"}
    return model, inputs


@pytest.mark.parametrize("layer", [1, 2, 3])
def test_split_forward_at_any_encoder_gives_the_models_own_logits(tiny, layer):
    model, inputs = tiny
    with torch.inference_mode():
        middle = imp.to_middle(model, inputs, layer)
        logits = imp.from_middle(model, middle, inputs["attention_mask"].bool(), layer)
        assert torch.allclose(logits, model(**inputs).logits, atol=1e-5)


@pytest.mark.parametrize(("layer", "m"), [(1, 1), (2, None), (3, 1)])
def test_batched_removal_equals_one_input_at_a_time_without_padding(tiny, layer, m):
    model, inputs = tiny
    mask = inputs["attention_mask"].bool()
    with torch.inference_mode():
        middle = imp.to_middle(model, inputs, layer)
        order = imp.selection_order(middle, mask, m)
        assert bool((order[:, 0] == 0).all())  # CLS first
        for k in (1, 2, 4):
            batched = imp.pruned_logits(model, middle, mask, order, k, layer)
            for i in range(middle.shape[0]):
                n = int(mask[i].sum())
                alone = imp.to_middle(model, {key: v[i : i + 1, :n] for key, v in inputs.items()}, layer)
                alone_order = imp.selection_order(alone, torch.ones(1, n, dtype=torch.bool), m)
                assert torch.equal(alone_order[0], order[i, :n])
                reference = imp.pruned_logits_reference(model, alone, alone_order, k, layer)
                assert torch.allclose(batched[i], reference[0], atol=1e-5)


def test_curves_keep_dense_predictions_where_the_input_has_no_kth_token(tiny):
    model, inputs = tiny
    lengths = inputs["attention_mask"].sum(dim=1).numpy()
    curves, ceiling = imp.importance_curves(model, inputs, layers=[1, 3], ms=[1, None], batch_size=4)
    assert [(c.layer, c.m) for c in curves] == [(1, 1), (1, None), (3, 1), (3, None)]
    for curve in curves:
        assert len(curve.mi) == inputs["input_ids"].shape[1]
        assert curve.affected == [int((lengths >= k).sum()) for k in range(1, len(curve.mi) + 1)]
        beyond = int(lengths.max())  # no input has this many real tokens: nothing is removed
        assert curve.agreement[beyond] == 1.0
        assert math.isclose(curve.mi[beyond], ceiling, abs_tol=1e-12)
        assert all(0.0 <= v <= ceiling + 1e-12 for v in curve.mi)


def test_analyze_importance_command_writes_figures_and_table(tmp_path, monkeypatch):
    from pyramid_bert.training.config import FinetuneConfig
    from pyramid_bert.training.loop import finetune

    model = write_tiny_bert(tmp_path / "tiny", num_layers=2)
    task = make_keyword_task(sizes=(32, 10, 8))
    config = FinetuneConfig(task="rt-polarity", model=str(model), method="dense", epochs=0.25, batch_size=16,
                            out=str(tmp_path / "dense"))  # fmt: skip
    dense = finetune(config, task_data=task, progress=False, evaluate_dev=False)
    monkeypatch.setattr("pyramid_bert.data.load_task", lambda *args, **kwargs: task)
    out = tmp_path / "out"
    argv = ["analyze", "importance", "--model", str(dense), "--out", str(out), "--no-progress", "--ms", "1,k-1"]
    assert cli.main(argv) == 0
    rows = (out / "importance.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 * 2 * task.max_length  # 2 encoders x 2 m x k = 1..N
    assert (out / "importance-m1.png").is_file() and (out / "importance-mk-1.png").is_file()
    assert "| 2 | k-1 |" in (out / "importance.md").read_text()


@pytest.mark.parametrize(("flag", "value"), [("--ms", "0"), ("--ms", "x"), ("--layers", "9"), ("--layers", "a")])
def test_analyze_importance_bad_input_is_one_line_naming_the_flag(flag, value, tmp_path, capsys, monkeypatch):
    model = write_tiny_bert(tmp_path / "tiny", num_layers=2, num_labels=2)
    monkeypatch.setattr("pyramid_bert.data.load_task", lambda *args, **kwargs: make_keyword_task(sizes=(4, 4, 4)))
    capsys.readouterr()
    code = cli.main(["analyze", "importance", "--model", str(model), flag, value, "--out", str(tmp_path / "o"),
                     "--no-progress"])  # fmt: skip
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "warning" not in line]
    assert code == 2 and len(err) == 1 and flag in err[0]
