"""Distillation to a dense teacher, and the selection-quality options of FinetuneConfig."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_train import tiny_config, weights

from pyramid_bert.errors import ConfigError
from pyramid_bert.training.config import validate_config
from pyramid_bert.training.distillation import distillation_loss, distillation_loss_reference
from pyramid_bert.training.loop import finetune

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def dense_teacher(tiny_model, task, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("teacher") / "dense"
    config = tiny_config(tiny_model, out, method="dense", lengths=None, epochs=3)
    return finetune(config, task_data=task, progress=False)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_distillation_loss_matches_the_reference_and_is_zero_against_itself(temperature):
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    fast = distillation_loss(student, teacher, temperature)
    assert torch.allclose(fast.double(), distillation_loss_reference(student, teacher, temperature), atol=1e-6)
    assert float(distillation_loss(teacher, teacher, temperature)) == pytest.approx(0.0, abs=1e-6)
    assert float(fast) > 0
    regression = distillation_loss(student[:, :1], teacher[:, :1], temperature, regression=True)
    assert torch.allclose(regression.double(), distillation_loss_reference(student[:, :1], teacher[:, :1], 1, regression=True))


def test_distillation_from_a_warm_start_changes_training_and_is_recorded(tiny_model, task, dense_teacher, tmp_path):
    common = dict(model=str(dense_teacher), lengths=[8, 4], epochs=1, lr=1e-3)
    plain = finetune(tiny_config(tiny_model, tmp_path / "plain", **common), task_data=task, progress=False)
    distilled_config = tiny_config(tiny_model, tmp_path / "kd", **common, distill_weight=0.5)
    distilled = finetune(distilled_config, task_data=task, progress=False)
    assert not torch.equal(weights(plain)["classifier.weight"], weights(distilled)["classifier.weight"])
    info = json.loads((distilled / "run.json").read_text())
    assert info["config"]["distill_weight"] == 0.5 and distilled_config.resolved_teacher() == str(dense_teacher)


def test_size_options_train_and_are_stored_in_the_checkpoint(tiny_model, task, tmp_path):
    config = tiny_config(tiny_model, tmp_path / "run", epochs=1, distance="cosine", duplicity_attention=True,
                         merge=True)  # fmt: skip
    info = json.loads((finetune(config, task_data=task, progress=False) / "run.json").read_text())
    pyramid = info["pyramid"]
    assert (pyramid["distance"], pyramid["duplicity_attention"], pyramid["merge"]) == ("cosine", True, True)


def test_a_run_saved_before_the_new_fields_is_still_the_same_config(tiny_model, tmp_path):
    config = tiny_config(tiny_model, tmp_path / "run")
    saved = config.flat_dict()  # the flat format runs were saved in before FinetuneConfig.selection
    for name in ("distance", "duplicity_attention", "merge", "distill_weight", "distill_temperature", "teacher"):
        del saved[name]
    assert config.same_as_saved(saved)
    assert not tiny_config(tiny_model, tmp_path / "run", merge=True).same_as_saved(saved)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"distance": "manhattan"}, "--distance: must be one of euclidean, cosine, standardized"),
        ({"method": "average_pool", "lengths": None, "pool_windows": [1, 2], "merge": True}, "coreset, attention"),
        ({"distill_weight": 1.5}, "--distill-weight: must be a number in \\[0, 1\\]"),
        ({"distill_weight": 0.5, "distill_temperature": 0}, "--distill-temperature"),
        ({"distill_weight": 0.5, "teacher": "/no/such/teacher"}, "--teacher"),
        ({"teacher": "minilm-l6"}, "without --distill-weight"),
    ],
)
def test_bad_selection_quality_options_name_the_flag(tiny_model, tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(tiny_config(tiny_model, tmp_path / "run", **overrides))


def test_a_pretrained_model_without_a_head_is_refused_as_teacher(tiny_model, task, tmp_path):
    config = tiny_config(tiny_model, tmp_path / "run", epochs=1, distill_weight=0.5)
    with pytest.raises(ConfigError, match="not a fine-tuned sequence classifier"):
        finetune(config, task_data=task, progress=False)
