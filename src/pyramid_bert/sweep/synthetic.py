"""A synthetic trial function: plausible numbers in milliseconds, no model, no data.

For checking a sweep's plumbing end to end (``pyramid-bert sweep --synthetic``) and for tests, including
on Ray workers (it is a module-level function of the installed package, so workers can import it).
The metric falls with the share of tokens dropped; the "measured" speedup is the share of tokens kept,
inverted, with seed-dependent noise. None of it says anything about real models.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from pyramid_bert.measure.evaluation import DEV_SHARE_COLUMN, speedup_column
from pyramid_bert.measure.timing import RatioRange
from pyramid_bert.schedule import attention_space_reduction
from pyramid_bert.sweep.budget import SORTED_PER_PADDED, predicted_speedup
from pyramid_bert.sweep.plan import ModelShape
from pyramid_bert.sweep.spec import TrialSpec

SYNTHETIC_INPUT_LENGTH = 64
SYNTHETIC_LAYERS = 6


def _kept_lengths(config: dict[str, Any]) -> list[int]:
    """The kept length per layer of a trial's config, for an input of :data:`SYNTHETIC_INPUT_LENGTH` tokens."""
    n = SYNTHETIC_INPUT_LENGTH
    if config.get("pool_windows"):
        lengths, current = [], n
        for window in config["pool_windows"]:
            current = 1 + -(-(current - 1) // int(window))
            lengths.append(current)
    elif config.get("keep_ratios"):
        lengths = [max(1, round(float(r) * n)) for r in config["keep_ratios"]]
    elif config.get("lengths"):
        lengths = [min(n, int(k)) for k in config["lengths"]]
    else:
        lengths = [n] * SYNTHETIC_LAYERS
    return lengths


def synthetic_trial(config: dict[str, Any]) -> dict[str, Any]:
    """Results shaped like :func:`pyramid_bert.sweep.trial.run_trial`'s, from the config alone."""
    n = SYNTHETIC_INPUT_LENGTH
    lengths = _kept_lengths(config)
    kept = sum(lengths) / (len(lengths) * n)
    rng = random.Random(f"{config.get('task')}|{config.get('method')}|{lengths}|{config.get('m')}|{config['seed']}")
    method_penalty = {
        "coreset": 0.10,
        "attention": 0.12,
        "random": 0.16,
        "first_k": 0.2,
        "input_first_k": 0.22,
        "average_pool": 0.3,
    }.get(config.get("method", ""), 0.0)
    m_bonus = 0.01 if config.get("method") == "coreset" and config.get("m") not in (None, 1) else 0.0
    dev = 0.9 - method_penalty * (1 - kept) ** 2 + m_bonus + rng.gauss(0, 0.005)
    test = dev + rng.gauss(0, 0.005)
    speedup = (1 / max(kept, 1e-3)) ** 0.8 * (1 + rng.gauss(0, 0.02))
    sorted_speedup = speedup**0.6  # length-sorted batches carry less padding to drop
    share = 0.5 + 0.4 * (1 - kept) ** 4 + abs(rng.gauss(0, 0.01))
    return {
        "dev_metric": dev,
        "test_metric": test,
        "metric_name": "accuracy",
        **{speedup_column(protocol, stat): value * factor
           for protocol, value in (("paper", speedup), ("sorted", sorted_speedup))
           for stat, factor in (("median", 1.0), ("q25", 0.98), ("q75", 1.02))},
        "prediction_majority_share": min(share, 1.0),
        DEV_SHARE_COLUMN: min(share + rng.gauss(0, 0.005), 1.0),
        "label_majority_share": 0.5,
        "protocol": (config.get("trial_options") or {}).get("protocol"),
        "predicted_speedup": 1 / kept,
        "space_reduction": attention_space_reduction(n, lengths),
        "space_reduction_exact": attention_space_reduction(
            n, lengths, exact=True, truncate_input=config.get("method") == "input_first_k"
        ),
        "train_seconds": 0.0,
        "eval_seconds": 0.0,
        "checkpoint": config.get("out"),
        "lengths": lengths,
    }


#: Synthetic selection overheads: the measured speedup is the predicted one times this (1 when not listed).
_SYNTHETIC_EFFICIENCY = {"attention": 0.92, "coreset": 0.97}


class SyntheticTimer:
    """The timing pass without models: "predicted" is the FLOPs model's padded speedup of the schedule for minilm-l6's
    widths at N = 64 (the data's N for the user's files) times 0.85 (about what length-sorted batches keep of it), "measured" that times a per-method efficiency
    and seeded noise (2%), over ``repeats`` rounds."""

    def __init__(self, repeats: int = 6) -> None:
        self.repeats = repeats
        self.timed: list[list[str]] = []  # the config keys of each timing, in order (tests look at them)

    def predict(self, specs: Sequence[TrialSpec]) -> list[float]:
        return [self._predicted(spec) for spec in specs]

    def time(self, specs: Sequence[TrialSpec]) -> dict[str, dict[str, Any]]:
        self.timed.append([spec.config_key for spec in specs])
        results = {}
        for spec in specs:
            rng = random.Random(spec.config_key)
            base = self._predicted(spec) * _SYNTHETIC_EFFICIENCY.get(spec.method, 1.0)
            ratios = RatioRange(tuple(base * (1 + rng.gauss(0, 0.02)) for _ in range(self.repeats)))
            results[spec.config_key] = {"speedup": ratios.to_dict(), "predicted": self._predicted(spec),
                                        "mode": "sorted", "weights": "synthetic (no model)"}  # fmt: skip
        return results

    @staticmethod
    def _predicted(spec: TrialSpec) -> float:
        layers = len(spec.lengths or spec.pool_windows or spec.keep_ratios or ()) or SYNTHETIC_LAYERS
        n = int(dict(spec.data or ()).get("max_length", SYNTHETIC_INPUT_LENGTH))
        return predicted_speedup(spec, n, ModelShape(layers, 384, 1536)) * SORTED_PER_PADDED
