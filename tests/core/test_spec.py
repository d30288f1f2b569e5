"""The selection spec: one declaration per option, carried to the command line, the trial key and the saved config."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from pyramid_bert import cli, load_pyramid_model, pyramid_settings, pyramidize
from pyramid_bert.errors import ConfigError
from pyramid_bert.spec import (
    PyramidSettings,
    SelectionOptions,
    flag,
    parse_m,
    parse_m_list,
)
from pyramid_bert.sweep.spec import TrialSpec
from pyramid_bert.training.config import FinetuneConfig
from tiny_models import LAYERS, batch, tiny_bert

OPTIONS = dataclasses.fields(SelectionOptions)


def changed_value(spec: dataclasses.Field) -> tuple[list[str], object]:
    """A valid non-default value of option ``spec``: its command-line words and the value they give."""
    meta = spec.metadata
    if meta["choices"] is not None:
        value = next(choice for choice in meta["choices"] if choice != spec.default)
        return [flag(spec.name), value], value
    if meta["parse"] is not None:
        assert meta["example"] is not None, f"option {spec.name}: give option(example=...) for the tests"
        return [flag(spec.name), meta["example"]], meta["parse"](meta["example"])
    return [flag(spec.name)], True


@pytest.mark.parametrize("text, value", [("1", 1), ("3", 3), ("3.0", 3), ("0.2", 0.2), ("k-1", None), ("K-1", None),
                                         ("none", None), (None, None), (2, 2), (4.0, 4), (0.5, 0.5)])  # fmt: skip
def test_m_has_one_parser_for_text_and_values(text, value):
    assert parse_m(text) == value and type(parse_m(text)) is type(value)


@pytest.mark.parametrize("bad", ["0", "-1", "1.5", "x", "", 0, 1.0000001, True, False, float("nan"), float("inf")])
def test_bad_m_names_the_flag_and_the_valid_forms(bad):
    with pytest.raises(ConfigError, match="--m: must be an int >= 1, a fraction of k in \\(0, 1\\), or k-1"):
        parse_m(bad)


def test_m_lists_name_their_flag():
    assert parse_m_list("1, 0.2,k-1") == [1, 0.2, None]
    with pytest.raises(ConfigError, match="--ms: 'x' is no m"):
        parse_m_list("1,x", "--ms")
    with pytest.raises(ConfigError, match="--m: give at least one m"):
        parse_m_list(" , ")


def test_options_are_canonical_and_checked_when_made():
    assert SelectionOptions(m="k-1").m is None and SelectionOptions(m=2.0).m == 2
    assert SelectionOptions(m=3, merge=True).changed() == {"m": 3, "merge": True}
    with pytest.raises(ConfigError, match="--distance: must be one of euclidean, cosine, standardized"):
        SelectionOptions(distance="manhattan")
    with pytest.raises(ConfigError, match="--merge: must be true or false"):
        SelectionOptions(merge="yes")
    with pytest.raises(
        ConfigError, match="--duplicity-attention: for methods coreset, attention, first_k, random, energy only"
    ):
        SelectionOptions(duplicity_attention=True).check("average_pool")
    assert SelectionOptions(m=2).check("coreset").m == 2


def test_settings_save_flat_and_read_configs_written_before_the_options():
    settings = PyramidSettings([8, 4, 4], "coreset", options=SelectionOptions(m=None, merge=True))
    flat = settings.to_dict()
    assert flat["m"] is None and flat["merge"] is True and "options" not in flat
    assert PyramidSettings.from_dict(flat) == settings
    old = {"lengths": [8, 4, 4], "method": "first_k", "m": 1, "position": "end", "pool_windows": None, "seed": 2,
           "version": 1}  # fmt: skip
    assert PyramidSettings.from_dict(old).options == SelectionOptions(position="end")


def test_pyramidize_takes_settings_or_keywords_not_both():
    model = tiny_bert()
    settings = PyramidSettings([10, 8, 8], "coreset", options=SelectionOptions(m=2, distance="cosine"))
    pyramidize(model, settings=settings)
    assert pyramid_settings(model) == settings
    with pytest.raises(ConfigError, match="give settings alone"):
        pyramidize(model, [10] * LAYERS, settings=settings)
    with pytest.raises(ConfigError, match="one entry per encoder layer"):
        pyramidize(tiny_bert(), settings=PyramidSettings([10, 8]))


def test_finetune_configs_written_with_flat_options_read_back_the_same():
    config = FinetuneConfig.from_dict({"task": "trec", "lengths": [8, 4], "m": "k-1", "distance": "cosine"})
    assert config.selection == SelectionOptions(m=None, distance="cosine")
    flat_saved = {**config.to_json_dict(), **config.to_json_dict()["selection"]}
    del flat_saved["selection"]
    assert config.same_as_saved(flat_saved) and config.same_as_saved(config.to_json_dict())
    assert config.flat_dict()["distance"] == "cosine" and "selection" not in config.flat_dict()
    with pytest.raises(ConfigError, match="unknown field.*'mm'"):
        FinetuneConfig.from_dict({"task": "trec", "mm": 2})


@pytest.mark.parametrize("option", OPTIONS, ids=lambda f: f.name)
def test_each_option_reaches_the_command_line(option):
    from pyramid_bert.commands.finetune import config_from_args

    words, value = changed_value(option)
    parser = cli.build_parser()
    args = parser.parse_args(["finetune", "--task", "rt-polarity", "--out", "x", *words])
    assert getattr(config_from_args(args).selection, option.name) == value
    default = config_from_args(parser.parse_args(["finetune", "--task", "rt-polarity", "--out", "x"]))
    assert getattr(default.selection, option.name) == option.default
    evaluate = parser.parse_args(["evaluate", "ckpt", "--only-infer", "coreset", *words])
    assert getattr(evaluate, option.name) == value


@pytest.mark.parametrize("option", OPTIONS, ids=lambda f: f.name)
def test_each_option_reaches_the_trial_key_and_the_trials_config(option):
    _, value = changed_value(option)
    base = TrialSpec(task="rt-polarity", model="minilm-l6", method="coreset", schedule="s", lengths=(8, 4))
    top_level = {f.name for f in dataclasses.fields(TrialSpec)}
    changed = (dataclasses.replace(base, **{option.name: value}) if option.name in top_level
               else dataclasses.replace(base, options={option.name: value}))  # fmt: skip
    assert changed.key != base.key
    config = FinetuneConfig.from_dict({k: v for k, v in changed.finetune_config("out").items() if k != "trial_options"})
    assert getattr(config.selection, option.name) == value


@pytest.mark.parametrize("option", OPTIONS, ids=lambda f: f.name)
def test_each_option_reaches_the_saved_config_and_loads_back(option, tmp_path):
    _, value = changed_value(option)
    model = tiny_bert()
    pyramidize(model, [12, 8, 8], method=option.metadata["methods"][0], **{option.name: value})
    assert model.config.pyramid[option.name] == value
    model.save_pretrained(tmp_path)
    loaded = load_pyramid_model(str(tmp_path))
    assert getattr(pyramid_settings(loaded).options, option.name) == value
    input_ids, attention_mask = batch()
    with torch.no_grad():
        expected = model(input_ids=input_ids, attention_mask=attention_mask).logits
        assert torch.allclose(loaded(input_ids=input_ids, attention_mask=attention_mask).logits, expected)
