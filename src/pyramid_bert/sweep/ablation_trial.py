"""The trial function of the ablations: :func:`~pyramid_bert.sweep.finetune_trial.finetune_trial`, except for
trials with ``epochs == 0`` (:data:`~pyramid_bert.sweep.ablations.ONLY_INFER_EPOCHS`), which apply the selection
at inference only to the dense checkpoint they start from (the paper's Table 6), without any training."""

from __future__ import annotations

from typing import Any

import torch
from transformers.utils import logging as transformers_logging

from pyramid_bert.measure import evaluate
from pyramid_bert.measure.evaluation import DEV_SHARE_COLUMN
from pyramid_bert.spec import SelectionOptions
from pyramid_bert.sweep.ablations import ONLY_INFER_EPOCHS
from pyramid_bert.sweep.finetune_trial import finetune_trial, load_trial_data


def ablation_trial(config: dict[str, Any]) -> dict[str, Any]:
    """Run one ablation trial from its job ``config`` (see :func:`pyramid_bert.sweep.runner.trial_config`)."""
    if float(config.get("epochs", 1.0)) != ONLY_INFER_EPOCHS:
        return finetune_trial(config)
    return only_infer_trial(config)


def only_infer_trial(config: dict[str, Any]) -> dict[str, Any]:
    """Score the dense checkpoint ``config["model"]`` with ``config``'s selection applied at inference only:
    dev and test metric, and (unless ``trial_options.measure_speed`` is False) speed against the dense twin."""

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    options = dict(config.get("trial_options") or {})
    if options.get("threads"):
        torch.set_num_threads(int(options["threads"]))
    selection = {"method": config["method"], "lengths": config["lengths"], **SelectionOptions.from_dict(config).to_dict()}
    common = {"only_infer": selection, "max_examples": config.get("max_eval_examples"), "write_json": False,
              "batch_size": config.get("eval_batch_size"), "glue_dir": config.get("glue_dir")}  # fmt: skip
    if options.get("data"):
        common["task_data"] = load_trial_data(options["data"], config["model"], int(config["seed"]))
    dev = evaluate.evaluate_checkpoint(config["model"], split="dev", measure_speed=False, **common)
    test = evaluate.evaluate_checkpoint(
        config["model"], split="test", measure_speed=options.get("measure_speed", True),
        timing_repeats=int(options.get("timing_repeats", 3)), timing_examples=256,
        timing_dense_modes=("padded", "sorted"), time_train_step=False, **common,
    )  # fmt: skip
    return {
        "task": config["task"], "model": config["model"], "method": config["method"], "seed": config["seed"],
        "dev_metric": dev.metric, "dev_scores": dev.scores, DEV_SHARE_COLUMN: dev.prediction_majority_share,
        **test.trial_columns(), "train_seconds": 0.0,
        "eval_seconds": dev.eval_seconds + test.eval_seconds, "checkpoint": config["model"],
        "lengths": test.lengths, "only_infer": True, "protocol": options.get("protocol"),
    }  # fmt: skip
