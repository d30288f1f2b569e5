"""``compress``: the choice rule on synthetic tables, candidates, and a whole run on a tiny model and a CSV with
string labels (output folder, model card, resume after a kill, warm start, evaluate, predict, pipeline)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from pyramid_bert import cli
from pyramid_bert.compress import Candidate, CompressSettings, choose, compress, read_candidates
from pyramid_bert.compress.dev_noise import DevDifference, dev_difference
from pyramid_bert.errors import ConfigError
from train_fixtures import make_keyword_task, write_tiny_bert

ROWS = [
    {"label": "a", "speedup": 1.4, "dev": 0.80},
    {"label": "b", "speedup": 2.1, "dev": 0.78},
    {"label": "c", "speedup": 2.6, "dev": 0.79},
    {"label": "d", "speedup": 3.2, "dev": 0.70},
]


def test_target_speedup_takes_the_best_dev_metric_among_those_fast_enough():
    assert choose(ROWS, dense_dev=0.81, target_speedup=2.0).index == 2
    assert choose(ROWS, dense_dev=0.81, target_speedup=1.0).index == 0
    assert choose(ROWS, dense_dev=0.81, target_speedup=3.0).index == 3


def test_an_unreachable_target_names_the_best_reachable_speedup():
    with pytest.raises(ConfigError, match=r"--target-speedup 4: .* best reachable speedup is 3.20X \(d\)"):
        choose(ROWS, dense_dev=0.81, target_speedup=4)


def test_max_drop_takes_the_fastest_within_the_drop():
    assert choose(ROWS, dense_dev=0.81, max_drop=2.0).index == 2  # c loses 2.0 points, d 11
    assert choose(ROWS, dense_dev=0.81, max_drop=1.0).index == 0
    with pytest.raises(ConfigError, match=r"--max-drop 0.5: .* smallest loss \(upper end\) is 1.0 points \(a, 1.40X\)"):
        choose(ROWS, dense_dev=0.81, max_drop=0.5)


def _interval(mean, half, examples=120):
    return {"mean": mean, "low": mean - half, "high": mean + half, "examples": examples}


def test_target_speedup_prefers_the_slower_configuration_unless_a_faster_one_is_significantly_better_on_dev():
    def level(i, j):  # every paired dev difference reaches 0: dev cannot tell them apart
        return DevDifference(0.0, -3.0, 3.0, 120)

    choice = choose(ROWS, dense_dev=0.81, target_speedup=2.0, compare=level)
    assert choice.index == 1 and "slowest of the 3" in choice.reason and "120 dev examples" in choice.reason

    def c_clearly_better(i, j):
        return DevDifference(-4.0, -6.0, -1.0, 120) if (i, j) == (1, 2) else DevDifference(0.0, 0.0, 0.0, 120)

    assert choose(ROWS, dense_dev=0.81, target_speedup=2.0, compare=c_clearly_better).index == 2


def test_max_drop_reads_the_upper_end_of_the_dev_loss_and_says_when_dev_is_too_small():
    rows = [dict(row) for row in ROWS]
    # dev differences to dense, points (negative = worse than dense); the losses' upper ends are 2.0, 2.8, 4.5, 14
    for row, difference in zip(rows, (_interval(-1.0, 1.0), _interval(-2.0, 0.8), _interval(-2.5, 2.0),
                                      _interval(-11.0, 3.0)), strict=True):  # fmt: skip
        row["dev_vs_dense"] = difference
    assert choose(rows, dense_dev=0.81, max_drop=3.0).index == 1  # b: at most 2.8 lost; c might lose 4.5
    choice = choose(rows, dense_dev=0.81, max_drop=2.0)
    assert choice.index == 0 and "upper end of its 95% interval" in choice.reason and choice.warning is None
    with pytest.raises(ConfigError, match=r"smallest loss \(upper end\) is 2.0 points \(a, 1.40X\); dev has 120 "
                       r"examples \(one is 0.8 points of accuracy\): its 95% intervals are about ±1.0 points"):
        choose(rows, dense_dev=0.81, max_drop=0.5)
    rows[0]["dev_vs_dense"] = _interval(1.0, 1.5)  # a gain of 1.0 ± 1.5: the loss is at most 0.5
    assert choose(rows, dense_dev=0.81, max_drop=2.0).warning is None
    choice = choose(rows, dense_dev=0.81, max_drop=1.0)
    assert choice.index == 0 and "±1.5 points, wider than --max-drop 1" in choice.warning


def test_paired_dev_differences_by_hand():
    labels = [1] * 20
    a = [1] * 10 + [0] * 10  # right on the first 10
    b = [1] * 5 + [0] * 15  # right on the first 5: a is never worse on any example
    difference = dev_difference(a, b, labels, "accuracy")
    assert difference.mean == pytest.approx(25.0) and difference.examples == 20
    assert 0.0 <= difference.low < 25.0 < difference.high <= 50.0  # paired: no resample makes a worse than b
    assert dev_difference(a, a, labels, "accuracy") == DevDifference(0.0, 0.0, 0.0, 20)
    assert dev_difference(a, b, labels, "accuracy") == difference  # seeded: the same interval every time
    with pytest.raises(ValueError, match="one length"):
        dev_difference(a, b[:3], labels, "accuracy")


def test_exactly_one_goal():
    for goals in ({}, {"target_speedup": 2, "max_drop": 1}):
        with pytest.raises(ConfigError, match="exactly one"):
            choose(ROWS, dense_dev=0.8, **goals)


def test_candidates_round_trip_and_carry_variant_options(tmp_path):
    candidate = Candidate(method="coreset", m=None, keep_ratios=(0.5, 0.25), options={"duplicity_attention": True})
    assert Candidate.from_dict(candidate.to_dict()) == candidate and candidate.key == Candidate.from_dict(candidate.to_dict()).key
    fields = candidate.finetune_fields()
    assert fields["selection"].duplicity_attention is True and fields["selection"].m is None
    assert fields["schedule"] == "ratio"
    assert "duplicity_attention=True" in candidate.label and "k-1" in candidate.label
    (tmp_path / "c.json").write_text(json.dumps([candidate.to_dict(), {"p": 0.5, "prune_upto": 1}]))
    assert read_candidates(tmp_path / "c.json")[0] == candidate
    (tmp_path / "bad.json").write_text('[{"speed": 2}]')
    with pytest.raises(ConfigError, match="unknown key"):
        read_candidates(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="one of p\\+prune_upto"):
        Candidate(p=0.5, prune_upto=1, lengths=(4, 4)).finetune_fields()
    with pytest.raises(ConfigError, match="unknown option.*'lr'.*valid options: .*duplicity_attention"):
        Candidate(p=0.5, prune_upto=1, options={"lr": 1}).finetune_fields()


def test_variant_options_of_a_candidate_reach_pyramidize(monkeypatch):
    import types

    from pyramid_bert.training.config import FinetuneConfig, apply_selection

    seen = {}
    monkeypatch.setattr("pyramid_bert.training.config.pyramidize", lambda model, *a, **kw: seen.update(kw) or model)
    candidate = Candidate(keep_ratios=(0.5, 0.5), options={"duplicity_attention": True, "distance": "cosine"})
    config = FinetuneConfig(task="x", **candidate.finetune_fields())
    apply_selection(types.SimpleNamespace(config=types.SimpleNamespace(num_hidden_layers=2)), config, None)
    settings = seen["settings"]
    assert settings.options.duplicity_attention is True and settings.options.distance == "cosine"
    assert settings.keep_ratios == [0.5, 0.5]


# ------------------------------------------------------------------------------------------- a whole run
TINY_CANDIDATES = (Candidate(p=0.5, prune_upto=1), Candidate(p=0.25, prune_upto=1, m=None))


def write_task_csv(path: Path, split, names) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["review", "sentiment"])
        for text, label in zip(split.text_a, split.labels, strict=True):
            writer.writerow([text, names[label]])
    return path


def tiny_settings(model: Path, out: Path, **changes) -> CompressSettings:
    values = dict(model=str(model), out=str(out), max_drop=100.0, candidates=TINY_CANDIDATES, dense_epochs=2.0,
                  adapt_epochs=0.5, lr=1e-3, batch_size=16, eval_batch_size=32, timing_examples=16, timing_repeats=1)  # fmt: skip
    return CompressSettings(**{**values, **changes})


def load_csv_task(path: Path):
    from pyramid_bert.data.user_task import DataFiles, load_user_task

    return load_user_task(DataFiles(str(path), text_columns=("review",), label_column="sentiment"), max_length=16)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A tiny base BERT (no head), a CSV with string labels, and one compress run with a kill in the middle."""
    import torch

    root = tmp_path_factory.mktemp("compress")
    model = write_tiny_bert(root / "tiny")
    task = make_keyword_task(sizes=(120, 40, 40))
    csv_path = write_task_csv(root / "reviews.csv", task.splits["train"], ["negative", "positive"])
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    data = load_csv_task(csv_path)
    settings = tiny_settings(model, root / "out")
    import pyramid_bert.compress.measure as measure

    original, calls = measure.real_speedup, []

    def killed_on_the_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    measure.real_speedup = killed_on_the_second
    try:
        with pytest.raises(KeyboardInterrupt):
            compress(settings, data, progress=False)
    finally:
        measure.real_speedup = original
    interrupted = json.loads((root / "out.work" / "state.json").read_text())
    result = compress(settings, data, progress=False)
    torch.set_num_threads(previous)
    return {"root": root, "model": model, "csv": csv_path, "task": data, "settings": settings, "result": result,
            "interrupted": interrupted, "keyword_task": task}  # fmt: skip


def test_the_output_is_a_hugging_face_folder_with_card_report_and_plot(run):
    out = run["result"].out
    for name in ("config.json", "model.safetensors", "README.md", "report.md", "pareto.png", "compress.json"):
        assert (out / name).is_file(), name
    assert (out / "tokenizer_config.json").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["pyramid"]["keep_ratios"] is not None
    assert sorted(config["id2label"].values()) == ["negative", "positive"]
    card = (out / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: transformers")
    for candidate in TINY_CANDIDATES:
        assert candidate.label in card
    assert card.count("**chosen**") == 1 and "--max-drop 100" in card and "real speedup" in card
    chosen, dense = run["result"].chosen_row, run["result"].dense
    assert f"(a loss of {(dense['dev'] - chosen['dev']) * 100:.1f} [" in card  # with its paired dev interval
    assert "dev_predictions" not in (out / "compress.json").read_text()  # per-example data stays in the work files
    assert "wall time" in (out / "report.md").read_text()


def test_the_output_folder_loads_pyramidized_through_the_usual_pipeline_and_the_card_says_how(run):
    from transformers import pipeline

    from pyramid_bert import is_pyramidized, load_pyramid_model, pyramid_settings

    out = run["result"].out
    assert json.loads((out / "config.json").read_text())["model_type"] == "pyramid-bert"
    assert (out / "pyramid_bert_auto.py").is_file()
    classify = pipeline("text-classification", model=str(out))
    assert is_pyramidized(classify.model)
    assert pyramid_settings(classify.model) == pyramid_settings(load_pyramid_model(str(out)))
    assert classify("a good movie")[0]["label"] in ("negative", "positive")
    card = (out / "README.md").read_text()
    assert f'pipeline("text-classification", model="{out.name}")' in card
    assert "pip install pyramid-bert" in card and "Never silently dense" in card


def test_the_shipped_folder_names_no_path_of_this_machine(run):
    out, roots = run["result"].out, {str(run["root"]), str(run["root"].resolve())}  # model, data and out lie there
    for path in out.iterdir():
        if path.suffix in (".json", ".md", ".txt"):
            assert not any(root in path.read_text() for root in roots), path.name
    files = json.loads((out / "compress.json").read_text())["data_notes"]["files"]
    assert files["train"] == "reviews.csv" and files["text_columns"] == ["review"] and len(files["sha256"]) == 64
    assert json.loads((out / "compress.json").read_text())["settings"]["out"] == "out"


def test_the_chosen_row_is_the_fastest_within_the_drop_and_test_is_reported(run):
    result = run["result"]
    assert result.chosen == max(range(len(result.rows)), key=lambda i: result.rows[i]["speedup"])
    assert all(0.0 <= row["test"] <= 1.0 and row["speedup"] > 0 for row in result.rows)
    assert not result.dense["warm_start"]


def test_a_killed_run_resumes_without_redoing_finished_configurations(run):
    interrupted = run["interrupted"]
    assert interrupted["dense"] is not None and len(interrupted["candidates"]) == 1
    first = next(iter(interrupted["candidates"].values()))
    assert first | {"dev_vs_dense": run["result"].rows[0]["dev_vs_dense"]} == run["result"].rows[0] | {"checkpoint": first["checkpoint"]}


def test_a_finished_run_rechooses_for_a_new_goal_without_training(run, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr("pyramid_bert.training.loop.finetune", no_training)
    monkeypatch.setattr("pyramid_bert.compress.measure.real_speedup", no_training)
    slowest = min(run["result"].rows, key=lambda row: row["speedup"])["speedup"]
    again = compress(tiny_settings(run["model"], run["root"] / "out", max_drop=None, target_speedup=slowest), run["task"],
                     progress=False)  # fmt: skip
    assert again.rows == run["result"].rows
    with pytest.raises(ConfigError, match="best reachable speedup"):
        compress(tiny_settings(run["model"], run["root"] / "out", max_drop=None, target_speedup=1000), run["task"],
                 progress=False)  # fmt: skip


def test_other_settings_on_the_same_out_are_refused(run):
    with pytest.raises(ConfigError, match="other settings or data"):
        compress(tiny_settings(run["model"], run["root"] / "out", lr=1e-4), run["task"], progress=False)


def test_a_fine_tuned_classifier_is_used_as_the_dense_model(run, tmp_path, one_thread):
    dense = Path(run["result"].dense["checkpoint"])
    settings = tiny_settings(dense, tmp_path / "warm", candidates=TINY_CANDIDATES[:1])
    result = compress(settings, run["task"], progress=False)
    assert result.dense["warm_start"] and result.dense["checkpoint"] == str(dense)
    assert result.dense["dev"] == run["result"].dense["dev"]
    assert not (tmp_path / "warm.work" / "dense").exists()


def test_load_pyramid_model_and_evaluate_take_the_output_folder(run, one_thread):
    from pyramid_bert import is_pyramidized, load_pyramid_model
    from pyramid_bert.measure.evaluate import evaluate_checkpoint

    out = run["result"].out
    assert is_pyramidized(load_pyramid_model(str(out)))
    result = evaluate_checkpoint(out, task_data=run["task"], measure_speed=False, write_json=False)
    assert result.metric == pytest.approx(run["result"].chosen_row["test"])
    assert result.keep_ratios is not None and result.lengths is not None


def test_predict_labels_a_csv_with_the_label_names(run, tmp_path, one_thread):
    from pyramid_bert.compress.predict import predict_file

    test = run["task"].splits["test"]
    source = tmp_path / "new.csv"
    with open(source, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "review"])
        writer.writerows(enumerate(test.text_a))
    code = cli.main(["predict", str(run["result"].out), "--input", str(source), "--output", str(tmp_path / "p.csv"),
                     "--text-column", "review", "--batch-size", "7", "--no-progress"])  # fmt: skip
    assert code == 0
    with open(tmp_path / "p.csv", newline="") as handle:
        predicted = list(csv.DictReader(handle))
    assert [row["id"] for row in predicted] == [str(i) for i in range(len(test))]
    assert {row["label"] for row in predicted} <= {"negative", "positive"}
    assert all(0.5 <= float(row["score"]) <= 1.0 for row in predicted)
    accuracy = sum(run["task"].label_names.index(row["label"]) == label for row, label in zip(predicted, test.labels, strict=True))
    assert accuracy / len(test) == pytest.approx(run["result"].chosen_row["test"])
    predict_file(run["result"].out, source, tmp_path / "p.jsonl", text_columns=("review",), progress=False)
    assert [json.loads(line)["label"] for line in (tmp_path / "p.jsonl").read_text().splitlines()] == [
        row["label"] for row in predicted
    ]


def test_the_pipeline_returns_the_pyramid_models_labels(run, one_thread):
    import torch
    from transformers import AutoTokenizer, pipeline

    from pyramid_bert import load_pyramid_model

    out = str(run["result"].out)
    model = load_pyramid_model(out)
    classify = pipeline("text-classification", model=model, tokenizer=out)
    texts = run["task"].splits["test"].text_a[:12]
    tokenizer = AutoTokenizer.from_pretrained(out)
    with torch.inference_mode():
        ids = [int(model(**tokenizer(text, return_tensors="pt")).logits.argmax()) for text in texts]
    assert [answer["label"] for answer in classify(texts)] == [model.config.id2label[i] for i in ids]


COMPRESS = ["compress", "--model", "{model}", "--out", "{tmp}/o", "--no-progress"]
BAD = {
    "no goal": ([*COMPRESS, "--train", "{csv}"], "--target-speedup / --max-drop"),
    "two goals": ([*COMPRESS, "--train", "{csv}", "--max-drop", "1", "--target-speedup", "2"], "--max-drop"),
    "missing train file": ([*COMPRESS, "--train", "{tmp}/none.csv", "--max-drop", "1"], "--train: no such file"),
    "missing column": ([*COMPRESS, "--train", "{csv}", "--max-drop", "1"], "columns found: review, sentiment"),
    "task and train": ([*COMPRESS, "--task", "rt-polarity", "--train", "{csv}", "--max-drop", "1"], "not both"),
    "dev without train": ([*COMPRESS, "--dev", "{csv}", "--max-drop", "1"], "--dev: needs --train"),
    "target 0": ([*COMPRESS, "--train", "{csv}", "--target-speedup", "0"], "--target-speedup"),
    "bad candidates": ([*COMPRESS, "--train", "{csv}", "--max-drop", "1", "--candidates", "{tmp}/no.json"], "--candidates"),
    "predict missing folder": (["predict", "{tmp}/nothing", "--input", "{csv}", "--output", "{tmp}/p.csv",
                                "--text-column", "review"], "no such folder"),  # fmt: skip
    "predict bad output": (["predict", "{out}", "--input", "{csv}", "--output", "{tmp}/p.xlsx"], "--output"),
    "predict output exists": (["predict", "{out}", "--input", "{csv}", "--output", "{csv}.tsv", "--text-column",
                               "review"], "--force"),  # fmt: skip
    "predict missing column": (["predict", "{out}", "--input", "{csv}", "--output", "{tmp}/p.csv"], "--text-column"),
    "evaluate folder without task": (["evaluate", "{out}", "--no-speed"], "--task"),
}


@pytest.mark.parametrize(("argv", "needle"), list(BAD.values()), ids=list(BAD))
def test_bad_input_is_one_line(argv, needle, run, tmp_path, capsys):
    values = {"model": run["model"], "csv": run["csv"], "tmp": tmp_path, "out": run["result"].out}
    Path(f"{run['csv']}.tsv").write_text("mine\n")
    try:
        code = cli.main([part.format(**values) for part in argv])
    except SystemExit as exit_:
        code = exit_.code
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and needle in lines[0], lines
    assert not (tmp_path / "o").exists() and Path(f"{run['csv']}.tsv").read_text() == "mine\n"


def test_compress_takes_a_named_task_and_a_candidates_file(run, tmp_path, monkeypatch, capsys, one_thread):
    monkeypatch.setattr("pyramid_bert.data.load_task", lambda *args, **kwargs: run["keyword_task"])
    (tmp_path / "c.json").write_text(json.dumps([{"keep_ratios": [0.5, 0.5], "m": 2}]))
    code = cli.main(["compress", "--model", str(run["model"]), "--task", "rt-polarity", "--max-drop", "100",
                     "--candidates", str(tmp_path / "c.json"), "--out", str(tmp_path / "o"), "--dense-epochs", "0.5",
                     "--adapt-epochs", "0.25", "--batch-size", "16", "--timing-examples", "8", "--repeats", "1",
                     "--no-progress"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "chosen: coreset m=2 ratios 0.5 0.5" in out and "real speedup" in out
    config = json.loads((tmp_path / "o" / "config.json").read_text())
    assert config["pyramid"]["keep_ratios"] == [0.5, 0.5] and config["pyramid"]["m"] == 2
    assert config["id2label"] == {"0": "bad", "1": "good"}


def test_evaluate_writes_nothing_into_a_folder_it_did_not_make(run, tmp_path, one_thread):
    from transformers import AutoTokenizer

    from pyramid_bert import load_pyramid_model
    from pyramid_bert.measure.evaluate import evaluate_checkpoint

    folder = tmp_path / "theirs"
    load_pyramid_model(str(run["result"].out)).save_pretrained(folder)
    AutoTokenizer.from_pretrained(run["result"].out).save_pretrained(folder)
    before = sorted(path.name for path in folder.iterdir())
    result = evaluate_checkpoint(folder, task_data=run["task"], measure_speed=False)
    assert result.result_json is None and sorted(path.name for path in folder.iterdir()) == before
    assert result.metric == pytest.approx(run["result"].chosen_row["test"])


def test_a_rerun_replaces_the_folder_only_while_it_holds_nothing_but_what_compress_wrote(run, monkeypatch):
    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr("pyramid_bert.training.loop.finetune", no_training)
    monkeypatch.setattr("pyramid_bert.compress.measure.real_speedup", no_training)
    out = run["root"] / "out"
    (out / "notes.txt").write_text("mine\n")
    with pytest.raises(ConfigError, match=r"^--out: .* holds files `pyramid-bert compress` did not write \(notes"):
        compress(run["settings"], run["task"], progress=False)
    assert (out / "notes.txt").read_text() == "mine\n"
    again = compress(run["settings"], run["task"], progress=False, force=True)  # re-chosen from OUT.work
    assert again.rows == run["result"].rows and not (out / "notes.txt").exists() and (out / "compress.json").is_file()


def test_compress_refuses_a_folder_it_did_not_make(run, tmp_path, capsys):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "README.md").write_text("mine\n")
    code = cli.main(["compress", "--model", str(run["model"]), "--train", str(run["csv"]), "--text-column", "review",
                     "--label-column", "sentiment", "--max-drop", "1", "--out", str(tmp_path / "o"), "--no-progress"])  # fmt: skip
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "--out: " in lines[0] and "--force" in lines[0], lines
    assert (tmp_path / "o" / "README.md").read_text() == "mine\n" and not (tmp_path / "o.work").exists()


def test_int8_is_one_more_axis_and_the_folder_says_its_precision(run, tmp_path, one_thread, monkeypatch):
    from pyramid_bert import load_pyramid_model
    from pyramid_bert.compress.choose import Choice
    from pyramid_bert.patch.quantize import model_precision

    dense = Path(run["result"].dense["checkpoint"])
    settings = tiny_settings(dense, tmp_path / "int8", candidates=TINY_CANDIDATES[:1], precisions=("fp32", "int8"))
    picked = {}

    def pick_an_int8_row(rows, **kwargs):
        picked["index"] = next(i for i, row in enumerate(rows) if row["label"] == f"{TINY_CANDIDATES[0].label} int8")
        return Choice(picked["index"], "the int8 row (test)")

    monkeypatch.setattr("pyramid_bert.compress.run.choose", pick_an_int8_row)
    result = compress(settings, run["task"], progress=False)
    labels = [row["label"] for row in result.rows]
    assert labels == ["dense int8", TINY_CANDIDATES[0].label, f"{TINY_CANDIDATES[0].label} int8"]
    assert [row["precision"] for row in result.rows] == ["int8", "fp32", "int8"]
    assert all(row["speedup"] > 0 and 0.0 <= row["dev"] <= 1.0 for row in result.rows)
    config = json.loads((result.out / "config.json").read_text())
    assert config["precision"] == "int8" and config["pyramid"]["keep_ratios"] is not None
    assert model_precision(load_pyramid_model(str(result.out))) == "int8"
    assert "Precision: **int8**" in (result.out / "README.md").read_text()


def test_compress_refuses_int8_off_the_cpu(tmp_path):
    with pytest.raises(ConfigError, match="--precision int8: runs on the CPU only"):
        tiny_settings(tmp_path / "m", tmp_path / "o", precisions=("fp32", "int8"), device="cuda").check()
