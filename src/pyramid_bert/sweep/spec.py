"""One trial of a sweep, as plain data: what to fine-tune and how, with a stable identity.

A :class:`TrialSpec` names a task, a model, a token-selection method and its schedule, ``m``, the
position of the selection, a seed and the training budget. Its :attr:`TrialSpec.key` is a hash of all of
that, so the results store can tell a finished trial from a new one across runs and machines.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from pyramid_bert.spec import DENSE, METHODS, PAPER_METHODS, SelectionOptions, parse_m

#: Selection methods of the paper plus "dense" (the unpruned baseline): what a sweep runs unless told otherwise.
SWEEP_METHODS = (*PAPER_METHODS, DENSE)
#: Every method a sweep runs when named (``--methods``, a preset's methods or method variants): also "energy".
SWEEP_ACCEPTED_METHODS = (*METHODS, DENSE)

# Fields that say where things go rather than what the trial is: never part of its identity.
_NON_IDENTITY_FIELDS = frozenset({"schedule", "device", "glue_dir", "variant"})
# Fields added after stores were written: left out of the identity at their default value, so the keys of
# trials in older stores (paper protocol, no start checkpoint) stay what they were.
_LATER_FIELD_DEFAULTS: dict[str, Any] = {
    "protocol": "paper", "init_from": None, "keep_ratios": None, "options": None, "data": None,
}  # fmt: skip
#: Selection options that were trial fields before ``options`` existed (they stay top-level: old keys hold).
_TOP_LEVEL_OPTIONS = ("m", "position")
#: FinetuneConfig fields a trial may set through ``options``: every other selection option (see
#: :class:`pyramid_bert.spec.SelectionOptions`; a new one reaches trials, their keys and their configs from there),
#: distillation and LengthDrop training (``length_drop``). Only the options a trial gives enter its identity, so older
#: keys hold.
OPTION_FIELDS = (
    *(name for name in SelectionOptions.names() if name not in _TOP_LEVEL_OPTIONS), "distill_weight", "distill_temperature",
    "length_drop",
)
#: How a pyramid configuration is fine-tuned: from the pretrained model (the paper's protocol) or from the
#: dense model of the same task and seed, fine-tuned once and shared ("warm").
PROTOCOLS = ("warm", "paper")


@dataclass(frozen=True)
class TrialSpec:
    """Everything that defines one trial.

    ``lengths`` are the kept sequence lengths per encoder layer (``len(lengths) == num_layers``) for
    coreset / attention / first_k / random / input_first_k (constant for the latter); ``pool_windows``
    one average-pool window per layer (1 = none) for average_pool; both None for dense.
    ``schedule`` is a human label ("p=0.25 u=3", "k=32", "w=2@3", "dense"), not part of the identity.
    """

    task: str
    model: str
    method: str
    schedule: str
    lengths: tuple[int, ...] | None = None
    p: float | None = None
    prune_upto: int | None = None
    pool_windows: tuple[int, ...] | None = None
    m: int | float | None = 1
    position: str = "middle"
    seed: int = 0
    epochs: float = 3.0
    lr: float = 2e-5
    batch_size: int | None = None
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    eval_batch_size: int = 128
    timing_repeats: int = 7
    time_train_step: bool = True
    device: str = "cpu"
    glue_dir: str | None = field(default=None, compare=False)
    #: "paper" (fine-tuned from the pretrained model) or "warm" (see :data:`PROTOCOLS`).
    protocol: str = "paper"
    #: Warm protocol: the key of the dense trial whose checkpoint this trial starts from (None: the model).
    init_from: str | None = None
    #: A keep-ratio schedule (one ratio per layer) instead of ``lengths``.
    keep_ratios: tuple[float, ...] | None = None
    #: Further FinetuneConfig fields (names in :data:`OPTION_FIELDS`) as sorted (name, value) pairs, or None.
    options: tuple[tuple[str, Any], ...] | None = None
    #: A report label for a named variant (e.g. "CS+"); not part of the identity.
    variant: str | None = None
    #: The user's data files instead of a named task, as sorted (name, value) pairs: DataFiles fields,
    #: ``max_length`` (N, fixed when the sweep is planned) and ``sha256`` (of the data read then); None: ``task``.
    data: tuple[tuple[str, Any], ...] | None = None

    def __post_init__(self) -> None:
        if self.options is not None:
            pairs = _sorted_pairs(self.options)
            unknown = sorted({name for name, _ in pairs} - set(OPTION_FIELDS))
            if unknown:
                raise ValueError(f"options: unknown field(s) {unknown}; valid: {', '.join(OPTION_FIELDS)}")
            object.__setattr__(self, "options", pairs or None)
        if self.keep_ratios is not None:
            object.__setattr__(self, "keep_ratios", tuple(float(r) for r in self.keep_ratios))
        if self.data is not None:
            object.__setattr__(self, "data", _sorted_pairs(self.data))

    def identity(self) -> dict[str, Any]:
        """The fields that define the trial, JSON-able, in a canonical form."""
        data = self.to_dict()
        return {
            name: value
            for name, value in data.items()
            if name not in _NON_IDENTITY_FIELDS
            and not (name in _LATER_FIELD_DEFAULTS and value == _LATER_FIELD_DEFAULTS[name])
        }

    @property
    def key(self) -> str:
        """SHA-256 hex digest of :meth:`identity` (canonical JSON)."""
        return _digest(self.identity())

    @property
    def config_key(self) -> str:
        """Identity without the seed: trials that differ only by seed share it."""
        identity = self.identity()
        identity.pop("seed")
        identity.pop("init_from", None)  # the start checkpoint is the dense trial of the same seed
        return _digest(identity)

    @property
    def schedule_key(self) -> str:
        """Identity without seed and ``m``: the coreset trials among which Coreset-select-opt chooses."""
        identity = self.identity()
        identity.pop("seed")
        identity.pop("init_from", None)
        identity.pop("m")
        return _digest(identity)

    def to_dict(self) -> dict[str, Any]:
        """All fields as JSON-able values (tuples become lists)."""
        data = dataclasses.asdict(self)
        for name in ("lengths", "pool_windows"):
            if data[name] is not None:
                data[name] = [int(v) for v in data[name]]
        if data["keep_ratios"] is not None:
            data["keep_ratios"] = [float(v) for v in data["keep_ratios"]]
        data["options"] = dict(self.options) if self.options else None
        data["m"] = parse_m(data["m"])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialSpec:
        """Inverse of :meth:`to_dict`; unknown keys are ignored."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        for name in ("lengths", "pool_windows"):
            if kwargs.get(name) is not None:
                kwargs[name] = tuple(int(v) for v in kwargs[name])
        if "m" in kwargs:
            kwargs["m"] = parse_m(kwargs["m"])
        return cls(**kwargs)

    def finetune_config(self, out: str, *, threads: int | None = None) -> dict[str, Any]:
        """The keyword arguments of :class:`pyramid_bert.training.config.FinetuneConfig` for this trial, plus
        ``"trial_options"`` (how :func:`pyramid_bert.sweep.trial.run_trial` measures speed).

        Returned as a plain dict so that it pickles and travels to Ray workers; ``out`` is the
        trial's checkpoint folder; ``threads`` the torch threads of the trial (None: torch's default).
        """
        method = self.method
        return {
            "task": self.task,
            "model": self.model,
            "method": method,
            "lengths": list(self.lengths) if self.lengths is not None else None,
            "p": None,
            "prune_upto": None,
            "pool_windows": list(self.pool_windows) if self.pool_windows is not None else None,
            "m": parse_m(self.m) if method == "coreset" else 1,
            "position": self.position,
            "epochs": self.epochs,
            "lr": self.lr,
            "batch_size": self.batch_size,
            "max_train_examples": self.max_train_examples,
            "max_eval_examples": self.max_eval_examples,
            "eval_batch_size": self.eval_batch_size,
            "seed": self.seed,
            "device": self.device,
            "glue_dir": self.glue_dir,
            "out": out,
            "keep_ratios": list(self.keep_ratios) if self.keep_ratios is not None else None,
            **dict(self.options or ()),
            "trial_options": {
                "timing_repeats": self.timing_repeats,
                "time_train_step": self.time_train_step,
                **({"threads": threads} if threads else {}),
                **({"data": dict(self.data)} if self.data else {}),
            },
        }


def with_data(trials: list[TrialSpec], data: dict[str, Any]) -> list[TrialSpec]:
    """``trials`` planned for a task name, moved onto the user's data files ``data`` (see :attr:`TrialSpec.data`).

    Their keys change with the data, so each warm trial's ``init_from`` is re-pointed at its dense trial's new key.
    """
    moved = {trial.key: dataclasses.replace(trial, data=data) for trial in trials}
    new_keys = {old: trial.key for old, trial in moved.items()}
    return [
        trial if trial.init_from is None else dataclasses.replace(trial, init_from=new_keys.get(trial.init_from, trial.init_from))
        for trial in moved.values()
    ]


def _sorted_pairs(value: dict[str, Any] | Any) -> tuple[tuple[str, Any], ...]:
    """A dict or (name, value) pairs (as JSON gives them back: lists) as sorted pairs, list values as tuples, so
    that the spec stays hashable and its key does not depend on how the pairs arrived."""
    pairs = dict(value.items() if isinstance(value, dict) else value)
    return tuple(sorted((name, tuple(v) if isinstance(v, list) else v) for name, v in pairs.items()))


def _digest(data: dict[str, Any]) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
