"""What fine-tuning, evaluation and scoring share: the run config, its checks, device, model loading and
selection set-up, and the seeded example subsets.

Below :mod:`pyramid_bert.training.loop`, :mod:`pyramid_bert.measure.evaluate` and :mod:`pyramid_bert.training.scoring` (none of them is
imported here), so those modules do not import each other.
"""

from __future__ import annotations

import json
import platform
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import transformers
from transformers import AutoConfig, AutoModelForSequenceClassification

from pyramid_bert import __version__, schedule
from pyramid_bert.data import MODEL_NAMES, TASK_NAMES
from pyramid_bert.errors import CheckpointError, ConfigError, DataError
from pyramid_bert.geometry import flops_geometry
from pyramid_bert.length_drop import check_length_drop
from pyramid_bert.patch.hf import pyramidize, unpyramidize
from pyramid_bert.spec import DENSE, METHODS, RATIO_METHODS, PyramidSettings, SelectionOptions, flag

if TYPE_CHECKING:
    from pyramid_bert.data import TaskData

#: ``FinetuneConfig.schedule``: fixed lengths per layer, or keep ratios of each example's real length.
SCHEDULE_KINDS = ("fixed", "ratio")
#: Training batches: padded to N, or to the batch's longest example.
TRAIN_BATCHING = ("dynamic", "padded")
DEFAULT_BATCH_SIZE = 48
TASK_BATCH_SIZES = {"mnli": 32, "mnli-mm": 32, "rte": 16}


@dataclass
class FinetuneConfig:
    """Everything that defines one fine-tuning run (JSON round-trip through ``to_dict`` / ``from_dict``).

    Schedule: give ``lengths`` (one kept length per encoder layer), or ``p`` and ``prune_upto`` (Eq. 5, with
    ``prune_upto`` a layer in 1..L), or ``pool_windows`` for ``method="average_pool"``; ``method="dense"`` takes
    none of them. ``selection``: how the method selects (``m``, ``position``, ``distance``, ``duplicity_attention``,
    ``merge``: :class:`~pyramid_bert.spec.SelectionOptions`; :meth:`from_dict` also takes them as top-level keys, as
    configs written before it hold them). Keep-ratio schedules (each example keeps ``ceil(r_j * its real length)``
    tokens): ``keep_ratios``, or ``schedule="ratio"`` with ``p`` and ``prune_upto`` (Eq. 5 as ratios).
    ``batching``: training batches ``dynamic`` (padded to their longest example; the default) or ``padded`` (to N).
    ``distill_weight`` > 0 adds a distillation loss to a fine-tuned ``teacher`` (default: the
    starting ``model``, i.e. the dense model of a warm start): ``(1 - w) * task loss + w * T^2 * KL(teacher || student)``
    at temperature ``distill_temperature`` (regression: mean squared error to the teacher's outputs).
    ``data``: for the user's own data files, what the run was trained on (file names, columns, N and the SHA-256 of
    the files' bytes: :func:`pyramid_bert.data.user_task.files_identity`), so that a finished or interrupted run is
    reused only on the same data; None for a named task. ``keep_thresholds`` (Attention-select's adaptive schedule)
    and ``soft_threshold_temperature`` (its soft mask in training): see :class:`~pyramid_bert.spec.PyramidSettings`.
    ``length_drop`` > 0 (keep-ratio schedules only) trains LengthDrop (:mod:`pyramid_bert.length_drop`): each step
    runs the stored schedule (the smallest) and one random schedule between it and keeping everything, ``length_drop``
    bounding how much one layer of a draw drops; evaluation and the saved model use the stored schedule.
    """

    task: str
    model: str = "minilm-l6"
    method: str = "coreset"
    lengths: list[int] | None = None
    p: float | None = None
    prune_upto: int | None = None
    pool_windows: list[int] | None = None
    selection: SelectionOptions = field(default_factory=SelectionOptions)
    epochs: float = 3
    lr: float = 2e-5
    batch_size: int | None = None
    eval_batch_size: int = 128
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    seed: int = 0
    device: str = "cpu"
    glue_dir: str | None = None
    out: str = ""
    keep_ratios: list[float] | None = None
    schedule: str = "fixed"
    batching: str = "dynamic"
    distill_weight: float = 0.0
    distill_temperature: float = 2.0
    teacher: str | None = None
    data: dict[str, Any] | None = None
    keep_thresholds: list[float] | None = None
    soft_threshold_temperature: float = 0.0
    length_drop: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        """Inverse of :meth:`to_dict`; selection options may also be top-level keys (older configs, flat callers)."""
        own = {f.name for f in fields(cls)} - {"selection"}
        unknown = sorted(set(data) - own - {"selection", *SelectionOptions.names()})
        if unknown:
            valid = sorted({*own, "selection", *SelectionOptions.names()})
            raise ConfigError(f"FinetuneConfig: unknown field(s) {unknown}; valid fields: {', '.join(valid)}")
        nested = data.get("selection") or {}
        nested = nested.to_dict() if isinstance(nested, SelectionOptions) else nested
        selection = SelectionOptions.from_dict({**nested, **{k: v for k, v in data.items() if k in SelectionOptions.names()}})
        return cls(**{k: v for k, v in data.items() if k in own}, selection=selection)

    def to_json_dict(self) -> dict[str, Any]:
        """``to_dict`` as it reads back from JSON (tuples become lists), for comparing saved configs."""
        return json.loads(json.dumps(self.to_dict()))

    def flat_dict(self) -> dict[str, Any]:
        """:meth:`to_json_dict` with the selection options as top-level keys (the columns of a trial's row)."""
        data = self.to_json_dict()
        return {**data.pop("selection"), **data}

    def same_as_saved(self, saved: dict[str, Any] | None) -> bool:
        """Whether a config saved by this or an earlier version (fields added later at their defaults) is this one."""
        try:
            return saved is not None and FinetuneConfig.from_dict(saved).to_json_dict() == self.to_json_dict()
        except (ConfigError, TypeError):
            return False

    def saved_difference(self, saved: dict[str, Any] | None) -> str | None:
        """None when the saved config is this one, else what the saved run is, in words ("a run of a different
        config", "a run on other data ..."), for a message that says why it is not reused."""
        if self.same_as_saved(saved):
            return None
        if saved is None or not self.same_as_saved({**saved, "data": self.data}):
            return "a run of a different config"
        if saved.get("data") is None:
            return ("a run on data files saved without their fingerprint (an older pyramid-bert), which cannot be "
                    "checked against the files given")  # fmt: skip
        return "a run on other data (the bytes of --train/--dev/--test, the columns or --max-length differ)"

    def resolved_teacher(self) -> str | None:
        """The distillation teacher (``teacher``, else the starting ``model``), or None without distillation."""
        return (self.teacher or self.model) if self.distill_weight > 0 else None

    def resolved_out(self) -> Path:
        """``out``, or ``runs/<task>-<method>-seed<seed>`` when ``out`` is empty."""
        return Path(self.out) if self.out else Path("runs") / f"{self.task}-{self.method}-seed{self.seed}"

    def resolved_batch_size(self) -> int:
        return self.batch_size if self.batch_size is not None else TASK_BATCH_SIZES.get(self.task, DEFAULT_BATCH_SIZE)


# ------------------------------------------------------------------------------------------ validation
def resolve_device(device: str) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"`` -> torch.device; a clear error when CUDA is absent."""

    if device != "cpu" and not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ConfigError(f"--device: unknown device {device!r}; valid: cpu, cuda, cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(
            f"--device: {device!r} asked for, but CUDA is not available on this machine; use --device cpu"
        )
    return torch.device(device)


def validate_config(config: FinetuneConfig, *, check_task_name: bool = True) -> None:
    """Check names and ranges that need neither the data nor the model (fail before any download).

    ``check_task_name=False`` skips the task-name check (a custom ``task_data`` is given instead).
    """

    if check_task_name and config.task not in TASK_NAMES:
        raise ConfigError(f"--task: unknown task {config.task!r}; valid tasks: {', '.join(TASK_NAMES)}")
    if config.model not in MODEL_NAMES and not Path(config.model).exists():
        raise ConfigError(
            f"--model: unknown model {config.model!r}; valid names: {', '.join(MODEL_NAMES)} or a local model folder"
        )
    methods = (DENSE, *METHODS)
    if config.method not in methods:
        raise ConfigError(f"--method: unknown method {config.method!r}; valid methods: {', '.join(methods)}")
    if not config.epochs > 0:
        raise ConfigError(f"--epochs: must be > 0, got {config.epochs}")
    if not config.lr > 0:
        raise ConfigError(f"--lr: must be > 0, got {config.lr}")
    for name in ("batch_size", "eval_batch_size", "max_train_examples", "max_eval_examples"):
        value = getattr(config, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{flag(name)}: must be an int >= 1, got {value!r}")
    check_p(config.p)
    config.selection.check(config.method)
    resolve_device(config.device)
    if config.batching not in TRAIN_BATCHING:
        raise ConfigError(f"--batching: training batches are one of {', '.join(TRAIN_BATCHING)}; got {config.batching!r}")
    if config.schedule not in SCHEDULE_KINDS:
        raise ConfigError(f"--schedule: must be one of {', '.join(SCHEDULE_KINDS)}; got {config.schedule!r}")
    check_distillation(config)
    check_length_drop_config(config)
    if config.method == DENSE:
        given = [n for n in ("lengths", "p", "prune_upto", "pool_windows", "keep_ratios", "keep_thresholds")
                 if getattr(config, n) is not None]  # fmt: skip
        if given:
            raise ConfigError(
                f"--method dense keeps every token and takes no schedule; remove {', '.join(map(flag, given))}"
            )


def check_distillation(config: FinetuneConfig) -> None:
    """--distill-weight in [0, 1], --distill-temperature > 0, and a teacher that exists."""

    weight, temperature = config.distill_weight, config.distill_temperature
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0.0 <= weight <= 1.0:
        raise ConfigError(f"--distill-weight: must be a number in [0, 1] (0: no distillation); got {weight!r}")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ConfigError(f"--distill-temperature: must be a number > 0; got {temperature!r}")
    teacher = config.resolved_teacher()
    if teacher is not None and teacher not in MODEL_NAMES and not Path(teacher).exists():
        raise ConfigError(f"--teacher: {teacher!r} is neither a model name ({', '.join(MODEL_NAMES)}) nor a folder")
    if config.teacher is not None and weight == 0:
        raise ConfigError("--teacher: given without --distill-weight (> 0); add a weight or drop the teacher")


def check_length_drop_config(config: FinetuneConfig) -> None:
    """--length-drop: a number in [0, 1]; above 0 only with a keep-ratio schedule (what a draw changes)."""
    if check_length_drop(config.length_drop) == 0:
        return
    if config.method not in RATIO_METHODS or (config.keep_ratios is None and config.schedule != "ratio"):
        raise ConfigError(
            "--length-drop: trains a keep-ratio schedule under random draws; give --keep-ratios, or --schedule ratio "
            f"with --p and --prune-upto, with a method of {', '.join(RATIO_METHODS)}; got --method {config.method}"
            + ("" if config.method not in RATIO_METHODS else " with a fixed schedule")
        )


def resolve_lengths(config: FinetuneConfig, n: int, num_layers: int) -> list[int] | None:
    """The per-layer kept lengths of ``config`` for input length ``n`` (None for dense)."""

    method = config.method
    if method == DENSE:
        return None
    if config.keep_thresholds is not None:  # adaptive counts: nominal lengths keep all (realised: measure.adaptive)
        check_thresholds(config, num_layers)
        return [n] * num_layers
    ratios = resolve_ratios(config, num_layers)
    if ratios is not None:  # nominal lengths: the widths for an input of n real tokens
        return schedule.ratio_lengths(n, ratios)
    if method == "average_pool":
        if config.pool_windows is None:
            raise ConfigError("--pool-windows: method average_pool needs one window per layer (1 = no pooling)")
        if len(config.pool_windows) != num_layers:
            raise ConfigError(
                f"--pool-windows: {len(config.pool_windows)} windows given for a model with {num_layers} layers"
            )
        return schedule.pool_lengths(n, config.pool_windows)
    if config.pool_windows is not None:
        raise ConfigError(f"--pool-windows: only for method average_pool, not {method}")
    if config.lengths is not None:
        if config.p is not None or config.prune_upto is not None:
            raise ConfigError("--lengths: give either --lengths or --p and --prune-upto, not both")
        if len(config.lengths) > num_layers:
            raise ConfigError(
                f"--lengths: the schedule has {len(config.lengths)} entries but the model has only {num_layers} layers"
            )
        lengths = _with_flag("--lengths", schedule.validate_lengths, list(config.lengths), num_layers, n)
        if method == "input_first_k" and len(set(lengths)) != 1:
            raise ConfigError(
                f"--lengths: input_first_k truncates the input once, so lengths must be constant: {lengths}"
            )
        return lengths
    check_p(config.p)
    if config.p is None:
        raise ConfigError(f"--method {method} needs a schedule: give --lengths, or --p and --prune-upto")
    if method == "input_first_k":
        keep = schedule.sequence_lengths(n, 1, config.p, 1)[0]
        return schedule.constant_lengths(keep, num_layers)
    if config.prune_upto is None:
        raise ConfigError("--prune-upto: needed with --p (Eq. 5); e.g. --p 0.25 --prune-upto 3")
    check_prune_upto(config.prune_upto, num_layers)
    return schedule.sequence_lengths(n, num_layers, config.p, config.prune_upto)


def resolve_ratios(config: FinetuneConfig, num_layers: int) -> list[float] | None:
    """The keep ratios of a keep-ratio schedule (None for fixed-length schedules and dense)."""

    if config.schedule not in SCHEDULE_KINDS:
        raise ConfigError(f"--schedule: must be one of {', '.join(SCHEDULE_KINDS)}; got {config.schedule!r}")
    if config.keep_ratios is None and config.schedule == "fixed":
        return None
    if config.method not in RATIO_METHODS:
        raise ConfigError(f"--keep-ratios / --schedule ratio: methods {', '.join(RATIO_METHODS)} only, not {config.method}")
    if config.lengths is not None:
        raise ConfigError("--lengths is a fixed schedule; for a keep-ratio schedule give --keep-ratios or --p/--prune-upto")
    if config.keep_ratios is not None:
        if config.p is not None or config.prune_upto is not None:
            raise ConfigError("give either --keep-ratios or --p and --prune-upto, not both")
        return schedule.validate_ratios(list(config.keep_ratios), num_layers)
    if config.p is None or config.prune_upto is None:
        raise ConfigError("--schedule ratio needs --p and --prune-upto (Eq. 5 as keep ratios), or give --keep-ratios")
    return schedule.sequence_ratios(num_layers, config.p, config.prune_upto)


def check_thresholds(config: FinetuneConfig, num_layers: int) -> None:
    """--keep-thresholds alone (no other schedule) and valid for the method; ConfigError naming the flag."""
    others = [name for name in ("lengths", "p", "prune_upto", "pool_windows", "keep_ratios") if getattr(config, name)]
    if others or config.schedule != "fixed":
        raise ConfigError(f"--keep-thresholds: the one schedule; remove {', '.join(map(flag, others or ['schedule']))}")
    settings = PyramidSettings(None, config.method, keep_thresholds=config.keep_thresholds,
                               soft_threshold_temperature=config.soft_threshold_temperature)  # fmt: skip
    _with_flag("--keep-thresholds", settings.validated, num_layers)


def check_prune_upto(prune_upto: object, num_layers: int) -> None:
    """Eq. 5's ``prune_upto`` is a layer index: an int in 1..L for a model of L encoder layers."""
    if isinstance(prune_upto, bool) or not isinstance(prune_upto, int) or not 1 <= prune_upto <= num_layers:
        raise ConfigError(
            f"--prune-upto: must be a layer in 1..{num_layers} (the model has {num_layers} encoder layers), "
            f"got {prune_upto!r}"
        )


def check_p(p: object) -> None:
    """Raise unless ``p`` (Eq. 5's pruning ratio) is None or a number in (0, 1]."""
    if p is not None and (isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 < p <= 1.0):
        raise ConfigError(f"--p: must be a pruning ratio in (0, 1], got {p!r}")


def _with_flag(flag_name: str, check: Any, *args: Any) -> Any:
    """``check(*args)``, its ConfigError message prefixed with ``flag_name``."""
    try:
        return check(*args)
    except ConfigError as error:
        raise ConfigError(f"{flag_name}: {error}") from None


def check_labels_fit(task: TaskData, num_labels: int, labels: torch.Tensor, where: str) -> None:
    """Raise unless the task's labels fit a head of ``num_labels`` outputs."""
    if task.num_labels != num_labels:
        raise ConfigError(
            f"labels: task {task.name} has {task.num_labels} label(s) but the model head in {where} has "
            f"{num_labels} output(s)"
        )
    if not task.is_regression and len(labels):
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= num_labels:
            raise DataError(
                f"labels: task {task.name} has label values in [{low}, {high}] but the head has "
                f"{num_labels} classes (valid 0..{num_labels - 1})"
            )


def load_base_model(source: str, task: TaskData) -> Any:
    """``AutoModelForSequenceClassification`` from ``source`` with a head sized for ``task``, dense (the token selection
    of a saved pyramid model is removed: :func:`apply_selection` applies the run's)."""
    try:
        model_config = AutoConfig.from_pretrained(source)
    except (OSError, ValueError) as error:
        raise CheckpointError(f"model {source}: cannot read its config ({error})") from error
    architectures = model_config.architectures or []
    has_head = any(name.endswith("ForSequenceClassification") for name in architectures)
    if has_head and model_config.num_labels != task.num_labels:
        raise ConfigError(
            f"labels: task {task.name} has {task.num_labels} label(s) but the classification head of "
            f"{source} has {model_config.num_labels}; start from a model without a head or a matching one"
        )
    problem_type = "regression" if task.is_regression else "single_label_classification"
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=task.num_labels, problem_type=problem_type, **label_maps(task)
        )
    except (OSError, ValueError) as error:
        raise CheckpointError(f"model {source}: cannot load ({error})") from error
    if hasattr(model.config, "pyramid"):  # a saved pyramid model loads pyramidized; the run applies its own selection
        unpyramidize(model)
    return model


def label_maps(task: TaskData) -> dict[str, dict]:
    """``id2label`` / ``label2id`` of a classification task's label names, for the model config (none for
    regression or unnamed labels), so that saved models (and pipelines) answer with the task's label names."""
    names = list(task.label_names)
    if task.is_regression or len(names) != task.num_labels:
        return {}
    return {"id2label": dict(enumerate(names)), "label2id": {name: i for i, name in enumerate(names)}}


def versions() -> dict[str, str]:
    return {
        "pyramid_bert": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def pyramid_summary(model_config: Any, n: int, lengths: list[int] | None, method: str, position: str) -> dict:
    """Cost-model figures for ``lengths`` on a model config: the predicted speedup and the attention-space
    reduction, both the paper's formula (``space_reduction``) and the exact one for where selection sits
    (``space_reduction_exact``, see :func:`pyramid_bert.schedule.attention_space_reduction`)."""

    if lengths is None:
        return {"predicted_speedup": 1.0, "space_reduction": 0.0, "space_reduction_exact": 0.0}
    truncate_input = method == "input_first_k"
    return {
        "predicted_speedup": schedule.predicted_speedup(
            n,
            lengths,
            **flops_geometry(model_config),
            position=position,
            truncate_input=truncate_input,
        ),
        "space_reduction": schedule.attention_space_reduction(n, lengths),
        "space_reduction_exact": schedule.attention_space_reduction(
            n, lengths, exact=True, position=position, truncate_input=truncate_input
        ),
    }


def apply_selection(model: Any, config: FinetuneConfig, lengths: list[int] | None) -> Any:
    """``pyramidize`` ``model`` in place per ``config`` (nothing for dense); ``lengths`` from :func:`resolve_lengths`."""

    if config.method == DENSE:
        return model
    if config.keep_thresholds is not None:
        settings = PyramidSettings(
            None, config.method, seed=config.seed, options=config.selection, keep_thresholds=config.keep_thresholds,
            soft_threshold_temperature=config.soft_threshold_temperature,
        )  # fmt: skip
        return pyramidize(model, settings=settings)
    ratios = resolve_ratios(config, model.config.num_hidden_layers)
    windows = list(config.pool_windows or []) if config.method == "average_pool" else None
    settings = PyramidSettings(
        lengths=None if ratios is not None or windows is not None else lengths, method=config.method,
        pool_windows=windows, seed=config.seed, keep_ratios=ratios, options=config.selection,
    )  # fmt: skip
    return pyramidize(model, settings=settings)


def subset_indices(count: int, limit: int | None, seed: int) -> torch.Tensor:
    """All of ``range(count)``, or a seeded random ``limit`` of them in increasing order."""

    if limit is None or limit >= count:
        return torch.arange(count)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(count, generator=generator)[:limit].sort().values


def take(encodings: dict[str, torch.Tensor], indices: torch.Tensor) -> dict[str, torch.Tensor]:
    return {key: value[indices] for key, value in encodings.items()}
