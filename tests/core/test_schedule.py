import csv
from pathlib import Path

import pytest

from pyramid_bert.errors import ConfigError
from pyramid_bert.schedule import (
    PAPER_GRID,
    attention_space_reduction,
    constant_lengths,
    encoder_flops,
    layer_token_counts,
    pool_lengths,
    predicted_speedup,
    sequence_lengths,
    unique_grid,
    validate_lengths,
)

TABLE9 = Path(__file__).parents[1] / "data" / "table9_sequence_length_configs.csv"


def table9_rows():
    with TABLE9.open() as handle:
        return [
            (int(row["prune_upto"]), float(row["p"]), [int(row[f"layer{j}"]) for j in range(1, 13)])
            for row in csv.DictReader(handle)
        ]


def test_every_table9_row_is_eq5_with_floor():
    rows = table9_rows()
    assert len(rows) == 30
    for prune_upto, p, expected in rows:
        assert sequence_lengths(128, 12, p, prune_upto) == expected, (prune_upto, p)


def test_paper_grid_is_table9_in_order():
    assert [(u, p) for u, p, _ in table9_rows()] == list(PAPER_GRID)
    assert len(unique_grid()) == 29  # (3, 0.25) is listed twice in the paper


def test_design_example():
    assert sequence_lengths(n=128, num_layers=12, p=0.25, prune_upto=3) == [80, 50] + [32] * 10


def test_prune_upto_beyond_depth_cuts_the_decay_for_shallow_models():
    lengths = sequence_lengths(128, 6, 0.25, 9)
    assert lengths == sequence_lengths(128, 12, 0.25, 9)[:6]
    assert lengths == sorted(lengths, reverse=True)


def test_floor_is_robust_to_binary_rounding():
    # 100 * 0.29 is 28.999999999999996 in floating point
    assert sequence_lengths(100, 1, 0.29, 1) == [29]


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(n=0, num_layers=12, p=0.5, prune_upto=3), "n"),
        (dict(n=128, num_layers=12, p=0.0, prune_upto=3), "p"),
        (dict(n=128, num_layers=12, p=1.5, prune_upto=3), "p"),
        (dict(n=128, num_layers=12, p=0.5, prune_upto=0), "prune_upto"),
        (dict(n=128, num_layers=0, p=0.5, prune_upto=3), "num_layers"),
    ],
)
def test_bad_eq5_parameters_name_the_parameter(kwargs, word):
    with pytest.raises(ConfigError, match=word):
        sequence_lengths(**kwargs)


def test_pool_lengths_keep_cls_apart():
    assert pool_lengths(128, [1, 2, 1]) == [128, 65, 65]
    assert pool_lengths(64, [3]) == [1 + 21]
    with pytest.raises(ConfigError, match="pool_windows"):
        pool_lengths(64, [0])


def test_validate_lengths_rejects_increase_wrong_count_and_too_long():
    with pytest.raises(ConfigError, match="increase"):
        validate_lengths([10, 20], 2)
    with pytest.raises(ConfigError, match="one entry per encoder layer"):
        validate_lengths([10, 10], 3)
    with pytest.raises(ConfigError, match="exceeds"):
        validate_lengths([200], 1, n=128)
    with pytest.raises(ConfigError, match=r"lengths\[0\]"):
        validate_lengths([0], 1)


def test_token_counts_middle_end_and_truncated_input():
    assert layer_token_counts(8, [6, 4]) == [(8, 6), (6, 4)]
    assert layer_token_counts(8, [6, 4], position="end") == [(8, 8), (6, 6)]
    assert layer_token_counts(8, [4, 4], truncate_input=True) == [(4, 4), (4, 4)]
    with pytest.raises(ConfigError, match="position"):
        layer_token_counts(8, [4], position="start")


def test_dense_schedule_predicts_no_speedup_and_no_space_reduction():
    geometry = dict(hidden=384, intermediate=1536, num_layers=6)
    assert predicted_speedup(128, [128] * 6, **geometry) == pytest.approx(1.0)
    assert attention_space_reduction(128, [128] * 6) == 0.0


def test_flops_by_hand_for_one_tiny_layer():
    # a = 4 attention tokens, b = 2 FFN tokens, H = 2, I = 3
    assert encoder_flops(4, [2], hidden=2, intermediate=3, num_layers=1) == 8 * 4 * 4 + 4 * 16 * 2 + 4 * 2 * 2 * 3


def test_constant_32_schedule_predicts_about_3_5x_for_minilm_geometry():
    speedup = predicted_speedup(128, constant_lengths(32, 6), hidden=384, intermediate=1536, num_layers=6)
    assert 3.3 < speedup < 3.6
    # input truncation also shrinks layer 1's attention, so it predicts more
    truncated = predicted_speedup(
        128, constant_lengths(32, 6), hidden=384, intermediate=1536, num_layers=6, truncate_input=True
    )
    assert truncated > speedup


def test_space_reduction_matches_appendix_c_formula():
    assert attention_space_reduction(4, [2, 2]) == pytest.approx(1 - (4 + 4) / (2 * 16))


def test_attention_space_reduction_paper_formula_and_exact_one_for_where_selection_sits():
    lengths = sequence_lengths(128, 12, 0.25, 1)  # (prune_upto 1, p 0.25): [32] * 12
    assert round(100 * attention_space_reduction(128, lengths), 1) == 93.8  # the paper's 1 - sum l_j^2 / (L N^2)
    for position in ("middle", "end"):  # layer 1 attends over N, layer j over l_(j-1), at either position
        exact = attention_space_reduction(128, lengths, exact=True, position=position)
        assert round(100 * exact, 1) == 85.9
        assert exact == pytest.approx(1 - (128**2 + 11 * 32**2) / (12 * 128**2))
    # Input-first-k cuts before layer 1: both formulas agree.
    constant = [40] * 12
    assert attention_space_reduction(128, constant, exact=True, truncate_input=True) == pytest.approx(
        attention_space_reduction(128, constant)
    )
    # The exact one follows the attention token counts of the cost model.
    lengths = [80, 50, 32, 32]
    counts = [a for a, _ in layer_token_counts(128, lengths)]
    assert counts == [128, 80, 50, 32]
    assert attention_space_reduction(128, lengths, exact=True) == pytest.approx(
        1 - sum(a * a for a in counts) / (4 * 128**2)
    )
