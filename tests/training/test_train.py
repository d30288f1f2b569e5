"""Fine-tuning: a tiny random BERT learns a fixture task; determinism, resume, reuse and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pyramid_bert.errors import ConfigError, DataError
from pyramid_bert.training.config import resolve_lengths, validate_config
from pyramid_bert.training.loop import FinetuneConfig, finetune
from train_fixtures import make_keyword_task, write_tiny_bert

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(model_dir: Path, out_dir: Path, **overrides) -> FinetuneConfig:
    settings = dict(task="rt-polarity", model=str(model_dir), method="coreset", lengths=[8, 4], epochs=6, lr=1e-2,
                    batch_size=16, out=str(out_dir))  # fmt: skip
    settings.update(overrides)
    return FinetuneConfig.from_dict(settings)


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def assert_same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_tiny_pyramid_bert_learns_the_fixture_task_and_writes_a_complete_checkpoint(tiny_model, task, tmp_path):
    out = finetune(tiny_config(tiny_model, tmp_path / "run"), task_data=task, progress=False)
    info = json.loads((out / "run.json").read_text())
    assert info["metrics"]["dev"]["metric"] >= 0.9
    assert info["train"]["loss_last_mean10"] < info["train"]["loss_first"]
    assert info["lengths"] == [8, 4]
    assert info["pyramid"]["method"] == "coreset" and info["pyramid"]["lengths"] == [8, 4]
    assert info["train"]["steps"] == 6 * 4 and info["train"]["warmup_steps"] == 2
    assert info["config"] == tiny_config(tiny_model, tmp_path / "run").to_json_dict()
    assert set(info["weights_sha256"]) == {"model.safetensors"}
    assert {"config.json", "model.safetensors", "run.json", "tokenizer_config.json"} <= {p.name for p in out.iterdir()}
    assert not list(out.glob("*.bin")) and not list(out.glob("*.pt"))  # no pickle
    assert not (tmp_path / "run.partial").exists()
    # no temporary folder left behind; only the run folder's lock file stays beside it
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.lock", "run"]


def test_same_seed_gives_identical_weights_and_another_seed_does_not(tiny_model, task, tmp_path):
    first = finetune(tiny_config(tiny_model, tmp_path / "a", epochs=1), task_data=task, progress=False)
    again = finetune(tiny_config(tiny_model, tmp_path / "b", epochs=1), task_data=task, progress=False)
    other = finetune(tiny_config(tiny_model, tmp_path / "c", epochs=1, seed=1), task_data=task, progress=False)
    assert_same_weights(weights(first), weights(again))
    assert not torch.equal(weights(first)["classifier.weight"], weights(other)["classifier.weight"])


def test_interrupted_run_resumes_to_the_same_weights_as_an_uninterrupted_one(tiny_model, task, tmp_path):
    config = tiny_config(tiny_model, tmp_path / "resumed", epochs=2)
    reference = finetune(tiny_config(tiny_model, tmp_path / "straight", epochs=2), task_data=task, progress=False)

    def interrupt(step: int) -> None:
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(config, task_data=task, progress=False, save_every_steps=3, step_callback=interrupt)
    assert not (tmp_path / "resumed").exists()  # nothing half-written at the destination
    partial = json.loads((tmp_path / "resumed.partial" / "train_state.json").read_text())
    assert partial["step"] == 4  # the epoch-end save after step 4 is the last good state (step 5 is lost)

    resumed = finetune(config, task_data=task, progress=False)
    info = json.loads((resumed / "run.json").read_text())
    assert info["train"]["resumed_at_steps"] == [4]
    assert_same_weights(weights(reference), weights(resumed))
    assert not (tmp_path / "resumed.partial").exists()


def test_random_select_run_resumes_to_the_same_weights_as_an_uninterrupted_one(tiny_model, task, tmp_path):
    """Random-select draws from its own generator each step: it is saved with the resume state and put back."""
    config = tiny_config(tiny_model, tmp_path / "resumed", method="random", lengths=[6, 3], epochs=2)
    straight = tiny_config(tiny_model, tmp_path / "straight", method="random", lengths=[6, 3], epochs=2)
    reference = finetune(straight, task_data=task, progress=False)

    def interrupt(step: int) -> None:
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(config, task_data=task, progress=False, save_every_steps=3, step_callback=interrupt)
    saved = load_file(str(tmp_path / "resumed.partial" / "train_state.safetensors"))
    assert "rng.selection.cpu" in saved  # the generator's state after 6 steps of draws
    resumed = finetune(config, task_data=task, progress=False)
    assert json.loads((resumed / "run.json").read_text())["train"]["resumed_at_steps"] == [6]
    assert_same_weights(weights(reference), weights(resumed))


def test_a_second_run_on_the_same_out_is_refused_while_the_first_holds_it(tiny_model, task, tmp_path, capsys):
    from pyramid_bert import cli
    from pyramid_bert.errors import CheckpointError
    from pyramid_bert.training import checkpoint

    out = tmp_path / "run"
    with checkpoint.run_folder_lock(out):  # what a first, still running `finetune --out run` holds
        with pytest.raises(CheckpointError, match="--out: .* is in use by another run"):
            finetune(tiny_config(tiny_model, out, epochs=0.25), task_data=task, progress=False)
        argv = ["finetune", "--task", "rt-polarity", "--model", str(tiny_model), "--lengths", "8,4", "--out", str(out)]
        assert cli.main(argv) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and "in use by another run" in error[0] and "--out" in error[0]
    assert not out.exists()
    assert finetune(tiny_config(tiny_model, out, epochs=0.25), task_data=task, progress=False) == out  # free again


def test_temporary_folders_of_a_killed_write_are_removed_by_the_next_run(tiny_model, task, tmp_path):
    stale = [tmp_path / ".run.tmp-4242", tmp_path / ".run.partial.tmp-4243"]  # our naming: .NAME.tmp-PID
    for folder in stale:
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"half a file")
    foreign = [tmp_path / ".run.tmp-notes", tmp_path / "run.tmp-1"]  # not ours: left alone
    for folder in foreign:
        folder.mkdir()
    finetune(tiny_config(tiny_model, tmp_path / "run", epochs=0.25), task_data=task, progress=False)
    assert not any(folder.exists() for folder in stale)
    assert all(folder.exists() for folder in foreign)


def test_finished_run_is_reused_and_a_different_config_at_the_same_out_is_refused(tiny_model, task, tmp_path):
    config = tiny_config(tiny_model, tmp_path / "run", epochs=0.25)
    out = finetune(config, task_data=task, progress=False)
    stamp = (out / "run.json").stat().st_mtime_ns
    assert finetune(config, task_data=task, progress=False) == out
    assert (out / "run.json").stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="different config"):
        finetune(tiny_config(tiny_model, tmp_path / "run", epochs=0.5), task_data=task, progress=False)


def test_a_finished_run_with_truncated_weights_is_trained_again(tiny_model, task, tmp_path, capsys):
    config = tiny_config(tiny_model, tmp_path / "run", epochs=0.25)
    out = finetune(config, task_data=task, progress=False)
    good = {name: tensor.clone() for name, tensor in weights(out).items()}  # not mapped on the file cut below
    data = (out / "model.safetensors").read_bytes()
    (out / "model.safetensors").write_bytes(data[: len(data) // 2])
    assert finetune(config, task_data=task, progress=False) == out
    assert "model.safetensors is corrupted" in capsys.readouterr().err
    assert_same_weights(weights(out), good)


def write_reviews(path: Path, count: int = 48) -> Path:
    lines = ["review,sentiment"] + [f"the movie was {'good' if i % 2 else 'bad'} {i},{'pos' if i % 2 else 'neg'}"
                                    for i in range(count)]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_run_on_data_files_is_reused_only_on_the_same_bytes_columns_and_length(tiny_model, tmp_path, capsys):
    from pyramid_bert import cli

    path = write_reviews(tmp_path / "reviews.csv")
    out = tmp_path / "run"
    argv = ["finetune", "--model", str(tiny_model), "--train", str(path), "--text-column", "review", "--label-column",
            "sentiment", "--method", "dense", "--epochs", "0.25", "--batch-size", "16", "--out", str(out), "--no-progress"]  # fmt: skip
    assert cli.main(argv) == 0
    info = json.loads((out / "run.json").read_text())
    stamp = (out / "run.json").stat().st_mtime_ns
    data = info["config"]["data"]
    assert data["train"] == "reviews.csv" and data["text_columns"] == ["review"] and len(data["sha256"]) == 64
    assert cli.main(argv) == 0 and (out / "run.json").stat().st_mtime_ns == stamp  # the same file: reused
    for changed in (["--max-length", "12"], ["--text-column", "sentiment"]):  # N; sentence pairs
        capsys.readouterr()
        assert cli.main([*argv, *changed]) == 2
        assert "already holds a run" in capsys.readouterr().err
    original = path.read_text()
    path.write_text(original.replace("good 1,", "good one,"))  # the file edited after the run
    capsys.readouterr()
    assert cli.main(argv) == 2
    assert "already holds a run on other data (the bytes of --train" in capsys.readouterr().err
    path.write_text(original)
    del info["config"]["data"]  # a run written before data fingerprints
    (out / "run.json").write_text(json.dumps(info))
    assert cli.main(argv) == 2
    assert "saved without their fingerprint" in capsys.readouterr().err
    assert (out / "run.json").read_text() == json.dumps(info)


def test_an_interrupted_run_resumes_only_on_the_same_data(tiny_model, task, tmp_path):
    config = tiny_config(tiny_model, tmp_path / "run", epochs=2, data={"train": "a.csv", "sha256": "1" * 64})

    def interrupt(step: int) -> None:
        if step == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        finetune(config, task_data=task, progress=False, save_every_steps=1, step_callback=interrupt)
    edited = tiny_config(tiny_model, tmp_path / "run", epochs=2, data={"train": "a.csv", "sha256": "2" * 64})
    with pytest.raises(ConfigError, match="interrupted run.* holds a run on other data"):
        finetune(edited, task_data=task, progress=False)


def test_fractional_epochs_and_example_limit_set_the_step_count(tiny_model, task, tmp_path):
    config = tiny_config(tiny_model, tmp_path / "run", epochs=0.5, max_train_examples=40, method="dense",
                         lengths=None)  # fmt: skip
    info = json.loads((finetune(config, task_data=task, progress=False) / "run.json").read_text())
    assert info["train"]["examples"] == 40 and info["train"]["steps_per_epoch"] == 3 and info["train"]["steps"] == 2
    assert info["lengths"] is None and info["predicted_speedup"] == 1.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"task": "no-such-task"}, "valid tasks: rt-polarity"),
        ({"model": "no-such-model"}, "valid names: minilm-l6"),
        ({"method": "magic"}, "valid methods: dense, coreset"),
        ({"position": "start"}, "middle"),
        ({"device": "cuda"}, "CUDA is not available"),
        ({"device": "tpu"}, "valid: cpu, cuda"),
        ({"epochs": 0}, "epochs"),
        ({"method": "dense", "p": 0.5}, "takes no schedule"),
    ],
)
def test_bad_config_names_the_parameter_and_the_valid_choices(tiny_model, tmp_path, overrides, message):
    if overrides.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("CUDA is present here")
    with pytest.raises(ConfigError, match=message):
        validate_config(tiny_config(tiny_model, tmp_path / "run", **overrides))


def test_schedule_longer_than_the_model_is_refused(tiny_model, task, tmp_path):
    config = tiny_config(tiny_model, tmp_path / "run", lengths=[8, 4, 2])
    with pytest.raises(ConfigError, match="3 entries but the model has only 2 layers"):
        finetune(config, task_data=task, progress=False)


def test_labels_that_do_not_fit_the_head_are_refused(tmp_path, task):
    three_way_head = write_tiny_bert(tmp_path / "head3", num_labels=3)
    with pytest.raises(ConfigError, match="2 label.*head of .* has 3"):
        finetune(tiny_config(three_way_head, tmp_path / "run"), task_data=task, progress=False)
    plain = write_tiny_bert(tmp_path / "plain")
    bad_labels = make_keyword_task(sizes=(8, 4, 4))
    bad_labels.splits["train"].labels[0] = 7
    with pytest.raises(DataError, match=r"label values in \[0, 7\]"):
        finetune(tiny_config(plain, tmp_path / "run2"), task_data=bad_labels, progress=False)


def test_resolve_lengths_covers_every_way_of_giving_a_schedule(tiny_model, tmp_path):
    def resolve(**overrides):
        return resolve_lengths(tiny_config(tiny_model, tmp_path, **overrides), 64, 6)

    assert resolve(lengths=None, p=0.25, prune_upto=2) == [32, 16, 16, 16, 16, 16]
    assert resolve(lengths=None, method="input_first_k", p=0.25) == [16] * 6
    assert resolve(lengths=None, method="average_pool", pool_windows=[1, 2, 1, 1, 1, 1]) == [64, 33, 33, 33, 33, 33]
    assert resolve(lengths=None, method="dense") is None
    with pytest.raises(ConfigError, match="--prune-upto"):
        resolve(lengths=None, p=0.25)
    with pytest.raises(ConfigError, match="either --lengths or --p"):
        resolve(lengths=[8] * 6, p=0.25, prune_upto=2)
    with pytest.raises(ConfigError, match="must be constant"):
        resolve(lengths=[32, 16, 16, 16, 16, 16], method="input_first_k")
    with pytest.raises(ConfigError, match="needs a schedule"):
        resolve(lengths=None)
    with pytest.raises(ConfigError, match=r"--prune-upto: must be a layer in 1\.\.6"):
        resolve(lengths=None, p=0.25, prune_upto=7)  # the paper's range: 1..L
    assert resolve(lengths=None, p=0.25, prune_upto=6) == [50, 40, 32, 25, 20, 16]


def test_config_round_trips_through_json_and_rejects_unknown_fields():
    config = FinetuneConfig.from_dict(dict(task="trec", lengths=[40, 20], m=0.2, batch_size=None))
    assert FinetuneConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.resolved_batch_size() == 48
    assert FinetuneConfig(task="rte").resolved_batch_size() == 16
    assert FinetuneConfig(task="mnli").resolved_batch_size() == 32
    with pytest.raises(ConfigError, match="unknown field.*learning_rate"):
        FinetuneConfig.from_dict({"task": "trec", "learning_rate": 1e-3})


def test_regression_task_trains_a_one_output_head_scored_by_spearman(tiny_model, tmp_path):
    from pyramid_bert.measure.evaluate import evaluate_checkpoint

    task = make_keyword_task(sizes=(64, 32, 32))
    task.is_regression, task.metric, task.num_labels, task.label_names = True, "spearman", 1, ["score"]
    for split in task.splits.values():
        split.labels = [float(label) for label in split.labels]
    config = tiny_config(tiny_model, tmp_path / "run", method="dense", lengths=None)
    out = finetune(config, task_data=task, progress=False)
    result = evaluate_checkpoint(out, task_data=task, measure_speed=False, write_json=False)
    assert json.loads((out / "config.json").read_text())["problem_type"] == "regression"
    assert result.metric_name == "spearman" and set(result.scores) == {"spearman", "pearson"}
    assert result.metric > 0.5  # the score follows the keyword


def test_cli_finetune_prints_a_summary_table_and_writes_run_json(tiny_model, task, tmp_path, monkeypatch, capsys):
    from pyramid_bert import cli

    monkeypatch.setattr("pyramid_bert.data.load_task", lambda *args, **kwargs: task)
    out = tmp_path / "cli-run"
    argv = ["finetune", "--task", "rt-polarity", "--model", str(tiny_model), "--method", "coreset", "--lengths", "8,4",
            "--m", "0.5", "--epochs", "1", "--batch-size", "16", "--lr", "1e-2", "--out", str(out), "--no-progress"]  # fmt: skip
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "predicted speedup" in printed and "dev accuracy" in printed and "[8, 4]" in printed
    info = json.loads((out / "run.json").read_text())
    assert info["config"]["selection"]["m"] == 0.5 and info["config"]["lengths"] == [8, 4] and info["train"]["steps"] == 4


def _imported_modules(module_file: Path) -> set[str]:
    """Every module named by an import statement anywhere in ``module_file`` (also imports inside functions)."""
    import ast

    names: set[str] = set()
    for node in ast.walk(ast.parse(module_file.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_train_and_evaluate_do_not_import_each_other_and_the_public_names_stay():
    import pyramid_bert.measure.evaluate as evaluate
    import pyramid_bert.training.config as run_config
    import pyramid_bert.training.loop as train
    import pyramid_bert.training.scoring as scoring

    train_imports = _imported_modules(Path(train.__file__))
    evaluate_imports = _imported_modules(Path(evaluate.__file__))
    assert not {"pyramid_bert.measure.evaluate", "pyramid_bert.measure.evaluate.score_split"} & train_imports
    assert not any(name.startswith("pyramid_bert.training.loop") for name in evaluate_imports)
    below = _imported_modules(Path(run_config.__file__)) | _imported_modules(Path(scoring.__file__))
    assert not any(name.startswith(("pyramid_bert.training.loop", "pyramid_bert.measure.evaluate")) for name in below)
    assert train.FinetuneConfig is run_config.FinetuneConfig  # `from pyramid_bert.training.loop import FinetuneConfig`
    assert evaluate.score_split is scoring.score_split


def test_input_first_k_truncates_at_tokenization_keeping_the_seps_and_part_of_the_second_segment(tiny_model):
    """A pair whose first segment alone has more than k tokens still ends in [SEP] and keeps some of segment b."""
    from transformers import AutoTokenizer, BertForSequenceClassification

    from pyramid_bert import pyramidize
    from pyramid_bert.data.tasks import Split, TaskData
    from pyramid_bert.training.scoring import tokenize_for_model

    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    text_a, text_b = " ".join(["movie"] * 12), "good plot"  # a: 12 tokens >= k = 8
    task = TaskData(name="mrpc", metric="accuracy", is_regression=False, num_labels=2, label_names=["0", "1"],
                    max_length=16, splits={"test": Split(text_a=[text_a, "bad"], text_b=[text_b, "odd"],
                                                         labels=[1, 0])})  # fmt: skip
    model = pyramidize(BertForSequenceClassification.from_pretrained(tiny_model), [8, 8], method="input_first_k")
    inputs = tokenize_for_model(model, tokenizer, task, "test")
    assert inputs["input_ids"].shape == (2, 16)  # still padded to N: the model's cost and timing stay the same
    ids = inputs["input_ids"][0].tolist()
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    assert inputs["attention_mask"][0].tolist() == [1] * 8 + [0] * 8
    assert ids[0] == cls and ids[:8].count(sep) == 2 and ids[7] == sep and ids[8:] == [pad] * 8
    second = ids[ids.index(sep) + 1 : 7]
    assert second and set(tokenizer.convert_ids_to_tokens(second)) <= {"good", "plot"}
    assert inputs["token_type_ids"][0, : ids.index(sep) + 1].eq(0).all() and inputs["token_type_ids"][0, 7] == 1
    short = inputs["input_ids"][1].tolist()  # shorter than k: tokenized as without truncation
    assert tokenizer.convert_ids_to_tokens(short[:5]) == ["[CLS]", "bad", "[SEP]", "odd", "[SEP]"]
    dense = BertForSequenceClassification.from_pretrained(tiny_model)
    assert torch.equal(tokenize_for_model(dense, tokenizer, task, "test")["input_ids"][1], inputs["input_ids"][1])
    assert tokenize_for_model(dense, tokenizer, task, "test")["attention_mask"][0].sum() == 16  # dense: no cut


def test_a_saved_pyramid_model_given_as_the_starting_model_starts_dense(tmp_path, task):
    """A pyramid folder loads pyramidized through AutoModel*: a run starting from it applies its own selection only."""
    from pyramid_bert import is_pyramidized, load_pyramid_model, pyramidize
    from pyramid_bert.training.config import load_base_model

    folder = write_tiny_bert(tmp_path / "pyramid", num_labels=task.num_labels)
    pyramidize(load_pyramid_model(str(folder)), [8, 4]).save_pretrained(folder)
    model = load_base_model(str(folder), task)
    assert not is_pyramidized(model) and not hasattr(model.config, "pyramid")
    assert json.loads((folder / "config.json").read_text())["model_type"] == "pyramid-bert"
