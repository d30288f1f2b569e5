"""A saved pyramid model folder loads as the pyramid model the usual Hugging Face way (AutoModel*, pipeline), never
silently dense: without pyramid-bert it fails, naming `pip install pyramid-bert` (patch/saved_config.py, auto_*.py)."""

import json
import os
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
from safetensors import safe_open
from transformers import (
    AutoModel,
    AutoModelForSequenceClassification,
    BertForSequenceClassification,
    BertModel,
    BertTokenizer,
    pipeline,
)

from pyramid_bert import is_pyramidized, load_pyramid_model, pyramid_settings, pyramidize, unpyramidize
from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.saved_config import CODE_FILE, INSTALL_COMMAND
from tiny_models import batch, tiny_bert

#: The three kinds of folder the issue names: a fixed schedule, keep ratios, CS+ (duplicity attention and merging).
FOLDERS = {
    "fixed": dict(lengths=[16, 10, 6], method="coreset", m=0.3),
    "keep_ratios": dict(keep_ratios=[0.8, 0.5, 0.3], method="coreset"),
    "cs_plus": dict(lengths=[16, 10, 6], method="coreset", duplicity_attention=True, merge=True),
}
#: 21 word pieces + [CLS] and [SEP]: more than the first kept length, so every layer selects.
TEXT = " ".join(f"w{i}" for i in range(3, 66, 3))


def tiny_tokenizer(folder):
    """A WordPiece tokenizer over the tiny model's 99 ids ([PAD] [UNK] [CLS] [SEP] [MASK] w0 .. w93)."""
    folder.mkdir(parents=True, exist_ok=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(94)]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    return BertTokenizer(str(folder / "vocab.txt"))


def save_pyramid_folder(folder, **selection):
    """A tiny random BERT classifier pyramidized with ``selection`` and its tokenizer, saved the usual way."""
    model = pyramidize(tiny_bert(), **selection)
    model.save_pretrained(folder)
    tiny_tokenizer(folder).save_pretrained(folder)
    return folder


@pytest.fixture(params=list(FOLDERS))
def folder(request, tmp_path):
    return save_pyramid_folder(tmp_path / request.param, **FOLDERS[request.param])


def logits(model, input_ids, attention_mask):
    with torch.no_grad():
        return model.eval()(input_ids=input_ids, attention_mask=attention_mask).logits


def test_auto_model_for_sequence_classification_loads_the_folder_pyramidized(folder):
    loaded, reference = AutoModelForSequenceClassification.from_pretrained(folder), load_pyramid_model(str(folder))
    assert is_pyramidized(loaded) and is_pyramidized(reference)
    assert pyramid_settings(loaded) == pyramid_settings(reference)
    input_ids, attention_mask = batch()
    dense = logits(BertForSequenceClassification.from_pretrained(folder), input_ids, attention_mask)
    pyramid = logits(loaded, input_ids, attention_mask)
    assert torch.equal(pyramid, logits(reference, input_ids, attention_mask))
    assert not torch.allclose(pyramid, dense)  # the selection really runs


def test_text_classification_pipeline_loads_the_folder_pyramidized(folder):
    tokenizer = BertTokenizer.from_pretrained(folder)
    classify, reference = pipeline("text-classification", model=str(folder), tokenizer=tokenizer), load_pyramid_model(str(folder))
    assert is_pyramidized(classify.model)
    input_ids, attention_mask = batch()
    assert torch.equal(logits(classify.model, input_ids, attention_mask), logits(reference, input_ids, attention_mask))
    encoded = tokenizer(TEXT, return_tensors="pt")
    assert encoded["input_ids"].shape[1] > 16
    expected = logits(reference, encoded["input_ids"], encoded["attention_mask"]).softmax(-1)[0]
    scores = {row["label"]: row["score"] for row in classify(TEXT, top_k=None)}
    assert torch.allclose(torch.tensor([scores[f"LABEL_{i}"] for i in range(3)]), expected, atol=1e-6)


def test_pipeline_finds_the_tokenizer_in_the_folder(tmp_path):
    folder = save_pyramid_folder(tmp_path / "f", **FOLDERS["fixed"])
    classify = pipeline("text-classification", model=str(folder))
    assert is_pyramidized(classify.model) and isinstance(classify.tokenizer, BertTokenizer)


def test_auto_model_loads_the_encoder_pyramidized(tmp_path):
    folder = save_pyramid_folder(tmp_path / "f", **FOLDERS["cs_plus"])
    encoder = AutoModel.from_pretrained(folder).eval()
    assert isinstance(encoder, BertModel) and is_pyramidized(encoder)
    input_ids, attention_mask = batch()
    with torch.no_grad():
        hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        expected = load_pyramid_model(str(folder)).eval().bert(input_ids=input_ids, attention_mask=attention_mask)
    assert hidden.shape[1] == 6 and torch.equal(hidden, expected.last_hidden_state)


def test_the_folder_names_the_pyramid_type_and_keeps_the_dense_weights(tmp_path):
    dense = tiny_bert()
    names = set(dense.state_dict())
    folder = save_pyramid_folder(tmp_path / "f", **FOLDERS["fixed"])
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "pyramid-bert" and config["dense_model_type"] == "bert"
    assert config["architectures"] == ["BertForSequenceClassification"] and config["pyramid"]["lengths"] == [16, 10, 6]
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel", "AutoModelForSequenceClassification"}
    assert INSTALL_COMMAND in (folder / CODE_FILE).read_text()
    with safe_open(str(folder / "model.safetensors"), framework="pt") as weights:
        assert set(weights.keys()) == names
    input_ids, attention_mask = batch()
    as_dense = BertForSequenceClassification.from_pretrained(folder)  # the dense class reads the same weights
    assert type(as_dense.bert.encoder).__name__ == "BertEncoder"
    assert torch.equal(logits(as_dense, input_ids, attention_mask), logits(dense, input_ids, attention_mask))


def test_an_unpyramidized_model_saves_a_plain_dense_folder(tmp_path):
    model = unpyramidize(pyramidize(tiny_bert(), [16, 10, 6]))
    assert type(model.config).__name__ == "BertConfig"
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "bert" and "auto_map" not in config and "pyramid" not in config
    assert not (tmp_path / CODE_FILE).exists()
    assert not is_pyramidized(AutoModelForSequenceClassification.from_pretrained(tmp_path))


def test_a_folder_written_before_auto_loading_still_loads_and_saves_in_the_new_form(tmp_path):
    old = tiny_bert()  # the old writer: a dense config with the settings under "pyramid", model_type "bert"
    old.config.pyramid = pyramidize(tiny_bert(), [16, 10, 6], method="coreset", m=0.3).config.pyramid
    old.save_pretrained(tmp_path / "old")
    assert json.loads((tmp_path / "old" / "config.json").read_text())["model_type"] == "bert"
    input_ids, attention_mask = batch()
    expected = logits(pyramidize(tiny_bert(), [16, 10, 6], method="coreset", m=0.3), input_ids, attention_mask)
    reloaded = load_pyramid_model(str(tmp_path / "old"))
    assert is_pyramidized(reloaded) and torch.equal(logits(reloaded, input_ids, attention_mask), expected)
    assert not is_pyramidized(AutoModelForSequenceClassification.from_pretrained(tmp_path / "old"))  # as before
    reloaded.save_pretrained(tmp_path / "new")
    upgraded = AutoModelForSequenceClassification.from_pretrained(tmp_path / "new")
    assert is_pyramidized(upgraded) and torch.equal(logits(upgraded, input_ids, attention_mask), expected)


def test_a_file_of_the_code_name_that_pyramid_bert_did_not_write_is_never_replaced(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / CODE_FILE).write_text("mine\n")
    with pytest.raises(ConfigError, match="not written by pyramid-bert"):
        pyramidize(tiny_bert(), [16, 10, 6]).save_pretrained(tmp_path)
    assert (tmp_path / CODE_FILE).read_text() == "mine\n"


def run_python(code, tmp_path):
    """Run ``code`` in a fresh interpreter (offline, its own module cache for trust_remote_code); its JSON stdout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "HF_HUB_OFFLINE": "1",
           "HF_MODULES_CACHE": str(tmp_path / "hf-modules")}  # fmt: skip
    completed = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env,
                               stdin=subprocess.DEVNULL, timeout=300)  # fmt: skip
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


WITHOUT_PYRAMID_BERT = """
    import importlib.abc, json, sys

    class NoPyramidBert(importlib.abc.MetaPathFinder):  # as if pyramid-bert were not installed
        def find_spec(self, name, path, target=None):
            if name.split(".")[0] == "pyramid_bert":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    sys.meta_path.insert(0, NoPyramidBert())
    from transformers import AutoModelForSequenceClassification, pipeline

    def outcome(load):
        try:
            return type(load()).__name__
        except Exception as error:
            return f"{type(error).__name__}: {error}"

    result = {
        "auto": outcome(lambda: AutoModelForSequenceClassification.from_pretrained(FOLDER)),
        "pipeline": outcome(lambda: pipeline("text-classification", model=FOLDER)),
        "auto_remote": outcome(lambda: AutoModelForSequenceClassification.from_pretrained(FOLDER, trust_remote_code=True)),
        "pipeline_remote": outcome(lambda: pipeline("text-classification", model=FOLDER, trust_remote_code=True)),
    }
    print()  # transformers' prompt to trust the code ends without a newline: the JSON goes on a line of its own
    print(json.dumps(result))
"""


def test_without_pyramid_bert_loading_fails_and_names_pip_install(tmp_path):
    folder = save_pyramid_folder(tmp_path / "f", **FOLDERS["fixed"])
    result = run_python(f"FOLDER = {str(folder)!r}\n" + textwrap.dedent(WITHOUT_PYRAMID_BERT), tmp_path)
    for plain in ("auto", "pipeline"):  # transformers' own gate: the folder's type needs its code
        assert result[plain].startswith("ValueError") and "trust_remote_code=True" in result[plain], result[plain]
    for remote in ("auto_remote", "pipeline_remote"):
        assert result[remote].startswith("ImportError") and INSTALL_COMMAND in result[remote], result[remote]


@pytest.mark.parametrize(
    "first_import",
    ["", "import pyramid_bert", "import pyramid_bert.patch.hf"],
    ids=["remote-code-only", "package-first", "patch-module-first"],
)
def test_a_fresh_process_loads_the_folder_pyramidized_whatever_the_import_order(tmp_path, first_import):
    folder = save_pyramid_folder(tmp_path / "f", **FOLDERS["cs_plus"])
    remote = "" if first_import else ", trust_remote_code=True"  # nothing imported pyramid_bert: the folder's code does
    code = f"""
        import json, sys
        {first_import}
        from transformers import pipeline
        from tiny_models import batch
        classify = pipeline("text-classification", model={str(folder)!r}{remote})
        from pyramid_bert import is_pyramidized
        input_ids, attention_mask = batch()
        logits = classify.model(input_ids=input_ids, attention_mask=attention_mask).logits
        print(json.dumps({{"pyramid": is_pyramidized(classify.model), "logits": logits.tolist()}}))
    """
    result = run_python(code, tmp_path)
    input_ids, attention_mask = batch()
    assert result["pyramid"]
    assert torch.equal(torch.tensor(result["logits"]), logits(load_pyramid_model(str(folder)), input_ids, attention_mask))


def test_the_config_of_a_pyramid_model_pickles_and_copies_as_itself():
    import copy
    import pickle

    config = pyramidize(tiny_bert(), [16, 10, 6], method="coreset", m=0.3).config
    for twin in (pickle.loads(pickle.dumps(config)), copy.deepcopy(config)):
        assert type(twin) is type(config) and twin.pyramid == config.pyramid and twin is not config
        assert twin.to_json_string() == config.to_json_string()


def test_an_int8_folder_loads_as_float32_through_auto_classes_and_says_so(tmp_path):
    """compress may ship an int8 choice (config.json 'precision'); Auto classes also serve training, so they give the
    float32 pyramid model with a warning naming load_pyramid_model, which gives int8."""
    from pyramid_bert.patch.quantize import model_precision
    from pyramid_bert.precision import PrecisionNotAppliedWarning, mark_precision

    model = pyramidize(tiny_bert(), **FOLDERS["fixed"])
    mark_precision(model.config, "int8")
    model.save_pretrained(tmp_path)
    with pytest.warns(UserWarning, match="load_pyramid_model"):
        loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert is_pyramidized(loaded) and model_precision(loaded) == "fp32"
    with warnings.catch_warnings():  # load_pyramid_model applies the precision: nothing to warn about
        warnings.simplefilter("error", PrecisionNotAppliedWarning)
        assert model_precision(load_pyramid_model(str(tmp_path))) == "int8"


@pytest.mark.parametrize("builder", ["tiny_distilbert", "tiny_albert", "tiny_deberta", "tiny_modernbert"])
def test_a_folder_of_every_family_loads_pyramidized_through_auto_classes(builder, tmp_path):
    """The Auto registration covers each supported family, not only BERT's."""
    import tiny_models

    model = pyramidize(getattr(tiny_models, builder)(), lengths=[12, 8, 6], method="coreset").eval()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    input_ids, attention_mask = batch()
    assert is_pyramidized(loaded) and pyramid_settings(loaded) == pyramid_settings(model)
    torch.testing.assert_close(logits(loaded, input_ids, attention_mask), logits(model, input_ids, attention_mask))


def test_a_model_module_imported_first_in_a_fresh_process_loads_with_the_auto_hooks_installed():
    # transformers' modeling_bert loads modeling_auto half-way through its own imports; the hook that then registers
    # our Auto classes must not import model families' modules that need the half-initialised ones
    code = "import pyramid_bert; from transformers.models.bert import modeling_bert; print(modeling_bert.BertModel)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "BertModel" in done.stdout and "Warning" not in done.stderr, done.stderr[-2000:]
