"""ONNX export (``pyramid_bert.export``, ``pyramid-bert export``): onnxruntime logits equal eager PyTorch for each
method that exports, on lengths and batches other than the export example; refusals with their reasons; atomic
writes; CLI errors. Skipped without the ``[onnx]`` extra."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
ort = pytest.importorskip("onnxruntime")

from pyramid_bert import cli, export  # noqa: E402
from pyramid_bert.errors import ConfigError  # noqa: E402
from pyramid_bert.onnx_ops import kcenter_rounds  # noqa: E402
from pyramid_bert.patch.hf import pyramidize  # noqa: E402
from pyramid_bert.selection import gram_matrix, kcenter_greedy_reference  # noqa: E402
from tiny_models import tiny_bert  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

#: (fixed lengths or keep ratios) x methods; the tiny model has 3 layers and takes up to 64 tokens.
EXPORTING = {
    "dense": None,
    "coreset m=1": dict(lengths=[12, 8, 6], method="coreset", m=1),
    "coreset m=4 (one round at short inputs)": dict(lengths=[12, 8, 6], method="coreset", m=4),
    "coreset m=k-1 ratios": dict(keep_ratios=[0.5, 0.5, 0.25], method="coreset", m=None),
    "coreset m=0.5 ratios standardized duplicity merge": dict(
        keep_ratios=[0.75, 0.5, 0.25],
        method="coreset",
        m=0.5,
        distance="standardized",
        duplicity_attention=True,
        merge=True,
    ),
    "coreset m=1 ratios": dict(keep_ratios=[0.5, 0.25, 0.25], method="coreset", m=1),
    "attention": dict(lengths=[12, 8, 6], method="attention"),
    "attention ratios eager": dict(keep_ratios=[0.5, 0.5, 0.25], method="attention", attn="eager"),
    "first_k ratios": dict(keep_ratios=[0.5, 0.5, 0.25], method="first_k"),
    "first_k": dict(lengths=[10, 10, 4], method="first_k"),
    "average_pool": dict(method="average_pool", pool_windows=[2, 1, 3]),
    "input_first_k": dict(lengths=[12, 12, 12], method="input_first_k"),
}


#: Weights large enough that the logits (about 1) move with the tokens kept (the default 0.02 leaves them ~constant).
INIT = 0.2


def model_of(case: dict | None):
    case = dict(case or {})
    model = tiny_bert(attn=case.pop("attn", "sdpa"), initializer_range=INIT)
    return pyramidize(model, **case) if case else model


def other_inputs(seed: int = 7) -> list[dict[str, torch.Tensor]]:
    """Inputs the export check did not see: unpadded batch 1 at odd lengths and a padded batch of 3."""
    generator, result = torch.Generator().manual_seed(seed), []
    for real in ([4], [11], [19], [47], [63], [30, 9, 25]):
        tokens = max(real)
        mask = (torch.arange(tokens)[None, :] < torch.tensor(real)[:, None]).long()
        ids = torch.randint(0, 99, (len(real), tokens), generator=generator) * mask
        result.append({"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)})
    return result


def ort_logits(path: Path, example: dict[str, torch.Tensor]) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["logits"], {name: value.numpy() for name, value in example.items()})[0]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPORTING))
def test_onnxruntime_logits_equal_eager_for_each_exporting_method(name, tmp_path):
    model, out = model_of(EXPORTING[name]), tmp_path / "model.onnx"
    report = export.export_model(model, out, precision="fp32")
    assert out.is_file() and report.method == (EXPORTING[name] or {}).get("method", "dense")
    assert len(report.checks) >= 10 and all(check.max_abs_diff <= 1e-4 for check in report.checks)
    assert {check.tokens for check in report.checks} >= {2, 3, 13, 64} and any(check.padded for check in report.checks)
    dense = tiny_bert(attn=(EXPORTING[name] or {}).get("attn", "sdpa"), initializer_range=INIT)
    moved = []
    for example in other_inputs():
        with torch.no_grad():
            eager = model(**example).logits.numpy()
            moved.append(np.abs(eager - dense(**example).logits.numpy()).max())
        np.testing.assert_allclose(ort_logits(out, example), eager, atol=1e-4, rtol=0)
    if name != "dense":  # the selection changes the logits, so a graph that kept other tokens would be caught
        assert max(moved) > 1e-2


def test_the_onnx_kcenter_rounds_equal_the_reference_on_random_and_edge_inputs():
    torch.manual_seed(0)
    x = torch.randn(4, 9, 5)
    x[1, 5] = x[1, 2]  # an exact duplicate
    x[3, 1:] = x[3, 1]  # every token but CLS the same point
    mask = torch.ones(4, 9, dtype=torch.bool)
    mask[2, 6:] = False  # padding: chosen only after every real token
    gram = gram_matrix(x).numpy()
    for k, m in [(1, 1), (2, 1), (5, 1), (9, 1), (9, 2), (6, 3), (9, 8), (7, 10)]:
        got = kcenter_rounds(gram, mask.numpy(), np.array(k), np.array(m))
        np.testing.assert_array_equal(np.asarray(got), kcenter_greedy_reference(x, k, m=m, mask=mask).numpy())
    single = kcenter_rounds(gram[:1], mask[:1].numpy(), np.array(4), np.array(1))  # batch of 1
    np.testing.assert_array_equal(np.asarray(single), kcenter_greedy_reference(x[:1], 4, m=1).numpy())


def test_random_select_is_refused_with_the_measured_reason_and_nothing_is_written(tmp_path):
    model, out = model_of(dict(lengths=[8, 6, 4], method="random")), tmp_path / "random.onnx"
    with pytest.raises(ConfigError, match="'random' cannot be exported to ONNX: .*torch.Generator"):
        export.export_model(model, out)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match="SymIntArrayRef expected to contain only concrete integers"):
        export._export_graph(model, ("input_ids", "attention_mask"), 64, tmp_path / "x.onnx")  # the reason, measured


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        (
            dict(keep_ratios=[0.6, 0.5, 0.25], method="first_k"),
            r"ceil\(0.6 \* N\) in float32 .* 4 vs 3 tokens at N = 5",
        ),
        (dict(keep_ratios=[0.5, 0.5, 0.25], method="coreset", m=0.2), r"m = ceil\(0.2 \* k\) in float32"),
    ],
    ids=["keep ratio 0.6", "m 0.2"],
)
def test_ratios_that_float32_rounds_differently_are_refused_before_exporting(case, reason, tmp_path):
    with pytest.raises(ConfigError, match=reason):
        export.export_model(model_of(case), tmp_path / "model.onnx")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_the_float32_rounding_refusal_is_real_the_check_on_generated_inputs_catches_it_too(tmp_path, monkeypatch):
    monkeypatch.setattr(export, "_float32_rounding", lambda model, limit: None)
    with pytest.raises(ConfigError, match=r"'first_k': the exported graph does not match eager .*logits differ"):
        export.export_model(model_of(dict(keep_ratios=[0.6, 0.5, 0.25], method="first_k")), tmp_path / "m.onnx")


def test_a_graph_that_disagrees_with_eager_is_refused_and_not_written(tmp_path, monkeypatch):
    model, out = model_of(EXPORTING["first_k"]), tmp_path / "model.onnx"
    eager = export._eager_logits
    monkeypatch.setattr(export, "_eager_logits", lambda model, example: eager(model, example) + 1e-3)
    with pytest.raises(ConfigError, match=r"'first_k': the exported graph does not match eager .*batch 1 x 2 tokens"):
        export.export_model(model, out)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_writes_are_atomic_and_never_replace_a_file_unasked(tmp_path):
    out = tmp_path / "model.onnx"
    out.write_text("the user's file")
    model = model_of(EXPORTING["coreset m=1"])
    with pytest.raises(ConfigError, match="--out: .* exists; .*--force"):
        export.export_model(model, out)
    assert out.read_text() == "the user's file"
    report = export.export_model(model, out, force=True, precision="int8")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["model.onnx"]  # no temporary file left
    example = other_inputs()[-1]
    with torch.no_grad():
        eager = model(**example).logits.numpy()
    assert np.abs(ort_logits(out, example) - eager).max() < 0.05  # int8: close, not equal
    assert all(check.int8_max_abs_diff is not None for check in report.checks)


def save_folder(folder: Path, case: dict | None) -> Path:
    model_of(case).save_pretrained(folder)
    return folder


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    capsys.readouterr()  # what came before (save_pretrained's progress bar)
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.slow
def test_the_command_exports_a_pyramid_folder(tmp_path, capsys):
    folder = save_folder(tmp_path / "pyramid", EXPORTING["coreset m=1 ratios"])
    code, out, err = run_cli(["export", str(folder), "--out", str(tmp_path / "p.onnx")], capsys)
    assert code == 0, err
    assert "coreset, fp32" in out and "checked on" in out and (tmp_path / "p.onnx").is_file()


@pytest.mark.parametrize(
    ("argv", "flag"),
    [
        (["export", "{tmp}/missing", "--out", "{tmp}/m.onnx"], "MODEL_DIR"),
        (["export", "{dense}", "--out", "{tmp}/m.txt"], "--out: give a file name ending in .onnx"),
        (["export", "{dense}", "--out", "{tmp}/existing.onnx"], "--force"),
        (["export", "{dense}", "--out", "{tmp}"], "--out"),
        (["export", "{random}", "--out", "{tmp}/r.onnx"], "'random' cannot be exported"),
    ],
    ids=["missing folder", "not .onnx", "existing file", "out is a folder", "random"],
)
def test_command_errors_are_one_line_naming_the_flag(argv, flag, tmp_path, capsys):
    dense = save_folder(tmp_path / "dense", None)
    random = save_folder(tmp_path / "random", dict(lengths=[8, 6, 4], method="random"))
    (tmp_path / "existing.onnx").write_text("keep")
    words = [word.format(tmp=tmp_path, dense=dense, random=random) for word in argv]
    code, _, err = run_cli(words, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and flag in lines[0], err
    assert (tmp_path / "existing.onnx").read_text() == "keep"


def test_a_bad_precision_is_refused_while_parsing(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["export", "m", "--out", "m.onnx", "--precision", "int4"])
    assert exit_.value.code == 2 and "--precision" in capsys.readouterr().err


def test_without_the_extra_the_error_names_the_install_command(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(export, "onnx_ops", None)
    dense = save_folder(tmp_path / "dense", None)
    code, _, err = run_cli(["export", str(dense), "--out", str(tmp_path / "d.onnx")], capsys)
    assert code == 2 and 'pip install "pyramid-bert[onnx]"' in err
