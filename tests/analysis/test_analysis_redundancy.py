"""Redundancy statistics (Figure 1) on hand-built inputs, and ``analyze redundancy`` end to end on a tiny model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pyramid_bert import cli
from pyramid_bert.analysis.redundancy import (
    analyze_hidden_states,
    dbscan_clusters,
    example_statistics,
    layer_statistics,
    quantile_eps,
    summarize_layer,
)
from train_fixtures import make_keyword_task, write_tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")


def test_duplicated_tokens_form_one_cluster_with_cosine_one_to_cls():
    tokens = torch.tensor([1.0, 2.0, -3.0]).repeat(5, 1)  # CLS and four copies of it
    stats = example_statistics(tokens, eps=(0.2, 1e-6))
    assert stats.clusters == [1, 1]
    assert np.allclose(stats.cls_cosine, 1.0)
    assert math.isclose(stats.pair_cosine, 1.0, abs_tol=1e-9)
    assert np.allclose(stats.nn_distance, 0.0) and np.allclose(stats.nn_cosine_distance, 0.0)


def test_orthogonal_tokens_are_each_their_own_cluster_with_cosine_zero():
    tokens = torch.eye(4) * torch.tensor([1.0, 2.0, 3.0, 4.0])[:, None]  # orthogonal, different norms
    stats = example_statistics(tokens, eps=(0.2, 0.99))
    assert stats.clusters == [4, 4]
    assert np.allclose(stats.cls_cosine, 0.0) and math.isclose(stats.pair_cosine, 0.0, abs_tol=1e-12)
    assert np.allclose(stats.nn_cosine_distance, 1.0)
    assert math.isclose(float(stats.nn_distance[0]), math.sqrt(1 + 4))  # CLS (norm 1) to the norm-2 token


def test_two_groups_of_duplicates_give_two_clusters_and_eps_beyond_their_distance_merges_them():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0])  # cosine dissimilarity 1 - 1/sqrt(2) = 0.293
    tokens = torch.stack([a, a, a, b, b])
    assert example_statistics(tokens, eps=(0.2, 0.3)).clusters == [2, 1]


def test_clusters_per_token_and_the_share_of_tokens_that_are_their_own_cluster_are_not_the_same():
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])  # orthogonal: far apart at eps 0.2
    stats = example_statistics(torch.stack([a, a, b]), eps=(0.2, 0.2))  # two close tokens and a lone one
    summary = summarize_layer(1, [stats], eps_paper=0.2)
    assert stats.clusters[0] == 2 and summary.cluster_share_paper_mean == pytest.approx(2 / 3)
    assert summary.singleton_share_paper_mean == pytest.approx(1 / 3)  # only b is a cluster of its own
    alone = example_statistics(torch.stack([a]), eps=(0.2, 0.2))  # a one-token input is its own cluster
    assert summarize_layer(1, [stats, alone]).singleton_share_paper_mean == pytest.approx((1 / 3 + 1) / 2)


def test_noise_points_count_as_their_own_clusters():
    distance = np.array([[0.0, 0.0, 0.9], [0.0, 0.0, 0.9], [0.9, 0.9, 0.0]])
    assert dbscan_clusters(distance, eps=0.1, min_samples=2) == 2  # one cluster of two, one noise point


def test_padding_is_left_out_and_layer_statistics_follow_the_mask():
    hidden = torch.randn(2, 6, 8)
    hidden[0, 3:] = hidden[0, 0]  # padding that copies CLS would make everything one cluster if it were used
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    first, second = layer_statistics(hidden, mask, eps=(0.2,))
    assert first.tokens == 3 and len(first.cls_cosine) == 2 and second.tokens == 6
    expected = torch.nn.functional.cosine_similarity(hidden[0, 1:3].double(), hidden[0, :1].double(), dim=1)
    assert np.allclose(first.cls_cosine, expected.numpy())


def test_quantile_eps_comes_from_encoder_one_and_is_held_for_every_layer():
    torch.manual_seed(0)
    layers = [torch.randn(3, 7, 16) for _ in range(3)]
    mask = torch.ones(3, 7, dtype=torch.bool)
    result = analyze_hidden_states(layers, mask, eps_quantile=0.5)
    assert math.isclose(result.eps_quantile, quantile_eps(layer_statistics(layers[1], mask), 0.5))
    assert [s.layer for s in result.summaries] == [0, 1, 2]
    duplicated = [layers[0], layers[1], layers[1][:, :1].expand(-1, 7, -1).contiguous()]
    last = analyze_hidden_states(duplicated, mask).summaries[2]
    assert last.clusters_paper_mean == 1.0 and last.clusters_quantile_mean == 1.0
    assert math.isclose(last.cls_cosine_mean, 1.0, rel_tol=1e-6)


def test_analyze_redundancy_command_writes_csv_png_and_markdown_for_every_layer(tmp_path, monkeypatch):
    model = write_tiny_bert(tmp_path / "tiny", num_layers=3, num_labels=2)
    monkeypatch.setattr("pyramid_bert.data.load_task", lambda *args, **kwargs: make_keyword_task(sizes=(8, 12, 8)))
    code = cli.main(["analyze", "redundancy", "--model", str(model), "--out", str(tmp_path / "out"), "--no-progress"])
    assert code == 0
    rows = (tmp_path / "out" / "redundancy.csv").read_text().splitlines()
    assert len(rows) == 1 + 4  # header, embeddings and 3 encoders
    assert (tmp_path / "out" / "redundancy.png").stat().st_size > 0
    section = (tmp_path / "out" / "redundancy.md").read_text()
    assert "eps 0.2" in section and "min_samples 1" in section and "| encoder 3 |" in section
    examples = (tmp_path / "out" / "redundancy-examples.csv").read_text().splitlines()
    assert len(examples) == 1 + 4 * 12


@pytest.mark.parametrize(("flag", "value"), [("--eps-quantile", "1.5"), ("--eps", "0"), ("--min-samples", "0"),
                                             ("--max-examples", "0"), ("--task", "nope"),
                                             ("--at", "start")])  # fmt: skip
def test_analyze_redundancy_bad_input_is_one_line_naming_the_flag(flag, value, tmp_path, capsys):
    try:
        code = cli.main(["analyze", "redundancy", flag, value, "--out", str(tmp_path / "o"), "--no-progress"])
    except SystemExit as exit_:  # argparse's own checks (types of numeric flags) exit from parse_args
        code = exit_.code
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(err) == 1 and flag in err[0]


def test_middle_reads_each_encoders_tokens_after_its_attention_sublayer(tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from pyramid_bert.analysis.importance import to_middle
    from pyramid_bert.analysis.redundancy import analyze_model
    from pyramid_bert.data import tokenize_split

    folder = write_tiny_bert(tmp_path / "tiny", num_layers=3, num_labels=2)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    encodings = tokenize_split(AutoTokenizer.from_pretrained(folder), make_keyword_task(sizes=(4, 5, 4)), "dev")
    inputs = {key: value for key, value in encodings.items() if key != "labels"}
    middle = analyze_model(model, inputs, batch_size=2, at="middle")
    output = analyze_model(model, inputs, batch_size=2)
    assert sorted(middle.per_layer) == [1, 2, 3] and sorted(output.per_layer) == [0, 1, 2, 3]
    with torch.inference_mode():
        tokens = to_middle(model, inputs, 2)[0][inputs["attention_mask"][0].bool()]
    assert np.allclose(middle.per_layer[2][0].cls_cosine, example_statistics(tokens).cls_cosine, atol=1e-6)
    assert not np.allclose(middle.per_layer[2][0].cls_cosine, output.per_layer[2][0].cls_cosine)


def test_analyze_redundancy_reads_the_users_data_file(tmp_path):
    import csv

    model = write_tiny_bert(tmp_path / "tiny", num_layers=2, num_labels=2)
    task = make_keyword_task(sizes=(40, 0, 0))
    path = tmp_path / "reviews.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review", "stars"])
        writer.writerows(zip(task.splits["train"].text_a, task.splits["train"].labels, strict=True))
    out = tmp_path / "out"
    code = cli.main(["analyze", "redundancy", "--model", str(model), "--train", str(path), "--text-column", "review",
                     "--label-column", "stars", "--out", str(out), "--no-progress"])  # fmt: skip
    assert code == 0
    section = (out / "redundancy.md").read_text()
    assert "reviews" in section and f"--train {path}" in section
    dev_inputs = (out / "redundancy-examples.csv").read_text().splitlines()
    assert len(dev_inputs) == 1 + 3 * 4  # the held-out 10% of 40 rows as dev, at embeddings + 2 encoders


def test_analyze_with_a_data_file_refuses_the_ablation_store_model(tmp_path, capsys):
    path = tmp_path / "d.csv"
    path.write_text("text,label\na,x\nb,y\n")
    code = cli.main(["analyze", "importance", "--train", str(path), "--out", str(tmp_path / "o"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "--model ablate-dense" in err
    assert cli.main(["analyze", "redundancy", "--task", "trec", "--train", str(path)]) == 2
