"""How long a planned sweep will take: a cost model fitted to measured trials, and a schedule simulation.

Fitted to the main job of 2026-12-04 (``benchmarks/main_job/trials.jsonl``; minilm-l6 on rt-polarity, N = 64, one
torch thread per trial, two trials at a time on this project's 2-core CPU, training batches dynamically padded,
640-example dev and test subsets): the 3 dense trials (4000 examples x 2 epochs, 250 steps of batch 32) took
272-284 s each, 263-271 s of it training and scoring dev; the 56 pyramid trials of seeds 1 and 2 (20 adaptation
steps, no timing) 12-27 s. Least squares over those 56 gives ``0.22 + 0.943 / s`` seconds a training step at
predicted (FLOPs-model, padded) speedup ``s``, with the split scoring at ``0.0053 / s`` seconds an example (dense:
3.6 s for 640 test examples) and 2.84 s of loads; a dense trial adds 10 s of loads to its 1.06 s steps and scoring.

The separate timing pass (:mod:`pyramid_bert.sweep.speed_pass`) runs alone before training: per group, each round
runs the dense model and every timed configuration once over the timed examples (one dense pass on length-sorted
batches took about 1.6 s for 256 examples in that job's in-trial timings), ``warmup + repeats`` rounds, and a group
choosing schedules times about 1.5 candidates per target (the measured / predicted ratio of the sorted speedups
was 0.96-1.17 there, so the first guess is mostly within the tolerance). The provisional choice before the pass
takes the sorted speedup as 0.85 of the padded prediction (0.78-0.93 in that job).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence

from pyramid_bert import schedule as schedule_model
from pyramid_bert.sweep.plan import ModelShape
from pyramid_bert.sweep.spec import TrialSpec
from pyramid_bert.sweep.speed_plan import SpeedGroup, SpeedPass, provisional_choice

DENSE_STEP_SECONDS = 1.06
PYRAMID_STEP_FIXED, PYRAMID_STEP_SCALED = 0.22, 0.943
INFER_SECONDS_PER_EXAMPLE = 0.0053
EVAL_REST_SECONDS = 2.84
DENSE_LOAD_SECONDS = 10.0
MEASURED_BATCH = 32
#: The timing pass: seconds of one dense pass over one timed example on length-sorted batches (at N = 64), the
#: candidates timed per target of a choosing group, and measured sorted / predicted padded speedup.
DENSE_PASS_SECONDS_PER_EXAMPLE = 1.6 / 256
PROBES_PER_TARGET = 1.5
SORTED_PER_PADDED = 0.85
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
    return steps * step + 2 * evaluated * INFER_SECONDS_PER_EXAMPLE / speedup + EVAL_REST_SECONDS


def provisional_trials(
    trials: Sequence[TrialSpec], groups: Sequence[SpeedGroup], targets: Sequence[float], n: int, shape: ModelShape
) -> list[TrialSpec]:
    """The dense trials of ``trials`` and, per group, the schedules a choice on measured speed would likely take
    (the FLOPs model's padded prediction times :data:`SORTED_PER_PADDED` standing in for the measurement): what the
    time estimate and the plan's size use before the timing pass has run. Seed-major, dense first."""
    chosen = [trial for trial in trials if trial.method == "dense"]
    for group in groups:
        guess = [predicted_speedup(s[0], n, shape) * SORTED_PER_PADDED for s in group.schedules]
        chosen += provisional_choice(group, guess, targets)
    return sorted(chosen, key=lambda trial: (trial.seed, trial.method != "dense"))


def estimate_pass_seconds(
    groups: Sequence[SpeedGroup] | None, speed_pass: SpeedPass | None, n: int, shape: ModelShape
) -> float:
    """Seconds of the separate timing pass (see the module docstring); 0 without one."""
    if not groups or speed_pass is None:
        return 0.0
    rounds = speed_pass.warmup + speed_pass.repeats
    total = 0.0
    for group in groups:
        subset = group.schedules[0][0].max_eval_examples or DEFAULT_EVAL_EXAMPLES
        dense_pass = min(speed_pass.examples or subset, subset) * DENSE_PASS_SECONDS_PER_EXAMPLE * n / 64
        per_schedule = len(group.configurations(0))
        speeds = [predicted_speedup(s[0], n, shape) * SORTED_PER_PADDED for s in group.schedules]
        if speed_pass.targets is not None:
            timed = [min(speeds, key=lambda s, t=t: abs(s - t)) for t in speed_pass.targets] * 2  # ~1.5 per target
            timed = timed[: math.ceil(PROBES_PER_TARGET * len(speed_pass.targets))]
            blocks = 2
        else:
            timed, blocks = speeds, 1
        total += rounds * dense_pass * (blocks + per_schedule * sum(1 / s for s in timed))
    return total


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
