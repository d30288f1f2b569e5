"""What an evaluation found, as one typed record: :class:`Evaluation`, whose :meth:`~Evaluation.to_row` owns the
column names of evaluation JSON files and sweep rows (``speedup_median``, ``sorted_speedup_q25``, ...).

Speedups come under two protocols (see :mod:`pyramid_bert.measure.speed`): ``paper`` (both models padded to N, the
paper's Appendix C) and ``sorted`` (both on length-sorted batches padded per batch, as users batch a dense model).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

#: Speed protocols and the column prefix of each: ``speedup_median`` (paper), ``sorted_speedup_median`` (sorted).
SPEEDUP_PREFIXES = {"paper": "speedup", "sorted": "sorted_speedup"}
SPREAD_STATS = ("median", "q25", "q75")
#: The sweep-row column of the dev predictions' majority-class share (what flags a constant predictor).
DEV_SHARE_COLUMN = "dev_prediction_majority_share"


def speedup_column(protocol: str, stat: str = "median") -> str:
    """The column of a speedup statistic: ``speedup_column("sorted", "q25") == "sorted_speedup_q25"``."""
    return f"{SPEEDUP_PREFIXES[protocol]}_{stat}"


@dataclass
class Evaluation:
    """One model folder scored (and possibly timed) on one split of a task.

    ``speedup[protocol]`` holds ``{"median", "q25", "q75"}`` of the paired ratios T(dense) / T(pyramid) under each
    protocol (both 1.0 for a model that selects nothing; empty when speed was not measured).
    """

    checkpoint: str
    task: str
    split: str
    examples: int
    metric_name: str
    metric: float
    scores: dict[str, float]
    method: str
    lengths: list[int] | None
    position: str
    n: int
    device: str
    predicted_speedup: float
    space_reduction: float
    space_reduction_exact: float
    keep_ratios: list[float] | None = None
    precision: str = "fp32"
    only_infer: dict[str, Any] | None = None
    prediction_majority_share: float | None = None
    label_majority_share: float | None = None
    prediction_counts: dict[str, int] | None = None
    speedup: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    predicted_speedup_padded: float | None = None
    predicted_speedup_sorted: float | None = None
    speed: dict[str, Any] | None = None
    memory: dict[str, Any] | None = None
    eval_seconds: float = 0.0
    result_json: str | None = None

    def speedup_columns(self) -> dict[str, float | None]:
        """``speedup_median`` ... ``sorted_speedup_q75`` (None where speed was not measured)."""
        return {
            speedup_column(protocol, stat): self.speedup.get(protocol, {}).get(stat)
            for protocol in SPEEDUP_PREFIXES
            for stat in SPREAD_STATS
        }

    def trial_columns(self) -> dict[str, Any]:
        """What a sweep row takes from its test evaluation: metric, scores, speedups, cost model, class shares."""
        return {
            "metric_name": self.metric_name, "test_metric": self.metric, "test_scores": self.scores,
            **self.speedup_columns(), "predicted_speedup": self.predicted_speedup,
            "predicted_speedup_padded": self.predicted_speedup_padded,
            "predicted_speedup_sorted": self.predicted_speedup_sorted, "space_reduction": self.space_reduction,
            "space_reduction_exact": self.space_reduction_exact,
            "prediction_majority_share": self.prediction_majority_share,
            "label_majority_share": self.label_majority_share, "prediction_counts": self.prediction_counts,
        }  # fmt: skip

    def to_row(self) -> dict[str, Any]:
        """The flat JSON record (evaluation files, ``evaluate --json-out``): every field, speedups as columns."""
        row = {field.name: getattr(self, field.name) for field in dataclasses.fields(self) if field.name != "speedup"}
        return {**row, **self.speedup_columns()}
