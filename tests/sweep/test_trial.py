"""One trial: fine-tune, dev and test scores, speed, as one flat JSON-able dict (the sweep's unit)."""

from __future__ import annotations

import json

import pytest

from pyramid_bert.measure.evaluation import DEV_SHARE_COLUMN
from pyramid_bert.spec import SelectionOptions
from pyramid_bert.sweep.trial import run_trial
from pyramid_bert.training.config import FinetuneConfig
from train_fixtures import make_keyword_task, write_tiny_bert

REQUIRED_KEYS = {
    "dev_metric", "test_metric", "metric_name", "speedup_median", "speedup_q25", "speedup_q75",
    "predicted_speedup", "space_reduction", "train_seconds", "eval_seconds", "checkpoint", "lengths",
}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")


def test_trial_returns_a_flat_json_able_row_with_the_sweep_keys(tmp_path):
    task = make_keyword_task(sizes=(48, 16, 24))
    model = write_tiny_bert(tmp_path / "tiny")
    config = FinetuneConfig(task="rt-polarity", model=str(model), method="coreset", p=0.5, prune_upto=2, selection=SelectionOptions(m=0.5),
                            epochs=2, lr=1e-2, batch_size=16, out=str(tmp_path / "run"))  # fmt: skip
    row = run_trial(config, task_data=task, timing_repeats=3)
    assert set(row) >= REQUIRED_KEYS
    assert json.loads(json.dumps(row)) == row
    assert row["lengths"] == [11, 8]  # Eq. 5 on N = 16: floor(16 * 0.5 ** (1/2)), floor(16 * 0.5)
    assert row["metric_name"] == "accuracy" and 0.0 <= row["test_metric"] <= 1.0
    assert row["speedup_q25"] <= row["speedup_median"] <= row["speedup_q75"]
    assert row["predicted_speedup"] > 1.0 and 0.0 < row["space_reduction"] < 1.0
    assert row["config_p"] == 0.5 and row["config_method"] == "coreset"
    assert 0.5 <= row[DEV_SHARE_COLUMN] <= 1.0  # the one-class flag is read on dev
    assert (tmp_path / "run" / "eval-test.json").is_file()


@pytest.mark.integration
def test_real_minilm_fine_tunes_and_evaluates_on_a_small_rt_polarity_subset(tmp_path):
    config = FinetuneConfig(task="rt-polarity", model="minilm-l6", method="coreset", p=0.25, prune_upto=2, selection=SelectionOptions(m=0.2),
                            epochs=1, max_train_examples=48, max_eval_examples=64, out=str(tmp_path / "run"))  # fmt: skip
    row = run_trial(config, timing_repeats=2)
    assert row["lengths"] == [32, 16, 16, 16, 16, 16]
    assert row["predicted_speedup"] == pytest.approx(3.02, abs=0.01)
    assert 0.0 <= row["test_metric"] <= 1.0 and row["speedup_median"] > 0
