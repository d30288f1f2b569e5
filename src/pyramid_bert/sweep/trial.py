"""One trial of the paper's experiments: fine-tune, score dev and test, measure the speedup; one flat dict.

This is the unit a sweep runs (:mod:`pyramid_bert.sweep`): everything it returns is JSON-able and flat
enough to be one row of a results table.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from pyramid_bert.measure import evaluate
from pyramid_bert.measure.evaluation import DEV_SHARE_COLUMN
from pyramid_bert.training import checkpoint
from pyramid_bert.training import loop as train

if TYPE_CHECKING:
    from pyramid_bert.data import TaskData
    from pyramid_bert.training.config import FinetuneConfig


#: Keys of the test evaluation copied when present (None otherwise): the speedup against the dense model on
#: length-sorted, dynamically padded batches (the realistic one, beside the paper's padded ``speedup_*``),
#: and the class shares of the test predictions and labels (constant-predictor check).


def run_trial(
    config: FinetuneConfig,
    *,
    measure_speed: bool = True,
    measure_memory: bool = False,
    progress: bool = False,
    task_data: TaskData | None = None,
    timing_repeats: int = 3,
    timing_examples: int | None = 256,
    time_train_step: bool = True,
) -> dict[str, Any]:
    """Fine-tune ``config`` (or reuse its finished checkpoint), evaluate on dev and test, return a flat dict.

    Keys: dev_metric, test_metric, metric_name, dev_scores, test_scores, speedup_median, speedup_q25,
    speedup_q75 (both padded to N: the paper's protocol), sorted_speedup_median/q25/q75 (both length-sorted and
    padded per batch: the realistic speedup; None when not measured), predicted_speedup_padded/_sorted (FLOPs
    model on those batches), prediction_majority_share, label_majority_share, prediction_counts (None for
    regression), train_step_speedup_median, predicted_speedup, space_reduction (the paper's formula),
    space_reduction_exact (over the tokens each layer attends to), train_seconds,
    train_step_seconds, eval_seconds, checkpoint, lengths, task, model, method, seed, threads, memory (or
    None), and the config's fields prefixed ``config_``.
    """

    started = time.perf_counter()
    folder = train.finetune(config, progress=progress, task_data=task_data)
    fine_tune_wall = time.perf_counter() - started
    run_info = checkpoint.read_run_info(folder)
    eval_started = time.perf_counter()
    dev = run_info.get("metrics", {}).get("dev")
    if dev is None:
        dev = evaluate.evaluate_checkpoint(
            folder, split="dev", measure_speed=False, max_examples=config.max_eval_examples,
            task_data=task_data, write_json=False,
        ).to_row()  # fmt: skip
    test = evaluate.evaluate_checkpoint(
        folder, split="test", measure_speed=measure_speed, measure_memory=measure_memory,
        max_examples=config.max_eval_examples, task_data=task_data, timing_repeats=timing_repeats,
        timing_examples=timing_examples, timing_dense_modes=("padded", "sorted"), time_train_step=time_train_step,
    )  # fmt: skip
    eval_seconds = time.perf_counter() - eval_started
    train_step = (test.speed or {}).get("train_step") or {}
    return {
        "task": config.task,
        "model": config.model,
        "method": config.method,
        "seed": config.seed,
        "dev_metric": dev["metric"],
        "dev_scores": dev.get("scores"),
        DEV_SHARE_COLUMN: dev.get("prediction_majority_share"),  # None in runs fine-tuned before it was recorded
        **test.trial_columns(),
        "train_step_speedup_median": (train_step.get("speedup") or {}).get("median"),
        "train_seconds": run_info["train"]["seconds"],
        "train_step_seconds": run_info["train"]["step_seconds_median"],
        "finetune_wall_seconds": fine_tune_wall,
        "eval_seconds": eval_seconds,
        "threads": run_info["train"].get("threads"),
        "checkpoint": str(folder),
        "lengths": run_info.get("lengths"),
        "memory": test.memory,
        **{f"config_{key}": value for key, value in config.flat_dict().items()},
    }
