"""Bad input through the CLI entry point: exit code 2, one line on stderr naming the flag, never a traceback.

Every case runs ``pyramid_bert.cli.main(argv)`` as the console script does. ``{model}`` is a tiny random BERT
with 6 encoder layers (like minilm-l6), ``{dense}`` a densely fine-tuned checkpoint of it; the task is the
keyword fixture, so nothing is downloaded.
"""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import pytest

from pyramid_bert import cli
from train_fixtures import make_keyword_task, write_tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")

FINETUNE = ["finetune", "--task", "rt-polarity", "--model", "{model}", "--out", "{tmp}/run", "--no-progress"]
EVALUATE = ["evaluate", "{dense}", "--no-speed", "--only-infer", "coreset"]

CASES = {
    # bench
    "bench batch size 0": (["bench", "--batch-sizes", "0"], "--batch-sizes"),
    "bench batch size -1": (["bench", "--batch-sizes", "-1"], "--batch-sizes"),
    "bench batch size abc": (["bench", "--batch-sizes", "abc"], "--batch-sizes"),
    "bench missing model": (["bench", "--model", "/no/such/model"], "--model"),
    "bench folder that is no model": (["bench", "--model", "{tmp}"], "--model"),
    "bench prune-upto beyond the layers": (["bench", "--configs", "7:0.25", "--batch-sizes", "1"], "1..6"),
    "bench m 0": (["bench", "--m", "1,0"], "--m"),
    "bench merge without a task": (["bench", "--merge"], "--merge"),
    "bench unknown distance": (["bench", "--distance", "manhattan"], "--distance"),
    "finetune unknown distance": (["finetune", "--task", "rt-polarity", "--distance", "l1", "--out", "{tmp}/x"], "--distance"),
    "finetune distill weight 2": (["finetune", "--task", "rt-polarity", "--p", "0.5", "--prune-upto", "2",
                                   "--distill-weight", "2", "--out", "{tmp}/x"], "--distill-weight"),
    "finetune merge with average_pool": (["finetune", "--task", "rt-polarity", "--method", "average_pool",
                                          "--pool-windows", "1,2,1,1,1,1", "--merge", "--out", "{tmp}/x"], "--merge"),
    "bench m word": (["bench", "--m", "all"], "--m"),
    "bench n 1": (["bench", "--n", "1"], "--n"),
    "finetune epochs inf": ([*FINETUNE, "--epochs", "inf"], "--epochs"),
    "lra seeds beyond 32 bits": (["lra", "--seeds", "0,4294967296"], "--seeds: distinct integers in 0..4294967295"),
    "finetune seed -1": ([*FINETUNE, "--seed", "-1"], "--seed"),
    "sweep max train examples 0": (["sweep", "--synthetic", "--max-train-examples", "0", "--out", "{tmp}/s"],
                                   "--max-train-examples"),
    "compress target speedup inf": (["compress", "--task", "rt-polarity", "--target-speedup", "inf", "--out",
                                     "{tmp}/c"], "--target-speedup"),
    "predict max length beyond the cap": (["predict", "{dense}", "--input", "{tmp}/in.csv", "--output",
                                           "{tmp}/out.csv", "--max-length", "100000"], "--max-length"),
    # report
    "report empty file": (["report", "{tmp}/empty.sqlite"], "not a pyramid-bert results store"),
    "report folder": (["report", "{tmp}"], "is a folder, not a results store"),
    "report missing file": (["report", "{tmp}/nothing.sqlite"], "no such file"),
    "report text file": (["report", "{tmp}/notes.txt"], "not a pyramid-bert results store"),
    "report another sqlite file": (["report", "{tmp}/other.sqlite"], "not a pyramid-bert results store"),
    # finetune
    "finetune prune-upto beyond the layers": ([*FINETUNE, "--p", "0.25", "--prune-upto", "7"], "--prune-upto"),
    "finetune prune-upto 0": ([*FINETUNE, "--p", "0.25", "--prune-upto", "0"], "--prune-upto"),
    "finetune prune-upto without p": ([*FINETUNE, "--prune-upto", "2"], "--p"),
    "finetune p above 1": ([*FINETUNE, "--p", "1.5", "--prune-upto", "2"], "--p"),
    "finetune m 0": ([*FINETUNE, "--m", "0", "--lengths", "8,8,4,4,4,4"], "--m"),
    "finetune m 1.5": ([*FINETUNE, "--m", "1.5", "--lengths", "8,8,4,4,4,4"], "--m"),
    "finetune m word": ([*FINETUNE, "--m", "k", "--lengths", "8,8,4,4,4,4"], "--m"),
    "finetune epochs 0": ([*FINETUNE, "--epochs", "0", "--lengths", "8,8,4,4,4,4"], "--epochs"),
    "finetune lr 0": ([*FINETUNE, "--lr", "0", "--lengths", "8,8,4,4,4,4"], "--lr"),
    "finetune batch size 0": ([*FINETUNE, "--batch-size", "0", "--lengths", "8,8,4,4,4,4"], "--batch-size"),
    "finetune position": ([*FINETUNE, "--position", "start", "--lengths", "8,8,4,4,4,4"], "--position"),
    "finetune method": ([*FINETUNE, "--method", "magic"], "--method"),
    "finetune dense with a schedule": ([*FINETUNE, "--method", "dense", "--p", "0.5"], "--p"),
    "finetune lengths too many": ([*FINETUNE, "--lengths", "8,8,4,4,4,4,4"], "--lengths"),
    "finetune lengths increasing": ([*FINETUNE, "--lengths", "4,8,8,8,8,8"], "--lengths"),
    "finetune lengths word": ([*FINETUNE, "--lengths", "8,x"], "--lengths"),
    "finetune threads 0": ([*FINETUNE, "--threads", "0", "--lengths", "8,8,4,4,4,4"], "--threads"),
    "finetune device": ([*FINETUNE, "--device", "tpu", "--lengths", "8,8,4,4,4,4"], "--device"),
    # evaluate (only infer on the dense checkpoint)
    "evaluate prune-upto beyond the layers": ([*EVALUATE, "--p", "0.5", "--prune-upto", "9"], "--prune-upto"),
    "evaluate m 0": ([*EVALUATE, "--p", "0.5", "--prune-upto", "2", "--m", "0"], "--m"),
    "evaluate p 0": ([*EVALUATE, "--p", "0", "--prune-upto", "2"], "--p"),
    "evaluate repeats 0": (["evaluate", "{dense}", "--repeats", "0"], "--repeats"),
    "evaluate batch size 0": (["evaluate", "{dense}", "--batch-size", "0"], "--batch-size"),
    "evaluate max examples 0": (["evaluate", "{dense}", "--max-examples", "0"], "--max-examples"),
    "evaluate threads 0": (["evaluate", "{dense}", "--threads", "0"], "--threads"),
}

#: Flags whose range only the parse-time number type checks (their run-time duplicates are gone): the one-line
#: error names the flag and its range, also under a sub-action (``data show``, ``analyze redundancy``).
RANGE_CASES = {
    "bench warmup -1": (["bench", "--warmup", "-1"], "--warmup: must be an int >= 0"),
    "bench examples 0": (["bench", "--examples", "0"], "--examples: must be an int >= 1"),
    "bench repeats 0": (["bench", "--repeats", "0"], "--repeats: must be an int >= 1"),
    "bench threads 0": (["bench", "--threads", "0"], "--threads: must be an int >= 1"),
    "data show examples -1": (["data", "show", "trec", "--examples", "-1"], "--examples: must be an int >= 0"),
    "data export rows 0": (["data", "export", "rt-polarity", "--out", "x.csv", "--rows", "0"], "--rows: must be an int >= 1"),
    "analyze eps 0": (["analyze", "redundancy", "--eps", "0"], "--eps: must be a finite number in (0, 2]"),
    "analyze eps quantile 1": (["analyze", "redundancy", "--eps-quantile", "1"], "--eps-quantile: must be a finite number in (0, 1)"),
    "analyze min samples 0": (["analyze", "redundancy", "--min-samples", "0"], "--min-samples: must be an int >= 1"),
    "analyze batch size 0": (["analyze", "importance", "--batch-size", "0"], "--batch-size: must be an int in 1.."),
    "analyze threads 0": (["analyze", "importance", "--threads", "0"], "--threads: must be an int >= 1"),
    "ablate configs 0": (["ablate", "schedules", "--configs", "0"], "--configs: must be an int >= 1"),
    "predict max length 1": (["predict", "model", "--input", "in.csv", "--output", "out.csv", "--max-length", "1"],
                             "--max-length: must be an int in 2.."),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The tiny 6-layer model, a dense checkpoint of it, and files that are not results stores."""
    import torch

    from pyramid_bert.training.loop import FinetuneConfig, finetune

    root = tmp_path_factory.mktemp("bad-input")
    model = write_tiny_bert(root / "tiny6", num_layers=6)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    config = FinetuneConfig(task="rt-polarity", model=str(model), method="dense", epochs=0.25, batch_size=16,
                            out=str(root / "dense"))  # fmt: skip
    dense = finetune(config, task_data=make_keyword_task(sizes=(32, 8, 8)), progress=False, evaluate_dev=False)
    torch.set_num_threads(previous)
    return {"model": model, "dense": dense}


@pytest.fixture
def not_stores(tmp_path) -> dict[str, bytes]:
    """Files a user might pass to ``report`` by mistake, with their bytes (which must stay as they are)."""
    (tmp_path / "empty.sqlite").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("my notes\n")
    with sqlite3.connect(tmp_path / "other.sqlite") as db:
        db.execute("CREATE TABLE mine (x)")
    db.close()
    return {name: (tmp_path / name).read_bytes() for name in ("empty.sqlite", "notes.txt", "other.sqlite")}


@pytest.mark.parametrize(("argv", "needle"), list(RANGE_CASES.values()), ids=list(RANGE_CASES))
def test_a_number_out_of_range_is_one_line_naming_the_flag_and_the_range(argv, needle, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert exit_.value.code == 2 and len(lines) == 1
    assert lines[0].startswith(f"pyramid-bert {argv[0]}") and needle in lines[0]


@pytest.mark.parametrize(("argv", "needle"), list(CASES.values()), ids=list(CASES))
def test_bad_input_is_one_line_naming_the_flag_with_exit_code_2(
    argv, needle, files, not_stores, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr("pyramid_bert.data.load_task", lambda *args, **kwargs: make_keyword_task(sizes=(8, 8, 8)))
    values = {"model": str(files["model"]), "dense": str(files["dense"]), "tmp": str(tmp_path)}
    try:
        code = cli.main([part.format(**values) for part in argv])
    except SystemExit as exit_:  # argparse's own checks (types, choices) exit from parse_args
        code = exit_.code
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2, captured.err
    assert len(lines) == 1, captured.err
    assert needle in lines[0] and "Traceback" not in captured.err
    assert lines[0].startswith(f"pyramid-bert {argv[0]}: error: ")
    for name, before in not_stores.items():  # report never writes to what it was given
        assert (tmp_path / name).read_bytes() == before
    assert not (tmp_path / "report").exists() and not (tmp_path / "run").exists()


def test_bench_n_beyond_a_checkpoints_positions_is_one_error_not_a_traceback(files, capsys):
    code = cli.main(["bench", "--model", str(files["model"]), "--n", "65", "--batch-sizes", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.splitlines()[-1] == "pyramid-bert bench: error: --n: must be at most 64 (the position embeddings of --model), got 65"


@pytest.mark.parametrize("spelling", ["k-1", "none", "K-1", "None"])
def test_m_k_minus_1_is_accepted_by_finetune_evaluate_and_bench(spelling):
    from pyramid_bert.spec import parse_m_list

    parser = cli.build_parser()
    args = parser.parse_args(["finetune", "--task", "rt-polarity", "--out", "x", "--m", spelling])
    assert args.m is None
    assert parser.parse_args(["evaluate", "ckpt", "--only-infer", "coreset", "--m", spelling]).m is None
    assert parse_m_list(f"1,0.2,{spelling}") == [1, 0.2, None]


def test_finetune_config_takes_k_minus_1_and_stores_it_as_none():
    from pyramid_bert.training.config import FinetuneConfig, validate_config

    config = FinetuneConfig.from_dict(dict(task="rt-polarity", lengths=[8, 4], m="k-1"))
    assert config.selection.m is None and FinetuneConfig.from_dict({**config.to_dict(), "m": "none"}) == config
    validate_config(config)


def test_help_spells_m_as_k_minus_1_and_explains_epochs_lr_and_prune_upto(capsys):
    for command in ("finetune", "evaluate", "bench"):
        with pytest.raises(SystemExit):
            cli.main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "k-1" in text, command
        assert "--m M" in text or "--m " in text
    with pytest.raises(SystemExit):
        cli.main(["finetune", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "training epochs" in text and "learning rate" in text and "1..L" in text


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """``(argv prefix, parser)`` of every command and sub-command of ``parser``."""
    if prefix:
        yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, (*prefix, name))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_numeric(action: argparse.Action) -> bool:
    """A flag taking numbers: ``type=int``/``float``, a validated number type, or a default like ``"32,1"``."""
    if not action.option_strings or action.nargs == 0:
        return False
    if action.type in (int, float) or hasattr(action.type, "bounds") or hasattr(action.type, "item"):
        return True
    return isinstance(action.default, str) and all(_is_number(part) for part in action.default.split(","))


def _numeric_flags() -> list[tuple[tuple[str, ...], str, argparse.Action]]:
    return [(prefix, action.option_strings[-1], action) for prefix, parser in _commands(cli.build_parser())
            for action in parser._actions if _is_numeric(action)]  # fmt: skip


def _outside(action: argparse.Action) -> list[str]:
    """Values every numeric flag refuses (nan, inf, -1: none takes a negative number), and one just outside each
    end of its declared range."""
    values = ["nan", "inf", "-1", "abc"]
    item = getattr(action.type, "item", action.type)
    bounds = getattr(item, "bounds", None)
    if bounds is not None:
        step = 1 if item.integer else 0.5
        if bounds.low is not None:
            values.append(str(bounds.low - step if bounds.low_inclusive else bounds.low))
        if bounds.high is not None:
            values.append(str(bounds.high + step if bounds.high_inclusive else bounds.high))
    if hasattr(action.type, "item") or isinstance(action.default, str):  # lists: one bad item among good ones
        values.append("1,nan")
    return list(dict.fromkeys(values))


NUMERIC_FLAGS = _numeric_flags()
BAD_NUMBERS = [(prefix, flag, value) for prefix, flag, action in NUMERIC_FLAGS for value in _outside(action)]


def test_every_numeric_flag_of_every_command_declares_a_validated_type():
    commands = {prefix[0] for prefix, _ in _commands(cli.build_parser())}
    assert {"finetune", "evaluate", "bench", "sweep", "reproduce", "compress", "predict", "ablate", "analyze", "lra",
            "data"} <= commands  # fmt: skip
    unvalidated = [f"{' '.join(prefix)} {flag}" for prefix, flag, action in NUMERIC_FLAGS
                   if not (hasattr(action.type, "bounds") or hasattr(action.type, "item"))]  # fmt: skip
    assert not unvalidated, f"numeric flags without a flag_types type: {unvalidated}"


@pytest.mark.parametrize(("prefix", "flag", "value"), BAD_NUMBERS, ids=[" ".join([*p, f, v]) for p, f, v in BAD_NUMBERS])
def test_every_numeric_flag_refuses_nan_inf_and_out_of_range_while_parsing(prefix, flag, value, capsys):
    with pytest.raises(SystemExit) as exit_:  # at parse time: no command runs, nothing is read or loaded
        cli.build_parser().parse_args([*prefix, f"{flag}={value}"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert exit_.value.code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"pyramid-bert {' '.join(prefix)}: error: argument {flag}"), err
    assert value in lines[0], err


@pytest.mark.parametrize(("prefix", "flag", "action"), NUMERIC_FLAGS, ids=[" ".join([*p, f]) for p, f, _ in NUMERIC_FLAGS])
def test_numeric_flags_accept_their_defaults_and_range_ends(prefix, flag, action):
    item = getattr(action.type, "item", action.type)
    bounds = getattr(item, "bounds", None)
    if bounds is None:
        pytest.skip("no declared range")
    if action.default is not None and not isinstance(action.default, str):
        assert action.default in bounds
    for end, inclusive in ((bounds.low, bounds.low_inclusive), (bounds.high, bounds.high_inclusive)):
        if end is not None and inclusive:
            assert item(str(end)) == end
