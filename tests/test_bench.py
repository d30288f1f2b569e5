import pytest
import torch
from transformers import BertConfig, BertModel

from pyramid_bert.bench import bench_schedule, format_table, m_label, selection_timer
from pyramid_bert.commands.bench import parse_configs, parse_m_values
from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.hf import pyramidize


def tiny_model():
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    return BertModel(config).eval()


def test_bench_rows_pair_dense_with_each_m():
    rows = bench_schedule(
        tiny_model(),
        model_name="tiny",
        batch_size=2,
        n=16,
        lengths=[8, 4],
        m_values=(1, 0.5, None),
        repeats=2,
        warmup=1,
    )
    assert [row.m for row in rows] == ["1", "0.5k", "k-1"]
    for row in rows:
        assert row.lengths == [8, 4] and row.batch_size == 2 and row.n == 16
        assert row.dense_ms > 0 and row.pyramid_ms > 0
        assert row.ratio == pytest.approx(row.speedup / row.predicted)
        assert 0.0 < row.selection_share < 1.0
        assert row.speedup_q25 <= row.speedup <= row.speedup_q75
    assert len({row.dense_ms for row in rows}) == 1  # one dense timing, paired with every m
    table = format_table(rows)
    assert table.count("\n") == 4 and "0.5k" in table
    torch_rows = bench_schedule(
        tiny_model(), model_name="tiny", batch_size=1, n=16, lengths=[8, 4], repeats=1, warmup=0, compiled=False
    )
    assert torch_rows[0].method == "coreset (torch rounds)"


def test_selection_timer_counts_one_call_per_layer_and_restores_the_method():
    model = pyramidize(tiny_model(), [8, 4])
    ids = torch.randint(0, 100, (2, 16))
    with selection_timer(model) as spent:
        model(input_ids=ids)
    assert len(spent) == 2
    assert all("_pyramid_reduce" not in vars(layer) for layer in model.encoder.layer)


def test_parse_m_and_configs():
    assert parse_m_values("1,0.2,k-1") == [1, 0.2, None]
    assert m_label(None) == "k-1" and m_label(0.2) == "0.2k" and m_label(3) == "3"
    with pytest.raises(ConfigError, match="--m"):
        parse_m_values("x")
    assert parse_configs("3:0.25", 128, 6) == [[80, 50, 32, 32, 32, 32]]
    assert parse_configs("32/32;16/8", 128, 2) == [[32, 32], [16, 8]]
    assert len(parse_configs("table9", 128, 12)) == 29
    with pytest.raises(ConfigError, match="--configs"):
        parse_configs("3-0.25", 128, 6)
    with pytest.raises(ConfigError, match="must not increase"):
        parse_configs("8/16", 128, 2)
