"""The one description of a token selection: its methods, its options, and the settings of a pyramidized model.

- :data:`METHODS` (and :data:`DENSE`, :data:`RATIO_METHODS`, :data:`SIZE_METHODS`): the methods and what each takes.
- :func:`parse_m`: the one reader of ``m``, k-Center-greedy-batch-m's centers per round.
- :class:`SelectionOptions`: how a method selects (``m``, ``position``, ``distance``, ``duplicity_attention``,
  ``merge``, ``energy_margin``). Each option is ONE dataclass field whose metadata (:func:`option`) gives its command-line help, its
  choices or parser, and the methods it applies to. From that declaration alone follow the command-line flags
  (:func:`add_option_arguments`, :func:`options_from_args`), the checks (:meth:`SelectionOptions.check`), the
  sweep's trial identity (:meth:`SelectionOptions.changed`) and the saved model config
  (:meth:`PyramidSettings.to_dict`): a new option is one new field here (and its use in the forward).
- :class:`PyramidSettings`: a selection made concrete for one model: method, schedule (fixed ``lengths``,
  ``keep_ratios``, Average-pool's ``pool_windows`` or Attention-select's adaptive ``keep_thresholds``),
  Random-select's ``seed``, the options, and ``soft_threshold_temperature`` (training with a soft mask).

Pure Python (no torch), so the command line can read it without importing the model stack.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from pyramid_bert.errors import ConfigError
from pyramid_bert.schedule import POSITIONS, validate_lengths, validate_ratios

DENSE = "dense"
#: The paper's token-selection methods: core-set and its five baselines.
PAPER_METHODS = ("coreset", "attention", "average_pool", "first_k", "input_first_k", "random")
#: Token-selection methods: the paper's and energy-aware merging (PiToMe's, :mod:`pyramid_bert.energy`).
METHODS = (*PAPER_METHODS, "energy")
#: Methods that take a keep-ratio schedule (Input-first-k truncates the input once; Average-pool uses windows).
RATIO_METHODS = ("coreset", "attention", "first_k", "random", "energy")
#: Methods that assign each dropped token to its nearest kept token (by ``distance``; ``merge`` averages them).
NEAREST_METHODS = ("coreset", "attention", "first_k", "random")
#: Methods whose kept tokens can carry the number of input tokens they stand for (duplicity attention): those that
#: assign dropped tokens to their nearest kept one, and energy, which merges along its own matching.
SIZE_METHODS = (*NEAREST_METHODS, "energy")
#: Energy's margin: a number, or PiToMe's depth schedule (see :func:`pyramid_bert.energy.layer_margin`).
AUTO_MARGIN = "auto"
#: Methods that take a keep-threshold schedule (adaptive counts): Attention-select, whose score has a natural scale.
THRESHOLD_METHODS = ("attention",)
#: Distances of k-center selection and of nearest-center assignment (see :mod:`pyramid_bert.selection`).
DISTANCES = ("euclidean", "cosine", "standardized")
#: How ``m`` = k - 1 (one round, Coreset-select-k-1) is spelled on the command line and in reports.
M_SPELLINGS_OF_K_MINUS_1 = ("k-1", "none")
_M_RULE = "an int >= 1, a fraction of k in (0, 1), or k-1 (one round)"


def parse_m(value: object) -> int | float | None:
    """``m`` in its canonical form from the command line, a config or code.

    ``"k-1"`` / ``"none"`` / None -> None (k - 1: one round); ``"3"`` / 3 / 3.0 -> 3 (centers per round);
    ``"0.2"`` / 0.2 -> 0.2 (a fraction of k). Anything else: ConfigError naming ``--m``.
    """
    if value is None or (isinstance(value, str) and value.strip().lower() in M_SPELLINGS_OF_K_MINUS_1):
        return None
    if isinstance(value, str):
        value = _number(value.strip())
    if isinstance(value, float) and value >= 1 and value.is_integer():
        value = int(value)
    valid = not isinstance(value, bool) and (
        (isinstance(value, int) and value >= 1) or (isinstance(value, float) and 0.0 < value < 1.0)
    )
    if not valid:
        raise ConfigError(f"--m: must be {_M_RULE}; got {value!r}")
    return value  # type: ignore[return-value]


def parse_m_list(text: str, flag_name: str = "--m") -> list[int | float | None]:
    """``"1,0.2,k-1"`` -> ``[1, 0.2, None]``: comma-separated values of ``m`` (at least one); ConfigError naming
    ``flag_name`` and the valid forms otherwise."""
    values = []
    for part in (piece.strip() for piece in text.split(",")):
        if part:
            try:
                values.append(parse_m(part))
            except ConfigError:
                raise ConfigError(f"{flag_name}: {part!r} is no m; valid: {_M_RULE}") from None
    if not values:
        raise ConfigError(f"{flag_name}: give at least one m ({_M_RULE}); got {text!r}")
    return values


def _number(text: str) -> int | float | str:
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_margin(value: object) -> float | str:
    """Energy's margin from the command line, a config or code: ``"auto"`` (PiToMe's depth schedule) or a number in
    [-1, 1] (a cosine similarity), as a float. Anything else: ConfigError naming ``--energy-margin``."""
    if isinstance(value, str) and value.strip().lower() == AUTO_MARGIN:
        return AUTO_MARGIN
    number = _number(value.strip()) if isinstance(value, str) else value
    if isinstance(number, bool) or not isinstance(number, (int, float)) or not -1.0 <= number <= 1.0:
        raise ConfigError(f"--energy-margin: must be auto or a cosine similarity in [-1, 1]; got {value!r}")
    return float(number)


def format_m(m: int | float | None) -> str:
    """``m`` as the command line spells it: ``1``, ``0.2``, ``k-1``."""
    return "k-1" if m is None else f"{m:g}"


def option(
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    parse: Any = None,
    example: str | None = None,
    methods: tuple[str, ...] = METHODS,
) -> dict:
    """The metadata of one :class:`SelectionOptions` field.

    Args:
        help: the command-line help.
        choices: the valid values of a string option.
        parse: text -> value for the command line and configs (raises ConfigError); booleans need none.
        example: with ``parse``, a valid non-default value as text (tests carry every option through the system).
        methods: the methods the option applies to; another method with a non-default value is refused.
    """
    return {"help": help, "choices": choices, "parse": parse, "example": example, "methods": methods}


@dataclass(frozen=True)
class SelectionOptions:
    """How a selection method selects; every field is an option (see the module docstring). Defaults: the paper's."""

    m: int | float | None = field(default=1, metadata=option(
        f"core-set centers per round: {_M_RULE}; default 1", parse=parse_m, example="3",
    ))  # fmt: skip
    position: str = field(default="middle", metadata=option(
        "where selection sits in each layer: middle (after attention, the paper's; default) or end (after the FFN)",
        choices=POSITIONS,
    ))  # fmt: skip
    distance: str = field(default="euclidean", metadata=option(
        "distance of core-set selection and of assigning dropped tokens to kept ones (default euclidean, the "
        "paper's; standardized divides each dimension by its spread over the example's tokens)",
        choices=DISTANCES, methods=NEAREST_METHODS,
    ))  # fmt: skip
    duplicity_attention: bool = field(default=False, metadata=option(
        "kept tokens count the dropped tokens nearest to them (energy: merged into them); attention adds "
        "log(count) to their logits (the paper's Remark 1)", methods=SIZE_METHODS,
    ))  # fmt: skip
    merge: bool = field(default=False, metadata=option(
        "each kept token becomes the count-weighted mean of its nearest tokens (CLS excepted; method energy always "
        "merges, along its own matching)", methods=NEAREST_METHODS,
    ))  # fmt: skip
    energy_margin: float | str = field(default=AUTO_MARGIN, metadata=option(
        "method energy: cosine similarity above which a neighbour counts fully in a token's energy; auto (default): "
        "PiToMe's 0.9 - 0.9 * layer / layers", parse=parse_margin, example="0.5", methods=("energy",),
    ))  # fmt: skip

    def __post_init__(self) -> None:
        for option in dataclasses.fields(self):  # canonical values ("k-1" -> None, 3.0 -> 3), or a ConfigError
            object.__setattr__(self, option.name, _parsed(option, getattr(self, option.name)))

    @property
    def tracks_sizes(self) -> bool:
        """Whether these options make kept tokens carry the number of input tokens they stand for (see
        :mod:`pyramid_bert.duplicity`); method energy always does (:attr:`PyramidSettings.tracks_sizes`)."""
        return self.duplicity_attention or self.merge

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SelectionOptions:
        """The options among ``data``'s keys (other keys are ignored), parsed and type-checked."""
        return cls(**{name: data[name] for name in cls.names() if name in data})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def changed(self) -> dict[str, Any]:
        """The options that differ from their defaults (what a trial's identity and a label need to say)."""
        return {name: value for name, value in self.to_dict().items() if value != _default(name)}

    def check(self, method: str) -> SelectionOptions:
        """Raise ConfigError (naming the flag and the valid values) unless every option is valid for ``method``."""
        for option in dataclasses.fields(self):
            methods = option.metadata["methods"]
            if getattr(self, option.name) != _default(option.name) and method not in methods:
                raise ConfigError(f"{flag(option.name)}: for methods {', '.join(methods)} only, not {method}")
        return self


def _default(name: str) -> Any:
    return SelectionOptions.__dataclass_fields__[name].default


def _parsed(option: dataclasses.Field, value: Any) -> Any:
    """``value`` of ``option`` checked against its declaration (and parsed from text where it has a parser)."""
    meta, name = option.metadata, flag(option.name)
    if meta["parse"] is not None:
        return meta["parse"](value)
    if meta["choices"] is not None:
        if value not in meta["choices"]:
            raise ConfigError(f"{name}: must be one of {', '.join(meta['choices'])}; got {value!r}")
        return value
    if not isinstance(value, bool):
        raise ConfigError(f"{name}: must be true or false; got {value!r}")
    return value


def flag(name: str) -> str:
    """The command-line flag of a config field: ``prune_upto`` -> ``--prune-upto``."""
    return "--" + name.replace("_", "-")


def add_option_arguments(parser: argparse.ArgumentParser, *, skip: tuple[str, ...] = ()) -> None:
    """One flag per :class:`SelectionOptions` field (``--m``, ``--position``, ``--distance``, ...) but ``skip``."""
    for option in dataclasses.fields(SelectionOptions):
        if option.name in skip:
            continue
        meta = option.metadata
        if meta["parse"] is None and meta["choices"] is None:
            parser.add_argument(flag(option.name), action="store_true", help=meta["help"])
            continue
        kind = _argparse_type(meta["parse"]) if meta["parse"] is not None else None
        parser.add_argument(
            flag(option.name), default=option.default, type=kind, choices=meta["choices"], help=meta["help"]
        )


def _argparse_type(parse: Any) -> Any:
    """``parse`` as an argparse ``type=``: its ConfigError becomes argparse's one-line usage error."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(str(error).split(": ", 1)[-1]) from None

    convert.__name__ = parse.__name__
    return convert


def options_from_args(args: argparse.Namespace, *, skip: tuple[str, ...] = ()) -> SelectionOptions:
    """The :class:`SelectionOptions` of parsed arguments (options without a flag, or in ``skip``, keep their defaults)."""
    names = [name for name in SelectionOptions.names() if name not in skip and hasattr(args, name)]
    return SelectionOptions.from_dict({name: getattr(args, name) for name in names})


@dataclass(frozen=True)
class PyramidSettings:
    """What a pyramidized model does; stored (flat, see :meth:`to_dict`) as ``model.config.pyramid``.

    Exactly one schedule: ``lengths`` (tokens kept after each layer), ``keep_ratios`` (each example keeps
    ``ceil(r_j * its real tokens)``), ``pool_windows`` (Average-pool) or ``keep_thresholds`` (Attention-select:
    layer j keeps CLS and each real token whose attention received, relative to uniform attention, is at least
    ``t_j``; 0 keeps all; see :mod:`pyramid_bert.thresholds`). ``soft_threshold_temperature`` T > 0 (with
    ``keep_thresholds``): in training mode the layers keep every token and weigh it by ``sigmoid((s - t_j) / T)``
    (LTP's soft mask); evaluation prunes hard. :meth:`validated` checks them against a model's number of layers
    (:func:`pyramid_bert.pyramidize` does).
    """

    lengths: list[int] | None
    method: str = "coreset"
    pool_windows: list[int] | None = None
    seed: int = 0
    keep_ratios: list[float] | None = None
    options: SelectionOptions = field(default_factory=SelectionOptions)
    version: int = 1
    keep_thresholds: list[float] | None = None
    soft_threshold_temperature: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """Flat JSON-able dict: the schedule fields and every option (the format of ``config.json``)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "options"}
        return {**data, **self.options.to_dict()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PyramidSettings:
        """Inverse of :meth:`to_dict`; options missing from older configs take their defaults."""
        known = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data and f.name != "options"}
        return cls(**known, options=SelectionOptions.from_dict(data))

    @property
    def tracks_sizes(self) -> bool:
        """Whether kept tokens carry the number of input tokens they stand for: with the size options, and always
        for energy (its merges are size-weighted means, as ToMe's)."""
        return self.options.tracks_sizes or self.method == "energy"

    def validated(self, num_layers: int) -> PyramidSettings:
        """These settings checked for a model with ``num_layers`` encoder layers (ConfigError names what is wrong),
        with the schedule in its canonical form."""
        if self.method not in METHODS:
            raise ConfigError(f"method must be one of {', '.join(METHODS)}; got {self.method!r}")
        self.options.check(self.method)
        thresholds = _checked_thresholds(num_layers, self.method, self.keep_thresholds, self.soft_threshold_temperature)
        if thresholds is not None:
            if self.lengths is not None or self.pool_windows is not None or self.keep_ratios is not None:
                raise ConfigError("keep_thresholds: give lengths, keep_ratios or keep_thresholds, not two of them")
            schedule = {"lengths": None, "pool_windows": None, "keep_ratios": None, "keep_thresholds": thresholds}
        else:
            schedule = _checked_schedule(num_layers, self.method, self.lengths, self.pool_windows, self.keep_ratios)
        temperature = float(self.soft_threshold_temperature)
        return dataclasses.replace(self, **schedule, seed=int(self.seed), soft_threshold_temperature=temperature)


def _checked_thresholds(num_layers: int, method: str, thresholds: Any, temperature: Any) -> list[float] | None:
    """The keep thresholds, validated (one finite number >= 0 per layer, for :data:`THRESHOLD_METHODS`), and the
    soft mask's temperature (a finite number >= 0; > 0 only with thresholds). None when no thresholds are given."""
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature < math.inf:
        raise ConfigError(f"soft_threshold_temperature: must be a finite number >= 0 (0: off); got {temperature!r}")
    if thresholds is None:
        if temperature > 0:
            raise ConfigError("soft_threshold_temperature: needs keep_thresholds (the soft mask is of thresholds)")
        return None
    if method not in THRESHOLD_METHODS:
        raise ConfigError(f"keep_thresholds: for methods {', '.join(THRESHOLD_METHODS)} only, not {method!r}")
    values = list(thresholds)
    valid = [not isinstance(t, bool) and isinstance(t, (int, float)) and 0 <= t < math.inf for t in values]
    if len(values) != num_layers or not all(valid):
        raise ConfigError(
            f"keep_thresholds: must be {num_layers} finite numbers >= 0 (one per layer, 0 = keep all); got {values}"
        )
    return [float(t) for t in values]


def _checked_schedule(
    num_layers: int, method: str, lengths: Any, pool_windows: Any, keep_ratios: Any
) -> dict[str, Any]:
    """The one schedule of a method, validated: ``{"lengths": ..., "pool_windows": ..., "keep_ratios": ...}``."""
    if keep_ratios is not None:
        if method not in RATIO_METHODS:
            raise ConfigError(f"keep_ratios work with methods {', '.join(RATIO_METHODS)}, not {method!r}")
        if lengths is not None or pool_windows is not None:
            raise ConfigError("give lengths (or pool_windows) or keep_ratios, not both")
        return {"lengths": None, "pool_windows": None, "keep_ratios": validate_ratios(keep_ratios, num_layers)}
    if method == "average_pool":
        if pool_windows is None or lengths is not None:
            raise ConfigError(
                "method 'average_pool' takes pool_windows (one window per layer, 1 = none) and no lengths"
            )
        windows = list(pool_windows)
        if len(windows) != num_layers or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in windows):
            raise ConfigError(f"pool_windows must be {num_layers} ints >= 1 (one per layer, 1 = none); got {windows}")
        return {"lengths": None, "pool_windows": windows, "keep_ratios": None}
    if pool_windows is not None:
        raise ConfigError(f"pool_windows applies only to method 'average_pool', not {method!r}")
    if lengths is None:
        raise ConfigError(f"method {method!r} needs lengths: one kept length per encoder layer ({num_layers} layers)")
    lengths = validate_lengths(lengths, num_layers)
    if method == "input_first_k" and len(set(lengths)) != 1:
        raise ConfigError(f"method 'input_first_k' truncates the input once: lengths must be constant, got {lengths}")
    return {"lengths": lengths, "pool_windows": None, "keep_ratios": None}
