"""Where commands write: one rule (:mod:`pyramid_bert.io`'s output guards) for every command. An existing file, or a
folder this command did not make, is refused with one line naming the flag and ``--force``, and left untouched;
``--force`` replaces it; a re-run refreshes the folder it made itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pyramid_bert import cli
from pyramid_bert.errors import ConfigError
from pyramid_bert.io import OUTPUT_MARKER, check_output_dir, check_output_file, mark_output_dir, output_marker
from train_fixtures import make_keyword_task, write_tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")


# ------------------------------------------------------------------------------------------------- the rule
def test_an_existing_file_is_refused_unless_forced(tmp_path):
    path = tmp_path / "result.json"
    assert check_output_file(path, "--json-out", force=False) == path
    path.write_text("mine\n")
    with pytest.raises(ConfigError, match=r"^--json-out: .*result.json exists; .*--force"):
        check_output_file(path, "--json-out", force=False)
    assert check_output_file(path, "--json-out", force=True) == path
    with pytest.raises(ConfigError, match="is a folder"):
        check_output_file(tmp_path, "--json-out", force=True)


def test_a_folder_is_written_into_when_absent_empty_or_made_by_the_same_command(tmp_path):
    assert check_output_dir(tmp_path / "new", "--out", kind="report", force=False) == tmp_path / "new"
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty", "--out", kind="report", force=False)
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "notes.txt").write_text("mine\n")
    with pytest.raises(ConfigError, match=r"^--out: .*theirs exists and was not written by `pyramid-bert report`"):
        check_output_dir(tmp_path / "theirs", "--out", kind="report", force=False)
    check_output_dir(tmp_path / "theirs", "--out", kind="report", force=True)
    ours = mark_output_dir(tmp_path / "ours", "report")
    (ours / "report.md").write_text("# an earlier report\n")
    check_output_dir(ours, "--out", kind="report", force=False)
    with pytest.raises(ConfigError, match="not written by `pyramid-bert analyze`"):
        check_output_dir(ours, "--out", kind="analyze", force=False)
    with pytest.raises(ConfigError, match="is a file; give the name of a folder"):
        check_output_dir(ours / "report.md", "--out", kind="report", force=True)


def test_a_folder_replaced_as_a_whole_may_hold_only_what_the_command_wrote(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    mark_output_dir(folder, "compress", whole=True)
    assert output_marker(folder) == {"kind": "compress", "files": ["config.json"]}
    check_output_dir(folder, "--out", kind="compress", force=False, whole=True)
    (folder / "eval-test.json").write_text("{}")
    with pytest.raises(ConfigError, match=r"holds files `pyramid-bert compress` did not write \(eval-test.json\)"):
        check_output_dir(folder, "--out", kind="compress", force=False, whole=True)
    check_output_dir(folder, "--out", kind="compress", force=True, whole=True)


# ----------------------------------------------------------------------------------------------- commands
def refused(argv: list[str], flag: str, capsys) -> None:
    """``argv`` fails with one line on stderr naming ``flag`` and --force."""
    capsys.readouterr()
    assert cli.main(argv) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and f"error: {flag}: " in lines[0] and "--force" in lines[0], lines


def theirs(folder: Path, name: str) -> Path:
    """A folder of the user's holding ``name`` (the name of one of the command's outputs)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("mine\n")
    return folder / name


@pytest.fixture(scope="module")
def task():
    return make_keyword_task(sizes=(32, 16, 16))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, task) -> Path:
    """A tiny fine-tuned pyramid checkpoint (2 layers, N = 16, lengths 8, 4)."""
    import torch

    from pyramid_bert.training.loop import FinetuneConfig, finetune

    root = tmp_path_factory.mktemp("outputs")
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    config = FinetuneConfig(task="rt-polarity", model=str(write_tiny_bert(root / "tiny")), lengths=[8, 4], epochs=0.5,
                            batch_size=16, out=str(root / "run"))  # fmt: skip
    out = finetune(config, task_data=task, progress=False)
    torch.set_num_threads(previous)
    return out


def test_evaluate_json_out(checkpoint, task, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("pyramid_bert.data.load_task", lambda *args, **kwargs: task)
    mine = tmp_path / "result.json"
    mine.write_text("mine\n")
    argv = ["evaluate", str(checkpoint), "--no-speed", "--json-out", str(mine)]
    refused(argv, "--json-out", capsys)
    assert mine.read_text() == "mine\n"
    assert cli.main([*argv, "--force"]) == 0
    assert json.loads(mine.read_text())["lengths"] == [8, 4]


def test_bench_csv(tmp_path, capsys):
    mine = tmp_path / "bench.csv"
    mine.write_text("mine\n")
    argv = ["bench", "--model", "minilm-l6", "--n", "16", "--batch-sizes", "1", "--configs", "1:0.5", "--m", "1",
            "--repeats", "1", "--warmup", "0", "--csv", str(mine)]  # fmt: skip
    refused(argv, "--csv", capsys)
    assert mine.read_text() == "mine\n"
    assert cli.main([*argv, "--force"]) == 0
    assert mine.read_text().startswith("model,")


def test_analyze_out(tmp_path, monkeypatch, capsys):
    model = write_tiny_bert(tmp_path / "tiny", num_labels=2)
    monkeypatch.setattr("pyramid_bert.data.load_task", lambda *args, **kwargs: make_keyword_task(sizes=(8, 12, 8)))
    mine = theirs(tmp_path / "out", "redundancy.md")
    argv = ["analyze", "redundancy", "--model", str(model), "--out", str(mine.parent), "--no-progress"]
    refused(argv, "--out", capsys)
    assert mine.read_text() == "mine\n" and not (mine.parent / OUTPUT_MARKER).exists()
    assert cli.main([*argv, "--force"]) == 0
    assert mine.read_text().startswith("#") and (mine.parent / "redundancy.csv").is_file()
    assert cli.main(argv) == 0  # a re-run refreshes the folder it made


def test_ablate_report(tmp_path, capsys):
    mine = theirs(tmp_path / "ablate" / "report", "m.md")
    argv = ["ablate", "m", "--synthetic", "--out", str(tmp_path / "ablate"), "--workers", "1", "--no-progress"]
    refused(argv, "--out", capsys)
    assert mine.read_text() == "mine\n" and not (tmp_path / "ablate" / "results.sqlite").exists()  # refused first
    assert cli.main([*argv, "--force"]) == 0
    assert "Table 5" in mine.read_text()
    assert cli.main(argv) == 0


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sweep") / "smoke"
    argv = ["sweep", "--synthetic", "--preset", "smoke", "--out", str(out), "--workers", "1", "--no-progress"]
    assert cli.main(argv) == 0
    return out / "results.sqlite"


def test_report_out(store, tmp_path, capsys):
    mine = theirs(tmp_path / "rep", "report.md")
    argv = ["report", str(store), "--out", str(mine.parent), "--no-plots"]
    refused(argv, "--out", capsys)
    assert mine.read_text() == "mine\n" and sorted(p.name for p in mine.parent.iterdir()) == ["report.md"]
    assert cli.main([*argv, "--force"]) == 0
    assert mine.read_text() != "mine\n" and output_marker(mine.parent) == {"kind": "report"}
    assert cli.main(argv) == 0


def test_reproduce_all_report_all_md(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("pyramid_bert.commands.reproduce.STEPS", ())  # the main job and report-all.md only
    mine = theirs(tmp_path / "runs" / "reproduce", "report-all.md")
    argv = ["reproduce", "--preset", "smoke", "--synthetic", "--all", "--out", "runs/reproduce", "--workers", "1",
            "--no-progress"]  # fmt: skip
    refused(argv, "--out", capsys)
    assert mine.read_text() == "mine\n" and not (mine.parent / "results.sqlite").exists()  # refused before the job
    assert cli.main([*argv, "--force"]) == 0
    assert mine.read_text().startswith("# pyramid-bert: every table and figure")


def test_lra_out(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("pyramid_bert.lra.experiment.run_lra_comparison", lambda config: {"config": config.to_dict()})
    monkeypatch.setattr("pyramid_bert.lra.experiment.format_comparison", lambda result: "one seed")
    monkeypatch.setattr("pyramid_bert.lra.summary.group_cells", lambda results: {})
    monkeypatch.setattr("pyramid_bert.lra.summary.format_table4", lambda cells: "table 4")
    mine = theirs(tmp_path / "lra", "lra-image_performer.md")
    argv = ["lra", "--task", "lra-image", "--backbone", "performer", "--quiet", "--out", str(mine.parent)]
    refused(argv, "--out", capsys)
    assert mine.read_text() == "mine\n" and sorted(p.name for p in mine.parent.iterdir()) == [mine.name]
    assert cli.main([*argv, "--force"]) == 0
    assert mine.read_text().startswith("## LRA lra-image, performer")
    assert cli.main(argv) == 0  # a re-run reads its seed back from its own folder
