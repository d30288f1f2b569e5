"""LRA backbones with input-layer token selection: selector, Big Bird wrapper, Performer, training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pyramid_bert.errors import ConfigError
from pyramid_bert.lra import InputTokenSelector, LraModelConfig, build_lra_model, keep_for_space_reduction
from pyramid_bert.lra.input_selection import pad_to_multiple, select_input_tokens
from pyramid_bert.lra.models import bigbird_attention_type
from pyramid_bert.lra.performer import favor_attention, orthogonal_gaussian_projection, softmax_attention
from pyramid_bert.lra.training import LraTrainConfig, evaluate_accuracy, train_lra_model

pytestmark = pytest.mark.usefixtures("one_thread")


TINY = {"hidden": 16, "num_layers": 2, "heads": 2, "intermediate": 32, "block_size": 4, "num_random_blocks": 1,
        "num_features": 16}


def tiny_config(backbone: str, seq_len: int = 60, **overrides: object) -> LraModelConfig:
    options = {**TINY, **overrides}
    return LraModelConfig(backbone=backbone, vocab_size=12, num_labels=3, seq_len=seq_len, **options)


def same_weights(reference: torch.nn.Module, config: LraModelConfig) -> torch.nn.Module:
    model = build_lra_model(config)
    model.load_state_dict(reference.state_dict())
    return model.eval()


def padded_batch(seq_len: int = 60) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 12, (3, seq_len), generator=generator)
    mask = torch.ones(3, seq_len, dtype=torch.bool)
    mask[1, seq_len // 3:] = False
    ids[~mask] = 0
    return ids, mask


# ---------------------------------------------------------------------------------------------------------
# keep count and selector
# ---------------------------------------------------------------------------------------------------------


def test_keep_for_space_reduction_reaches_the_reduction() -> None:
    assert keep_for_space_reduction(785, 0.7) == 429
    assert 1 - (429 / 785) ** 2 >= 0.7 > 1 - (430 / 785) ** 2
    assert keep_for_space_reduction(785, 0.7, multiple=8) == 424
    assert keep_for_space_reduction(100, 0.0) == 100
    with pytest.raises(ConfigError, match="reduction"):
        keep_for_space_reduction(100, 1.0)


@pytest.mark.parametrize("method", ["first_k", "random", "coreset"])
def test_selector_keeps_cls_first_in_order_and_shrinks(method: str) -> None:
    hidden = torch.randn(4, 30, 8, generator=torch.Generator().manual_seed(0))
    hidden[:, 0] = 100.0  # recognisable CLS row
    mask = torch.ones(4, 30, dtype=torch.bool)
    mask[2, 10:] = False
    kept, kept_mask, positions = select_input_tokens(hidden, mask, 12, method)
    assert kept.shape == (4, 12, 8) and kept_mask.shape == (4, 12)
    assert torch.equal(positions[:, 0], torch.zeros(4, dtype=torch.long))
    assert bool((positions.diff(dim=1) > 0).all())  # original order, no duplicates
    assert torch.equal(kept[:, 0], hidden[:, 0])
    assert int(kept_mask[2].sum()) == 10 and bool(mask[2].gather(0, positions[2][:10]).all())  # real first


def test_first_k_keeps_the_prefix() -> None:
    hidden = torch.randn(2, 20, 4)
    kept, _, positions = select_input_tokens(hidden, torch.ones(2, 20, dtype=torch.bool), 7, "first_k")
    assert torch.equal(positions, torch.arange(7).expand(2, 7))
    assert torch.equal(kept, hidden[:, :7])


def test_random_selector_is_reproducible_in_eval_and_varies_in_training() -> None:
    hidden = torch.randn(2, 40, 4)
    mask = torch.ones(2, 40, dtype=torch.bool)
    selector = InputTokenSelector("random", 10, seed=3).eval()
    first, _ = selector(hidden, mask)
    second, _ = selector(hidden, mask)
    assert torch.equal(first, second)
    selector.train()
    draws = [selector(hidden, mask)[0] for _ in range(3)]
    assert not all(torch.equal(draws[0], other) for other in draws[1:])


def test_dense_selector_and_full_keep_are_identity() -> None:
    hidden, mask = torch.randn(2, 9, 4), torch.ones(2, 9, dtype=torch.bool)
    for selector in (InputTokenSelector("dense"), InputTokenSelector("coreset", 9)):
        kept, kept_mask = selector(hidden, mask)
        assert torch.equal(kept, hidden) and torch.equal(kept_mask, mask)


def test_pad_to_multiple_appends_masked_zeros() -> None:
    hidden, mask = torch.ones(2, 10, 3), torch.ones(2, 10, dtype=torch.bool)
    padded, padded_mask = pad_to_multiple(hidden, mask, 4)
    assert padded.shape == (2, 12, 3) and padded_mask.tolist() == [[True] * 10 + [False] * 2] * 2
    assert float(padded[:, 10:].abs().sum()) == 0.0
    assert pad_to_multiple(hidden, mask, 5)[0] is hidden


def test_bad_settings_raise_config_errors() -> None:
    with pytest.raises(ConfigError, match="method"):
        InputTokenSelector("attention", 4)
    with pytest.raises(ConfigError, match="keep"):
        InputTokenSelector("coreset", None)
    with pytest.raises(ConfigError, match="backbone"):
        LraModelConfig(backbone="linformer", vocab_size=4, num_labels=2, seq_len=10)
    with pytest.raises(ConfigError, match="keep"):
        LraModelConfig(backbone="performer", vocab_size=4, num_labels=2, seq_len=10, method="first_k", keep=12)
    with pytest.raises(ConfigError, match="input_ids"):
        build_lra_model(tiny_config("performer"))(torch.zeros(2, 59, dtype=torch.long))


# ---------------------------------------------------------------------------------------------------------
# models
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backbone", ["performer", "bigbird"])
@pytest.mark.parametrize("method", ["coreset", "first_k", "random"])
def test_keeping_every_token_equals_the_full_model(backbone: str, method: str) -> None:
    dense = build_lra_model(tiny_config(backbone)).eval()
    everything = same_weights(dense, tiny_config(backbone, method=method, keep=61))
    ids, mask = padded_batch()
    assert torch.allclose(everything(ids, mask), dense(ids, mask), atol=1e-6)


@pytest.mark.parametrize("backbone", ["performer", "bigbird"])
def test_selection_shrinks_what_reaches_the_encoder(backbone: str) -> None:
    dense = build_lra_model(tiny_config(backbone)).eval()
    pruned = same_weights(dense, tiny_config(backbone, method="coreset", keep=33))
    ids, mask = padded_batch()
    hidden, kept_mask = pruned.kept_hidden(ids, mask)
    full_hidden, _ = dense.kept_hidden(ids, mask)
    assert hidden.shape == (3, 33, 16) and kept_mask.shape == (3, 33)
    assert torch.equal(hidden[:, 0], full_hidden[:, 0])  # CLS kept
    assert kept_mask.sum(dim=1).tolist() == [33, 21, 33]  # row 1: CLS + 20 real tokens
    logits = pruned(ids, mask)
    assert logits.shape == (3, 3) and not torch.allclose(logits, dense(ids, mask))


def test_first_k_model_sees_only_the_prefix() -> None:
    pruned = build_lra_model(tiny_config("performer", method="first_k", keep=21)).eval()
    ids, _ = padded_batch()
    changed = ids.clone()
    changed[:, 20:] = (changed[:, 20:] + 1) % 12  # tokens 20.. sit at positions 21.. after CLS: dropped
    assert torch.equal(pruned(ids), pruned(changed))
    changed[:, 19] = (changed[:, 19] + 1) % 12
    assert not torch.equal(pruned(ids), pruned(changed))


@pytest.mark.parametrize("keep", [None, 33, 30])
def test_bigbird_block_sparse_runs_with_padding_and_ignores_it(keep: int | None) -> None:
    method = "dense" if keep is None else "first_k"
    model = build_lra_model(tiny_config("bigbird", method=method, keep=keep)).eval()
    assert model.attention_type == "block_sparse"
    ids, mask = padded_batch()
    logits = model(ids, mask)
    assert torch.isfinite(logits).all()
    changed = ids.clone()
    changed[~mask] = 7  # what sits under the mask must not matter
    assert torch.allclose(model(changed, mask), logits, atol=1e-6)


def test_bigbird_falls_back_to_full_attention_when_too_short() -> None:
    short = tiny_config("bigbird", method="first_k", keep=20)  # (5 + 2 * 1) * 4 = 28 >= 20
    assert bigbird_attention_type(short) == "original_full"
    assert bigbird_attention_type(tiny_config("bigbird")) == "block_sparse"
    model = build_lra_model(short).eval()
    ids, mask = padded_batch()
    assert model(ids, mask).shape == (3, 3)


# ---------------------------------------------------------------------------------------------------------
# FAVOR+
# ---------------------------------------------------------------------------------------------------------


def test_projection_rows_are_orthogonal_within_a_block() -> None:
    projection = orthogonal_gaussian_projection(20, 8, torch.Generator().manual_seed(0)).double()
    block = projection[:8]
    gram = block @ block.T
    assert torch.allclose(gram - torch.diag(torch.diagonal(gram)), torch.zeros(8, 8, dtype=torch.float64), atol=1e-4)
    assert not torch.allclose(projection[8:16] @ block.T, torch.zeros(8, 8, dtype=torch.float64), atol=1e-2)
    assert projection.shape == (20, 8)


def test_favor_approximates_softmax_attention_better_with_more_features() -> None:
    generator = torch.Generator().manual_seed(0)
    query, key, value = (0.5 * torch.randn(2, 2, 16, 8, generator=generator, dtype=torch.float64) for _ in range(3))
    mask = torch.ones(2, 16, dtype=torch.bool)
    mask[1, 10:] = False
    exact = softmax_attention(query, key, value, mask)

    def mean_error(features: int) -> float:
        errors = []
        for seed in range(8):
            projection = orthogonal_gaussian_projection(features, 8, torch.Generator().manual_seed(seed)).double()
            errors.append(float((favor_attention(query, key, value, projection, mask) - exact).abs().mean()))
        return sum(errors) / len(errors)

    errors = [mean_error(features) for features in (8, 128, 2048)]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.1 * float(exact.abs().mean())


def test_favor_ignores_masked_keys() -> None:
    generator = torch.Generator().manual_seed(2)
    query, key, value = (torch.randn(1, 2, 12, 4, generator=generator) for _ in range(3))
    mask = torch.ones(1, 12, dtype=torch.bool)
    mask[0, 8:] = False
    projection = orthogonal_gaussian_projection(32, 4, torch.Generator().manual_seed(0))
    changed_key, changed_value = key.clone(), value.clone()
    changed_key[:, :, 8:] += 5.0
    changed_value[:, :, 8:] -= 3.0
    assert torch.allclose(favor_attention(query, key, value, projection, mask),
                          favor_attention(query, changed_key, changed_value, projection, mask), atol=1e-6)


# ---------------------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------------------


def class_token_data(count: int, seq_len: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Label c: 60 % of the tokens are drawn from ids {3c+1, 3c+2, 3c+3}, the rest uniformly from 1..9."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=count)
    own = 3 * labels[:, None] + rng.integers(1, 4, size=(count, seq_len))
    noise = rng.integers(1, 10, size=(count, seq_len))
    return np.where(rng.random((count, seq_len)) < 0.6, own, noise), labels


@pytest.mark.parametrize("backbone", ["performer", "bigbird"])
def test_tiny_model_learns_and_training_is_deterministic(backbone: str) -> None:
    tokens, labels = class_token_data(128)
    config = tiny_config(backbone, seq_len=40, dropout=0.0, method="coreset", keep=25)
    train = LraTrainConfig(epochs=8, lr=1e-2, batch_size=16, progress=False, seed=0)
    model = build_lra_model(config)
    losses = train_lra_model(model, tokens, labels, train)
    assert len(losses) == 8 * 8
    assert np.mean(losses[-8:]) < 0.5 * np.mean(losses[:8])
    again = train_lra_model(build_lra_model(config), tokens, labels, train)
    assert again == losses
    held_out, held_out_labels = class_token_data(64, seed=1)
    assert evaluate_accuracy(model, held_out, held_out_labels) > 0.8  # chance: 1/3


def test_training_rejects_mismatched_labels() -> None:
    tokens, labels = class_token_data(8)
    with pytest.raises(ConfigError, match="labels"):
        train_lra_model(build_lra_model(tiny_config("performer", seq_len=40)), tokens, labels[:5],
                        LraTrainConfig(epochs=1, progress=False))


# ---------------------------------------------------------------------------------------------------------
# experiment runner
# ---------------------------------------------------------------------------------------------------------


def test_measure_speedups_reports_every_method_against_no_pruning() -> None:
    from pyramid_bert.lra.experiment import measure_speedups

    base = tiny_config("performer")
    configs = {"no_pruning": base, "first_k": tiny_config("performer", method="first_k", keep=20)}
    weights = build_lra_model(base).state_dict()
    ids, mask = padded_batch()
    result = measure_speedups(configs, weights, ids.numpy(), mask.numpy(), repeats=2)
    assert set(result) == {"no_pruning", "first_k"}
    assert result["no_pruning"]["speedup_median"] == 1.0
    assert result["first_k"]["forward_seconds"] > 0 and result["first_k"]["speedup_median"] > 0
    assert result["no_pruning"]["selection_seconds"] == 0.0  # its selector returns its input: nothing to time
    assert all(row["selection_share"] >= 0.0 for row in result.values())
    with pytest.raises(ConfigError, match="no_pruning"):
        measure_speedups({"first_k": configs["first_k"]}, weights, ids.numpy(), mask.numpy())


def test_experiment_config_rejects_unknown_methods() -> None:
    from pyramid_bert.lra.experiment import LraExperimentConfig

    with pytest.raises(ConfigError, match="methods"):
        LraExperimentConfig(task="lra-image", backbone="performer", methods=("attention",))
    with pytest.raises(ConfigError, match="keep"):
        LraExperimentConfig(task="lra-image", backbone="performer", model={"keep": 3})


@pytest.mark.integration
def test_comparison_runs_end_to_end_on_byte_text() -> None:
    from pyramid_bert.lra.experiment import LraExperimentConfig, run_lra_comparison

    config = LraExperimentConfig(
        task="lra-bytes", backbone="bigbird", train_size=32, test_size=16,
        model={"hidden": 16, "num_layers": 1, "heads": 2, "intermediate": 32},
        train=LraTrainConfig(epochs=1, batch_size=16, progress=False), timing_batch=4, timing_repeats=1,
    )
    result = run_lra_comparison(config)
    rows = {row["label"]: row for row in result["rows"]}
    assert set(rows) == {"first_k", "random", "cs_k_1", "cs_opt", "no_pruning"}
    assert result["keep"] % 8 == 0 and rows["cs_opt"]["space_reduction"] >= 0.7
    assert (result["train_examples"], result["test_examples"]) == (32, 16)
    assert rows["no_pruning"]["keep"] == 1001 and rows["no_pruning"]["speedup_median"] == 1.0
    assert all(0.0 <= row["accuracy"] <= 1.0 and 0.0 < row["majority_share"] <= 1.0 for row in rows.values())
