"""The real trial function: fine-tune and evaluate with :func:`pyramid_bert.trial.run_trial`."""

from __future__ import annotations

from typing import Any


def finetune_trial(config: dict[str, Any]) -> dict[str, Any]:
    """Build a ``FinetuneConfig`` from ``config`` and run the trial (heavy imports happen here).

    ``config["trial_options"]`` (optional) holds keyword arguments of ``run_trial`` (timing_repeats,
    time_train_step), ``threads`` (torch intra-op threads for this process) and ``protocol`` (copied into
    the result: "warm" or "paper"); every other key is a
    ``FinetuneConfig`` field. Transformers' per-load messages and
    progress bars are silenced: the sweep shows one progress bar over trials.
    """
    from transformers.utils import logging as transformers_logging

    from pyramid_bert.run_config import FinetuneConfig
    from pyramid_bert.trial import run_trial

    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    config = dict(config)
    options = dict(config.pop("trial_options", None) or {})
    threads = options.pop("threads", None)
    protocol = options.pop("protocol", None)
    if threads:
        import torch

        torch.set_num_threads(int(threads))
    result = dict(run_trial(FinetuneConfig.from_dict(config), **options))
    return {**result, "protocol": protocol} if protocol else result
