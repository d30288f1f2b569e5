"""Running the separate timing pass into the results store, resumably (the plan: :mod:`pyramid_bert.sweep.speed_plan`).

The pass runs in the sweep's driver before any trial trains (no worker exists yet): one process, the sweep's torch
threads. Each group's timing is written to the store's ``speeds`` table as soon as it ends, and each group's choice
of schedules to its meta entry ``speed_choice`` once made, so an interrupted pass resumes with what it measured and a
resumed sweep trains the schedules chosen the first time.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, Protocol

from pyramid_bert.sweep.spec import TrialSpec
from pyramid_bert.sweep.speed_plan import SpeedGroup, SpeedPass, choose_schedules, measured_speedup, next_probes
from pyramid_bert.sweep.store import ResultsStore, SpeedRecord

#: The store's meta entry with each group's chosen schedules (their schedule keys).
CHOICE_META = "speed_choice"


class Timer(Protocol):
    """What the pass needs of a timer (:class:`pyramid_bert.sweep.speed_timer.ModelTimer` or a synthetic one)."""

    def predict(self, specs: Sequence[TrialSpec]) -> list[float]: ...

    def time(self, specs: Sequence[TrialSpec]) -> dict[str, dict[str, Any]]: ...


def run_speed_pass(
    groups: Sequence[SpeedGroup], store: ResultsStore, timer: Timer, speed_pass: SpeedPass, *, progress: bool = True
) -> list[TrialSpec]:
    """Time every group (see the module docstring) and return the trials to train: every trial of a group when the
    pass has no targets, else the trials of the schedules chosen on the measured speedups."""
    trials: list[TrialSpec] = []
    for group in groups:
        if speed_pass.targets is None:
            _time_missing(group, range(len(group.schedules)), store, timer, progress)
            trials += [trial for schedule in group.schedules for trial in schedule]
        else:
            trials += [trial for index in _choose(group, store, timer, speed_pass, progress)
                       for trial in group.schedules[index]]  # fmt: skip
    return trials


def _choose(group: SpeedGroup, store: ResultsStore, timer: Timer, speed_pass: SpeedPass, progress: bool) -> list[int]:
    """The indices of ``group``'s chosen schedules: recorded in the store, or measured now and recorded."""
    keys = [schedule[0].schedule_key for schedule in group.schedules]
    recorded = (store.get_meta(CHOICE_META) or {}).get(group.name)
    if recorded is not None and all(key in keys for key in recorded):
        return [keys.index(key) for key in recorded]
    predicted: list[float] | None = None
    for _ in range(speed_pass.max_rounds):
        measured = _measured(group, store)
        if predicted is None:
            predicted = timer.predict([group.configurations(i)[0] for i in range(len(group.schedules))])
        probes = next_probes(predicted, measured, speed_pass.targets, speed_pass.tolerance)
        if not probes:
            break
        _time_missing(group, probes, store, timer, progress)
    measured = _measured(group, store)
    chosen = choose_schedules(measured, speed_pass.targets)
    store.set_meta(CHOICE_META, {**(store.get_meta(CHOICE_META) or {}), group.name: [keys[i] for i in chosen]})
    if progress:
        picked = ", ".join(f"{group.schedules[i][0].schedule} {measured[i]:.2f}X" for i in chosen)
        print(f"speed pass: {group.name}: {picked} (targets {', '.join(f'{t:g}X' for t in speed_pass.targets)})",
              file=sys.stderr)  # fmt: skip
    return chosen


def _measured(group: SpeedGroup, store: ResultsStore) -> dict[int, float]:
    speeds = {key: record.result["speedup"]["median"] for key, record in store.speeds().items()}
    values = {index: measured_speedup(group, index, speeds) for index in range(len(group.schedules))}
    return {index: value for index, value in values.items() if value is not None}


def _time_missing(
    group: SpeedGroup, indices: Sequence[int], store: ResultsStore, timer: Timer, progress: bool
) -> None:
    """Time, in one interleaved timing, every configuration of the schedules ``indices`` the store lacks."""
    done = store.speeds()
    specs = [spec for index in indices for spec in group.configurations(index) if spec.config_key not in done]
    if not specs:
        return
    if progress:
        print(f"speed pass: {group.name}: timing {len(specs)} configuration(s) against dense", file=sys.stderr)
    started = time.perf_counter()
    timed = timer.time(specs)
    wall = time.perf_counter() - started
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for spec in specs:
        store.add_speed(SpeedRecord(spec, group.name, timed[spec.config_key], socket.gethostname(), now, wall))
