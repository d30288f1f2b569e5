"""The real trial function: fine-tune and evaluate with :func:`pyramid_bert.sweep.trial.run_trial`."""

from __future__ import annotations

from typing import Any

import torch
from transformers.utils import logging as transformers_logging

from pyramid_bert.data.user_task import DataFiles, files_fingerprint, load_for_model
from pyramid_bert.errors import DataError
from pyramid_bert.sweep import trial  # trial.run_trial, looked up at call time (tests replace it)
from pyramid_bert.training.config import FinetuneConfig


def finetune_trial(config: dict[str, Any]) -> dict[str, Any]:
    """Build a ``FinetuneConfig`` from ``config`` and run the trial (heavy imports happen here).

    ``config["trial_options"]`` (optional) holds keyword arguments of ``run_trial`` (timing_repeats,
    time_train_step), ``threads`` (torch intra-op threads for this process), ``protocol`` (copied into
    the result: "warm" or "paper") and ``data`` (the user's data files, :attr:`TrialSpec.data`); every other key is a
    ``FinetuneConfig`` field. Transformers' per-load messages and
    progress bars are silenced: the sweep shows one progress bar over trials.
    """

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    config = dict(config)
    options = dict(config.pop("trial_options", None) or {})
    threads = options.pop("threads", None)
    protocol = options.pop("protocol", None)
    data = options.pop("data", None)
    if threads:
        torch.set_num_threads(int(threads))
    finetune_config = FinetuneConfig.from_dict(config)
    if data is not None:
        options["task_data"] = load_trial_data(data, finetune_config.model, finetune_config.seed)
    result = dict(trial.run_trial(finetune_config, **options))
    return {**result, "protocol": protocol} if protocol else result


def load_trial_data(data: dict[str, Any], model: str, seed: int):  # noqa: ANN201 - TaskData
    """The user's data of a trial (``TrialSpec.data``): read with ``model``'s tokenizer at the planned N, and
    refused (DataError) when the files no longer hold what the sweep was planned on."""

    files = DataFiles.from_dict(data)
    if data.get("sha256") and files_fingerprint(files) != data["sha256"]:
        raise DataError(f"--train: {data['train']} changed since the sweep was planned; plan a new sweep (--out)")
    return load_for_model(files, model, max_length=int(data["max_length"]), seed=seed)
