import csv

import pytest
import torch
from transformers import BertConfig, BertModel

from pyramid_bert.errors import ConfigError
from pyramid_bert.measure.bench import bench_schedule, format_table, m_label, selection_timer
from pyramid_bert.measure.bench_run import parse_configs
from pyramid_bert.patch.hf import pyramidize
from pyramid_bert.spec import parse_m_list


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
    assert parse_m_list("1,0.2,k-1") == [1, 0.2, None]
    assert m_label(None) == "k-1" and m_label(0.2) == "0.2k" and m_label(3) == "3"
    with pytest.raises(ConfigError, match="--m"):
        parse_m_list("x")
    assert parse_configs("3:0.25", 128, 6) == [[80, 50, 32, 32, 32, 32]]
    assert parse_configs("32/32;16/8", 128, 2) == [[32, 32], [16, 8]]
    assert len(parse_configs("table9", 128, 12)) == 29
    with pytest.raises(ConfigError, match="--configs"):
        parse_configs("3-0.25", 128, 6)
    with pytest.raises(ConfigError, match="must not increase"):
        parse_configs("8/16", 128, 2)


def test_bench_split_times_fixed_and_ratio_schedules_on_real_lengths(tmp_path):
    from pyramid_bert.io import write_csv_atomic
    from pyramid_bert.measure.bench import SplitBenchRow, bench_split, format_split_table

    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(3, 17, (12,), generator=generator)
    mask = (torch.arange(16)[None, :] < lengths[:, None]).long()
    encodings = {"input_ids": torch.randint(5, 999, (12, 16), generator=generator) * mask, "attention_mask": mask}
    fixed = bench_split(tiny_model(), encodings, model_name="tiny", batch_size=4, lengths=[8, 4], repeats=2, warmup=0)
    ratio = bench_split(tiny_model(), encodings, model_name="tiny", batch_size=4, ratios=[0.5, 0.25], repeats=2,
                        warmup=0)  # fmt: skip
    assert fixed.schedule == "fixed" and fixed.lengths == "8 4" and ratio.lengths == "r 0.5 0.25"
    assert fixed.examples == ratio.examples == 12 and fixed.n == 16
    # on short real inputs a fixed schedule saves less than the same ratios: the FLOPs model says so too
    assert ratio.real_predicted > fixed.real_predicted
    assert fixed.real_ratio == pytest.approx(fixed.real_speedup / fixed.real_predicted)
    assert format_split_table([fixed, ratio]).count("\n") == 3
    # what bench --csv writes reads back as the same rows, so a committed CSV rebuilds the table
    write_csv_atomic(tmp_path / "rows.csv", [fixed.to_dict(), ratio.to_dict()])
    with (tmp_path / "rows.csv").open(newline="") as stream:
        read = [SplitBenchRow.from_csv(row) for row in csv.DictReader(stream)]
    assert read == [fixed, ratio] and format_split_table(read) == format_split_table([fixed, ratio])
    merged = bench_split(tiny_model(), encodings, model_name="tiny", batch_size=4, ratios=[0.5, 0.25], repeats=1,
                         warmup=0, options={"distance": "cosine", "merge": True, "duplicity_attention": False})  # fmt: skip
    assert merged.method == "coreset+cosine+merge" and merged.real_predicted == ratio.real_predicted


def test_parse_ratio_configs():
    from pyramid_bert.measure.bench_run import parse_ratio_configs

    assert parse_ratio_configs("2:0.25", 3) == [[0.5, 0.25, 0.25]]
    assert parse_ratio_configs("0.5/0.5/0.2;1/1/1", 3) == [[0.5, 0.5, 0.2], [1.0, 1.0, 1.0]]
    with pytest.raises(ConfigError, match="--configs"):
        parse_ratio_configs("abc", 3)
    with pytest.raises(ConfigError, match="must not increase"):
        parse_ratio_configs("0.2/0.5/0.5", 3)


# ----------------------------------------------------------------------------------- the bench run (bench_run)
def bench_request(**changes):
    from pyramid_bert.measure.bench_run import BenchRequest

    flags = dict(model="minilm-l6", batch_sizes=(1, 2), n=16, configs="1:0.5", method="coreset", m="1,k-1", repeats=1,
                 warmup=0, device="cpu", examples=8, schedule="fixed", label_column="label")  # fmt: skip
    return BenchRequest(**{**flags, **changes})


def test_run_bench_prints_each_row_as_measured_then_the_table_and_writes_the_csv(tmp_path, one_thread):
    import csv

    from pyramid_bert.measure.bench_run import run_bench

    lines = []
    rows = run_bench(bench_request(csv=str(tmp_path / "rows.csv")), echo=lines.append)
    assert [(row.batch_size, row.m) for row in rows] == [(1, "1"), (1, "k-1"), (2, "1"), (2, "k-1")]
    assert all(row.lengths == [8] * 6 for row in rows)  # Eq. 5 with p = 0.5 from layer 1 of 6, N = 16
    assert lines[0].startswith("# minilm-l6 N=16 threads=1 device=cpu repeats=1")
    assert len(lines[1].splitlines()) == 2 and len(lines[2].splitlines()) == 2  # one line per m, per batch size
    assert lines[3] == "" and lines[4] == format_table(rows) and lines[5] == f"wrote {tmp_path / 'rows.csv'}"
    with open(tmp_path / "rows.csv", newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [(r["batch_size"], r["m"]) for r in written] == [("1", "1"), ("1", "k-1"), ("2", "1"), ("2", "k-1")]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"options": {"merge": True}}, "--distance/--duplicity-attention/--merge: with --task only"),
        ({"task": "rt-polarity", "train": "reviews.csv"}, "--task / --train: give a task name or your own data file"),
        ({"train": "reviews.csv", "text_columns": ("a", "b", "c")}, "--text-column: one column, or two"),
        ({"m": "1,0"}, "--m: '0' is no m"),
        ({"configs": "7:0.25"}, "PRUNE_UPTO must be a layer in 1..6"),
    ],
)
def test_run_bench_names_the_flag_of_bad_input(changes, message, tmp_path):
    from pyramid_bert.measure.bench_run import run_bench

    with pytest.raises(ConfigError, match=message.replace(".", "\\.")):
        run_bench(bench_request(**changes), echo=lambda line: None)


def test_run_bench_refuses_an_existing_csv_before_loading_the_model(tmp_path):
    from pyramid_bert.measure.bench_run import run_bench

    mine = tmp_path / "mine.csv"
    mine.write_text("mine\n")
    with pytest.raises(ConfigError, match="--csv"):
        run_bench(bench_request(model="/no/such/model", csv=str(mine)), echo=lambda line: None)
    assert mine.read_text() == "mine\n"
