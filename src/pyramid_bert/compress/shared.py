"""``compress --length-drop``: one LengthDrop model per group of candidates, trained once and run at each candidate's
schedule (no fine-tune per schedule; :mod:`pyramid_bert.length_drop`).

Candidates that differ only in their keep-ratio schedule (same method, ``m``, selection options and further run-config
options) form one :class:`SharedModel`: it is trained from the dense model with the layer-wise smallest of their
schedules as its own (stored) schedule and LengthDrop draws between that and keeping everything; each candidate is
then that model with its schedule set (:func:`pyramid_bert.patch.reschedule.set_keep_ratios`). With the default
candidates (one method and option set) that is one model for all of them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pyramid_bert.compress.candidates import Candidate
from pyramid_bert.errors import ConfigError
from pyramid_bert.length_drop import covering_bound, in_draws, smallest_schedule
from pyramid_bert.training.config import FinetuneConfig, resolve_ratios

#: Candidate fields that make its schedule; the rest (method, m, options) must be shared by a model's candidates.
SCHEDULE_FIELDS = ("schedule", "p", "prune_upto", "keep_ratios", "lengths")


@dataclass(frozen=True)
class SharedModel:
    """Candidates served by one LengthDrop model: each one's keep ratios, and the smallest schedule (trained)."""

    candidates: tuple[Candidate, ...]
    ratios: tuple[tuple[float, ...], ...]
    bound: float

    @property
    def smallest(self) -> list[float]:
        return smallest_schedule(self.ratios)

    @property
    def key(self) -> str:
        """A stable short id (the folder name of the model under the work folder)."""
        text = json.dumps({"candidates": [c.key for c in self.candidates], "bound": self.bound}, sort_keys=True)
        return "lengthdrop-" + hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        return f"LengthDrop model of {len(self.candidates)} schedule(s), bound {self.bound:g}"

    def finetune_fields(self) -> dict[str, Any]:
        """The FinetuneConfig fields of the shared model: the candidates' selection, the smallest schedule, LengthDrop."""
        fields = self.candidates[0].finetune_fields()
        return {**fields, "schedule": "ratio", "p": None, "prune_upto": None, "lengths": None,
                "keep_ratios": self.smallest, "length_drop": self.bound}  # fmt: skip


def plan_shared_models(candidates: Sequence[Candidate], num_layers: int, bound: float) -> list[SharedModel]:
    """Group ``candidates`` (in order of first appearance) into shared models for a model of ``num_layers`` encoder
    layers; ConfigError naming ``--length-drop`` for a fixed schedule, a candidate that sets ``length_drop`` itself,
    or a bound whose draws never reach some candidate's schedule."""
    groups: dict[str, list[tuple[Candidate, tuple[float, ...]]]] = {}
    for candidate in candidates:
        if "length_drop" in candidate.options:
            raise ConfigError(f"--length-drop: candidate {candidate.label} sets length_drop itself; drop one of them")
        fixed = candidate.lengths is not None or (candidate.keep_ratios is None and candidate.schedule != "ratio")
        ratios = None if fixed else resolve_ratios(FinetuneConfig(task="compress", **candidate.finetune_fields()), num_layers)
        if ratios is None:
            raise ConfigError(
                f"--length-drop: candidate {candidate.label} has a fixed schedule; one model serves keep-ratio schedules "
                "only (give the candidates keep_ratios, or p and prune_upto with schedule ratio)"
            )
        groups.setdefault(_group_key(candidate), []).append((candidate, tuple(ratios)))
    models = [SharedModel(tuple(c for c, _ in g), tuple(r for _, r in g), bound) for g in groups.values()]
    for model in models:
        _check_reached(model)
    return models


def _group_key(candidate: Candidate) -> str:
    """What the candidates of one shared model have in common: everything but the schedule."""
    data = {key: value for key, value in candidate.to_dict().items() if key not in SCHEDULE_FIELDS}
    return json.dumps(data, sort_keys=True)


def _check_reached(model: SharedModel) -> None:
    """Every candidate's schedule must be one the training draws can reach."""
    for candidate, ratios in zip(model.candidates, model.ratios, strict=True):
        if not in_draws(ratios, model.smallest, model.bound):
            needed = covering_bound(model.ratios)
            raise ConfigError(
                f"--length-drop {model.bound:g}: the training draws never reach candidate {candidate.label} (a layer "
                f"of it keeps less than {1 - model.bound:.0%} of the layer before); give --length-drop "
                f"{math.ceil(needed * 100 - 1e-6) / 100:g} or more (1 reaches every schedule)"
            )
