"""How long a planned sweep will take: a cost model fitted to measured trials, and a schedule simulation.

Measured on this project's 2-core CPU (2026-12-01), minilm-l6 on rt-polarity (N = 64), one torch thread,
pinned to one core with the other core busy (as it is when two workers run), inputs padded to N:

- dense, 4000 train examples x 2 epochs, batch 32, lr 5e-5: 250 steps in 593 s (2.37 s a step, median
  2.04), then dev + test (1275 each) in 57 s: 650 s; test accuracy 79.5 (dev 81.6) against 80.4 for
  the whole train split (issue 11, one seed each);
- coreset [56, 48, 48, 48, 48, 48] (1.28X predicted, 1.25X measured), warm from that checkpoint, 63 steps:
  104 s training (1.66 s a step), 66 s the rest (loads, dev and test on 1275 each, timing): 170 s;
  test 79.6, dev 82.4;
- coreset [32, 16, 16, 16, 16, 16] (3.02X predicted, 2.92X measured), the same way: 67 s training (1.07 s a
  step), 28 s the rest: 96 s; test 74.4, dev 74.4.

Fitted: a pyramid training step of batch 32 takes ``0.631 + 1.317 / s`` seconds at speedup ``s`` (the two
measured points); everything after training takes ``(2 * E * 0.0157 + 44) / s`` seconds for E dev and E
test examples (dense: 0.0157 s an example at inference; the rest, timing and loads, fitted); a dense trial
adds 17 s of loads to its training and evaluation. The predicted speedup (FLOPs model) stands in for s.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

from pyramid_bert import schedule as schedule_model
from pyramid_bert.sweep.plan import ModelShape
from pyramid_bert.sweep.spec import TrialSpec

DENSE_STEP_SECONDS = 2.37
PYRAMID_STEP_FIXED, PYRAMID_STEP_SCALED = 0.631, 1.317
INFER_SECONDS_PER_EXAMPLE = 0.0157
EVAL_REST_SECONDS = 44.0
DENSE_LOAD_SECONDS = 17.0
MEASURED_BATCH = 32
#: Examples in the dev and test splits of rt-polarity (for trials without an eval cap).
DEFAULT_EVAL_EXAMPLES = 1275
DEFAULT_TRAIN_EXAMPLES = 10201


def predicted_speedup(trial: TrialSpec, n: int, shape: ModelShape) -> float:
    """The FLOPs model's speedup of ``trial``'s schedule (1.0 for dense)."""
    if trial.method == "dense":
        return 1.0
    if trial.pool_windows:
        lengths = schedule_model.pool_lengths(n, list(trial.pool_windows))
    elif trial.keep_ratios:  # the widths of an input of n real tokens
        lengths = schedule_model.ratio_lengths(n, list(trial.keep_ratios))
    else:
        lengths = list(trial.lengths or [])
    return schedule_model.predicted_speedup(
        n, lengths, hidden=shape.hidden, intermediate=shape.intermediate, num_layers=shape.num_layers,
        position=trial.position, truncate_input=trial.method == "input_first_k",
    )  # fmt: skip


def trial_seconds(trial: TrialSpec, speedup: float) -> float:
    """Estimated seconds of one trial on one core of the measured machine (see the module docstring)."""
    examples = trial.max_train_examples or DEFAULT_TRAIN_EXAMPLES
    batch = trial.batch_size or MEASURED_BATCH
    steps = max(1, math.ceil(trial.epochs * math.ceil(examples / batch)))
    per_example_scale = batch / MEASURED_BATCH
    evaluated = trial.max_eval_examples or DEFAULT_EVAL_EXAMPLES
    if trial.method == "dense":
        train = steps * DENSE_STEP_SECONDS * per_example_scale
        return train + 2 * evaluated * INFER_SECONDS_PER_EXAMPLE + DENSE_LOAD_SECONDS
    step = (PYRAMID_STEP_FIXED + PYRAMID_STEP_SCALED / speedup) * per_example_scale
    return steps * step + (2 * evaluated * INFER_SECONDS_PER_EXAMPLE + EVAL_REST_SECONDS) / speedup


def estimate_wall_seconds(trials: Sequence[TrialSpec], n: int, shape: ModelShape, workers: int) -> float:
    """Wall seconds of running ``trials`` on ``workers`` workers, scheduled as
    :class:`pyramid_bert.sweep.scheduling.JobQueue` does: a trial waits for its ``init_from``; a free worker
    takes the first ready trial that others need, else the first ready one in plan order."""
    durations = {t.key: trial_seconds(t, predicted_speedup(t, n, shape)) for t in trials}
    finished: dict[str, float] = {}

    def ready_at(trial: TrialSpec) -> float:
        if trial.init_from is None or trial.init_from not in durations:
            return 0.0
        return finished.get(trial.init_from, math.inf)

    free = [0.0] * max(1, workers)
    waiting = list(trials)
    while waiting:
        start = heapq.heappop(free)
        ready = [t for t in waiting if ready_at(t) <= start]
        if not ready:  # this worker idles until the first dependency finishes
            start = min(ready_at(t) for t in waiting)
            ready = [t for t in waiting if ready_at(t) <= start]
        needed = {t.init_from for t in waiting if t.init_from}
        trial = next((t for t in ready if t.key in needed), ready[0])  # as JobQueue: needed trials first
        finished[trial.key] = start + durations[trial.key]
        waiting.remove(trial)
        heapq.heappush(free, finished[trial.key])
    return max(finished.values(), default=0.0)
