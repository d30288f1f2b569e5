"""The plan a results store was started with, and the refusal of a ``--resume`` that plans something else.

The first run of a sweep records its settings (``sweep`` in the store's meta table; the report prints them).
A resumed run whose settings differ would mix trials of two plans in one store (trial keys keep them apart,
but the report's tables aggregate every row of the store as one experiment, and its header would show the
first plan only), so it is refused before anything runs, with the settings that differ and the flags that set
them. Where a trial runs (``--executor``, ``--workers``) is not part of the plan. A store without a recorded
plan (written by library calls) resumes and gets this run's plan; settings that a recorded plan lacks (it
predates them) are not compared, except the separate timing pass: a store begun without one (an older pyramid-bert,
whose trials timed themselves and whose schedules were chosen on predicted speed) is not resumed with one.

``--extend`` (with ``--resume``) lets a finished or running study grow: configurations may be added (the named
variants of each task, the methods and method variants: every recorded one stays) and a separate timing pass may be
added (it then times every configuration, old ones included, and the report uses its speeds); every other setting
must be the recorded one. The store then records the extended plan.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyramid_bert.errors import ConfigError
from pyramid_bert.sweep.store import ResultsStore, open_existing

#: The store's meta entry holding the plan's settings.
PLAN_META = "sweep"
#: Settings that say where trials run, not what they are: a resumed run may change them.
PLACEMENT_SETTINGS = ("executor", "workers")
#: Settings ``--extend`` may grow: lists of configuration names to which names may be added, none removed.
EXTENDABLE_SETTINGS = ("variants", "methods", "method_variants")
#: The flags behind each setting, for the message.
_FLAGS = {
    "preset": "--preset",
    "tasks": "--task",
    "data": "--train / --dev / --test / --max-length",
    "model": "--model",
    "methods": "--methods",
    "seeds": "--seeds",
    "coreset_ms": "--preset",
    "speedup_targets": "--preset",
    "method_targets": "--preset",
    "variants": "--preset",
    "budget": "--epochs / --max-train-examples / --max-eval-examples",
    "adapt_budget": "--adapt-epochs / --max-train-examples / --max-eval-examples",
    "protocol": "--protocol",
    "threads": "--threads",
    "synthetic": "--synthetic",
    "method_variants": "--preset / --methods",
    "speed_pass": "--preset",
}


def check_resumed_plan(store_path: str | Path, settings: dict[str, Any], *, extend: bool = False) -> None:
    """Refuse (ConfigError) to resume the store at ``store_path`` with ``settings`` other than its recorded plan
    (with ``extend``: other than that plan with configurations or a timing pass added).

    Reads the store read-only; a missing store or one without a recorded plan passes.
    """
    store_path = Path(store_path)
    if not store_path.exists():
        return
    with open_existing(store_path) as store:
        recorded = store.get_meta(PLAN_META)
    differences = plan_differences(recorded, settings, extend=extend) if recorded else []
    if differences:
        grow = "" if extend else "; --extend adds configurations or a timing pass to it"
        raise ConfigError(
            f"--resume: the sweep in {store_path} was planned with other settings: {'; '.join(differences)}. "
            f"Resume it with the flags it was started with (its report lists them){grow}, or run this plan into "
            "another --out"
        )


def record_plan(store: ResultsStore, settings: dict[str, Any], *, extend: bool = False) -> None:
    """Record ``settings`` as the plan of ``store`` unless it has one (then :func:`check_resumed_plan` ran), or, with
    ``extend``, as its extended plan."""
    if extend or store.get_meta(PLAN_META) is None:
        store.set_meta(PLAN_META, settings)


def plan_differences(recorded: dict[str, Any], settings: dict[str, Any], *, extend: bool = False) -> list[str]:
    """Each setting of the ``recorded`` plan that ``settings`` changes, as "name recorded (now new; flag)";
    with ``extend``, added configuration names and an added timing pass are no change."""
    old, new = _leaves(recorded), _leaves(_as_stored(settings))
    differences = []
    if "speed_pass" not in recorded and settings.get("speed_pass") and not extend:
        differences.append("speed_pass not recorded (now a separate timing pass; the store was begun by an older "
                           "pyramid-bert, whose trials timed themselves: resume it with that version)")  # fmt: skip
    for name, value in old.items():
        top = name.split(".")[0]
        if top in PLACEMENT_SETTINGS or new.get(name) == value or (extend and _grown(top, value, new.get(name))):
            continue
        flag = _FLAGS.get(top)
        now = _short(new[name]) if name in new else "not set"
        differences.append(f"{name} {_short(value)} (now {now}{f'; {flag}' if flag else ''})")
    return differences


def _grown(top: str, recorded: Any, now: Any) -> bool:
    """Whether ``now`` keeps every configuration name of ``recorded`` (an extendable setting's list) and adds some."""
    if top not in EXTENDABLE_SETTINGS or not isinstance(now, list):
        return False
    return recorded is None or (isinstance(recorded, list) and set(map(str, recorded)) <= set(map(str, now)))


def _as_stored(settings: dict[str, Any]) -> Any:
    """``settings`` as the store's JSON gives them back (tuples as lists, keys as strings)."""
    return json.loads(json.dumps(settings, sort_keys=True, default=str))


def _leaves(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts flattened to dotted names (``budget.epochs``); lists and scalars are leaves."""
    leaves: dict[str, Any] = {}
    for name, value in settings.items():
        if isinstance(value, dict) and value:
            leaves.update(_leaves(value, f"{prefix}{name}."))
        else:
            leaves[f"{prefix}{name}"] = value
    return leaves


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 3] + "..."
