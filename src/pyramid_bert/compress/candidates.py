"""The configurations ``compress`` tries: a small list of :class:`Candidate` (method, m, schedule, variant options).

A candidate's schedule is either Eq. 5's ``(p, prune_upto)`` (adapted to the model's number of layers), explicit
``keep_ratios``, or explicit fixed ``lengths``; ``schedule`` says whether Eq. 5 gives keep ratios of each
example's real length (``ratio``, the default: they give the real speedups, see ``benchmarks/real_speedup.md``) or
token counts at N (``fixed``). ``options`` holds further run-config fields (the selection variants ``distance``,
``duplicity_attention``, ``merge``, or distillation ``distill_weight``, ...: whatever
:class:`~pyramid_bert.training.config.FinetuneConfig` takes), so a variant is one more entry of the list, from code or
from a JSON file (``--candidates FILE``), with no code change.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from pyramid_bert.errors import ConfigError
from pyramid_bert.spec import SelectionOptions, format_m
from pyramid_bert.training.config import FinetuneConfig

#: Run-config fields that compress sets itself (not candidate options).
OWNED_FIELDS = frozenset({"task", "model", "out", "epochs", "lr", "batch_size", "eval_batch_size", "max_train_examples",
                          "max_eval_examples", "seed", "device", "glue_dir", "pool_windows"})  # fmt: skip


@dataclass(frozen=True)
class Candidate:
    """One configuration to try (see the module docstring)."""

    method: str = "coreset"
    m: int | float | None = 1
    schedule: str = "ratio"
    p: float | None = None
    prune_upto: int | None = None
    keep_ratios: tuple[float, ...] | None = None
    lengths: tuple[int, ...] | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Candidate:
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ConfigError(f"--candidates: unknown key(s) {unknown}; valid keys: {', '.join(sorted(valid))}")
        values = dict(data)
        for name in ("keep_ratios", "lengths"):
            if values.get(name) is not None:
                values[name] = tuple(values[name])
        return cls(**values)

    @property
    def key(self) -> str:
        """A stable short id of the candidate (its folder name under the work folder)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        """A short human name: ``coreset m=1 ratio p=0.25 u=2``."""
        m = "" if self.method != "coreset" else f" m={format_m(self.m)}"
        if self.keep_ratios is not None:
            shape = "ratios " + " ".join(f"{r:g}" for r in self.keep_ratios)
        elif self.lengths is not None:
            shape = "lengths " + " ".join(map(str, self.lengths))
        else:
            shape = f"{self.schedule} p={self.p:g} u={self.prune_upto}"
        extra = "".join(f" {name}={value}" for name, value in sorted(self.options.items()))
        return f"{self.method}{m} {shape}{extra}"

    def finetune_fields(self) -> dict[str, Any]:
        """The :class:`~pyramid_bert.training.config.FinetuneConfig` fields of this candidate's selection."""
        has_eq5 = self.p is not None or self.prune_upto is not None
        if sum((has_eq5, self.keep_ratios is not None, self.lengths is not None)) != 1:
            raise ConfigError(f"--candidates: {self.to_dict()}: give one of p+prune_upto, keep_ratios or lengths")
        options = self._checked_options()
        selection = {name: options.pop(name) for name in SelectionOptions.names() if name in options}
        return {
            "method": self.method, "schedule": "ratio" if self.keep_ratios is not None else self.schedule,
            "p": self.p, "prune_upto": self.prune_upto, "lengths": None if self.lengths is None else list(self.lengths),
            "keep_ratios": None if self.keep_ratios is None else list(self.keep_ratios),
            "selection": SelectionOptions(**selection, m=self.m), **options,
        }  # fmt: skip

    def _checked_options(self) -> dict[str, Any]:
        """``options`` must be selection options (but ``m``, a key of its own) or further run-config fields
        (distillation, ...)."""

        config_fields = {f.name for f in fields(FinetuneConfig)} - {"selection"}
        valid = sorted((config_fields | set(SelectionOptions.names())) - OWNED_FIELDS - {f.name for f in fields(Candidate)})
        unknown = sorted(set(self.options) - set(valid))
        if unknown:
            raise ConfigError(f"--candidates: unknown option(s) {unknown}; valid options: {', '.join(valid)}")
        return dict(self.options)


#: The selection-quality study's best variant, "CS+": cosine distance, duplicity attention and merging (on
#: rt-polarity at ~2.9X, 3 seeds: +5.6 [+3.3, +8.0] accuracy points over plain core-set selection; see
#: benchmarks/selection_quality.md).
CS_PLUS_OPTIONS: dict[str, Any] = {"distance": "cosine", "duplicity_attention": True, "merge": True}

#: CS+ (coreset m = 1 with CS_PLUS_OPTIONS) with keep-ratio schedules from about 1.4X to 3X predicted on a 6-layer model.
DEFAULT_CANDIDATES: tuple[Candidate, ...] = (
    Candidate(p=0.7, prune_upto=1, options=dict(CS_PLUS_OPTIONS)),
    Candidate(p=0.5, prune_upto=1, options=dict(CS_PLUS_OPTIONS)),
    Candidate(p=0.33, prune_upto=2, options=dict(CS_PLUS_OPTIONS)),
    Candidate(p=0.25, prune_upto=2, options=dict(CS_PLUS_OPTIONS)),
)


def read_candidates(path: str | Path) -> list[Candidate]:
    """``--candidates FILE``: a JSON list of candidate objects (keys of :class:`Candidate`)."""
    file = Path(path)
    try:
        data = json.loads(file.read_text())
    except FileNotFoundError:
        raise ConfigError(f"--candidates: no such file: {file}") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"--candidates: {file} is not valid JSON ({error.msg}, line {error.lineno})") from None
    if not isinstance(data, list) or not data or not all(isinstance(item, dict) for item in data):
        raise ConfigError(f"--candidates: {file} must hold a non-empty JSON list of objects")
    return [Candidate.from_dict(item) for item in data]
