"""Fine-tune a (pyramid) BERT-family classifier on one task: a small, deterministic, resumable loop.

Defaults are the paper's (Appendix D): learning rate 2e-5, 3 epochs, train batch 48 (32 for MNLI, 16 for
RTE), inference batch 128, AdamW with linear warm-up (10% of the steps; the paper does not say) and linear
decay to 0, gradient clipping at norm 1.0.

Determinism on CPU: the classifier head is initialised after ``torch.manual_seed(seed)``, the example order
of epoch e is a permutation drawn from a generator seeded with ``(seed, e)``, and the torch RNG (dropout) is
saved with the resume state, so a run interrupted and resumed gives the same weights as an uninterrupted one.

Resume: while training, the state (weights, AdamW moments, LR schedule, RNG, step) is saved atomically to
``<out>.partial`` every few minutes and at every epoch end; running the same config again continues from it.
The finished checkpoint appears at ``<out>`` in one rename (see :mod:`pyramid_bert.checkpoint`).
"""

from __future__ import annotations

import json
import math
import platform
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyramid_bert.errors import CheckpointError, ConfigError, DataError

if TYPE_CHECKING:
    import torch

    from pyramid_bert.data import TaskData

DENSE = "dense"
DEFAULT_BATCH_SIZE = 48
TASK_BATCH_SIZES = {"mnli": 32, "mnli-mm": 32, "rte": 16}
WARMUP_RATIO = 0.1
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 1.0
CHECKPOINT_FORMAT = "pyramid-bert-checkpoint/1"


@dataclass
class FinetuneConfig:
    """Everything that defines one fine-tuning run (JSON round-trip through ``to_dict`` / ``from_dict``).

    Schedule: give ``lengths`` (one kept length per encoder layer), or ``p`` and ``prune_upto`` (Eq. 5), or
    ``pool_windows`` for ``method="average_pool"``; ``method="dense"`` takes none of them.
    """

    task: str
    model: str = "minilm-l6"
    method: str = "coreset"
    lengths: list[int] | None = None
    p: float | None = None
    prune_upto: int | None = None
    pool_windows: list[int] | None = None
    m: int | float | None = 1
    position: str = "middle"
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FinetuneConfig:
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ConfigError(f"FinetuneConfig: unknown field(s) {unknown}; valid fields: {', '.join(sorted(valid))}")
        return cls(**data)

    def to_json_dict(self) -> dict[str, Any]:
        """``to_dict`` as it reads back from JSON (tuples become lists), for comparing saved configs."""
        return json.loads(json.dumps(self.to_dict()))

    def resolved_out(self) -> Path:
        """``out``, or ``runs/<task>-<method>-seed<seed>`` when ``out`` is empty."""
        return Path(self.out) if self.out else Path("runs") / f"{self.task}-{self.method}-seed{self.seed}"

    def resolved_batch_size(self) -> int:
        return self.batch_size if self.batch_size is not None else TASK_BATCH_SIZES.get(self.task, DEFAULT_BATCH_SIZE)


# ------------------------------------------------------------------------------------------ validation
def resolve_device(device: str) -> torch.device:
    """``"cpu"``, ``"cuda"`` or ``"cuda:N"`` -> torch.device; a clear error when CUDA is absent."""
    import torch

    if device != "cpu" and not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ConfigError(f"device: unknown device {device!r}; valid: cpu, cuda, cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device: {device!r} asked for, but CUDA is not available on this machine; use --device cpu")
    return torch.device(device)


def validate_config(config: FinetuneConfig, *, check_task_name: bool = True) -> None:
    """Check names and ranges that need neither the data nor the model (fail before any download).

    ``check_task_name=False`` skips the task-name check (a custom ``task_data`` is given instead).
    """
    from pyramid_bert import METHODS
    from pyramid_bert.data import MODEL_NAMES, TASK_NAMES
    from pyramid_bert.schedule import POSITIONS

    if check_task_name and config.task not in TASK_NAMES:
        raise ConfigError(f"task: unknown task {config.task!r}; valid tasks: {', '.join(TASK_NAMES)}")
    if config.model not in MODEL_NAMES and not Path(config.model).exists():
        raise ConfigError(
            f"model: unknown model {config.model!r}; valid names: {', '.join(MODEL_NAMES)} or a local model folder"
        )
    methods = (DENSE, *METHODS)
    if config.method not in methods:
        raise ConfigError(f"method: unknown method {config.method!r}; valid methods: {', '.join(methods)}")
    if config.position not in POSITIONS:
        raise ConfigError(f"position: must be one of {', '.join(POSITIONS)}, got {config.position!r}")
    if not config.epochs > 0:
        raise ConfigError(f"epochs: must be > 0, got {config.epochs}")
    if not config.lr > 0:
        raise ConfigError(f"lr: must be > 0, got {config.lr}")
    for name in ("batch_size", "eval_batch_size", "max_train_examples", "max_eval_examples"):
        value = getattr(config, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{name}: must be an int >= 1, got {value!r}")
    resolve_device(config.device)
    if config.method == DENSE:
        given = [n for n in ("lengths", "p", "prune_upto", "pool_windows") if getattr(config, n) is not None]
        if given:
            raise ConfigError(f"method dense keeps every token and takes no schedule; remove {', '.join(given)}")


def resolve_lengths(config: FinetuneConfig, n: int, num_layers: int) -> list[int] | None:
    """The per-layer kept lengths of ``config`` for input length ``n`` (None for dense)."""
    from pyramid_bert import schedule

    method = config.method
    if method == DENSE:
        return None
    if method == "average_pool":
        if config.pool_windows is None:
            raise ConfigError("pool_windows: method average_pool needs one window per layer (1 = no pooling)")
        if len(config.pool_windows) != num_layers:
            raise ConfigError(
                f"pool_windows: {len(config.pool_windows)} windows given for a model with {num_layers} layers"
            )
        return schedule.pool_lengths(n, config.pool_windows)
    if config.pool_windows is not None:
        raise ConfigError(f"pool_windows: only for method average_pool, not {method}")
    if config.lengths is not None:
        if config.p is not None or config.prune_upto is not None:
            raise ConfigError("give either lengths or p and prune_upto, not both")
        if len(config.lengths) > num_layers:
            raise ConfigError(
                f"lengths: the schedule has {len(config.lengths)} entries but the model has only {num_layers} layers"
            )
        lengths = schedule.validate_lengths(list(config.lengths), num_layers, n)
        if method == "input_first_k" and len(set(lengths)) != 1:
            raise ConfigError(
                f"lengths: input_first_k truncates the input once, so lengths must be constant: {lengths}"
            )
        return lengths
    if config.p is None:
        raise ConfigError(f"method {method} needs a schedule: give lengths, or p and prune_upto")
    if method == "input_first_k":
        keep = schedule.sequence_lengths(n, 1, config.p, 1)[0]
        return schedule.constant_lengths(keep, num_layers)
    if config.prune_upto is None:
        raise ConfigError("prune_upto: needed with p (Eq. 5); e.g. --p 0.25 --prune-upto 3")
    return schedule.sequence_lengths(n, num_layers, config.p, config.prune_upto)


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
    """``AutoModelForSequenceClassification`` from ``source`` with a head sized for ``task``."""
    from transformers import AutoConfig, AutoModelForSequenceClassification

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
        return AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=task.num_labels, problem_type=problem_type
        )
    except (OSError, ValueError) as error:
        raise CheckpointError(f"model {source}: cannot load ({error})") from error


def versions() -> dict[str, str]:
    import torch
    import transformers

    from pyramid_bert import __version__

    return {
        "pyramid_bert": __version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def pyramid_summary(model_config: Any, n: int, lengths: list[int] | None, method: str, position: str) -> dict:
    """Cost-model figures for ``lengths`` on a model config: predicted speedup and attention-space reduction."""
    from pyramid_bert import schedule

    if lengths is None:
        return {"predicted_speedup": 1.0, "space_reduction": 0.0}
    return {
        "predicted_speedup": schedule.predicted_speedup(
            n,
            lengths,
            hidden=model_config.hidden_size,
            intermediate=model_config.intermediate_size,
            num_layers=model_config.num_hidden_layers,
            position=position,
            truncate_input=method == "input_first_k",
        ),
        "space_reduction": schedule.attention_space_reduction(n, lengths),
    }


def apply_selection(model: Any, config: FinetuneConfig, lengths: list[int] | None) -> Any:
    """``pyramidize`` ``model`` in place per ``config`` (nothing for dense)."""
    from pyramid_bert import pyramidize

    if config.method == DENSE:
        return model
    if config.method == "average_pool":
        return pyramidize(
            model, None, method="average_pool", pool_windows=list(config.pool_windows or []),
            position=config.position, seed=config.seed,
        )  # fmt: skip
    return pyramidize(model, lengths, method=config.method, m=config.m, position=config.position, seed=config.seed)


def subset_indices(count: int, limit: int | None, seed: int) -> torch.Tensor:
    """All of ``range(count)``, or a seeded random ``limit`` of them in increasing order."""
    import torch

    if limit is None or limit >= count:
        return torch.arange(count)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(count, generator=generator)[:limit].sort().values


def take(encodings: dict[str, torch.Tensor], indices: torch.Tensor) -> dict[str, torch.Tensor]:
    return {key: value[indices] for key, value in encodings.items()}


def epoch_order(num_examples: int, seed: int, epoch: int) -> torch.Tensor:
    """The example order of ``epoch``: a permutation that depends only on (seed, epoch)."""
    import torch

    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_examples, generator=generator)


def build_optimizer(model: Any, lr: float, total_steps: int) -> tuple[Any, Any, int]:
    """AdamW (no weight decay on biases and LayerNorm) + linear warm-up and decay; returns (opt, sched, warmup)."""
    import torch
    from transformers import get_linear_schedule_with_warmup

    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if name.endswith("bias") or "LayerNorm" in name else decay).append(parameter)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
    )
    warmup_steps = int(WARMUP_RATIO * total_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps, total_steps)
    return optimizer, scheduler, warmup_steps


# ----------------------------------------------------------------------------------------------- finetune
def finetune(
    config: FinetuneConfig,
    *,
    task_data: TaskData | None = None,
    progress: bool = True,
    save_every_seconds: float = 300.0,
    save_every_steps: int | None = None,
    step_callback: Callable[[int], None] | None = None,
    evaluate_dev: bool = True,
) -> Path:
    """Fine-tune per ``config`` and write the checkpoint folder ``config.out``; returns its path.

    Args:
        config: the run; see :class:`FinetuneConfig`.
        task_data: use this task instead of ``pyramid_bert.data.load_task(config.task)`` (tests, custom data).
        progress: show a tqdm bar (steps, loss, ETA).
        save_every_seconds / save_every_steps: how often the resume state is written (also at epoch ends).
        step_callback: called with the number of finished steps after each step (and its state save).
        evaluate_dev: score the dev split at the end and store it in ``run.json["metrics"]["dev"]``.

    If ``config.out`` already holds a finished run of the same config it is returned as is; a different
    finished run there is an error (choose another ``out``). Resumes from ``<out>.partial`` when present.
    """
    import torch
    from tqdm.auto import tqdm

    from pyramid_bert import checkpoint, evaluate
    from pyramid_bert.data import load_task, resolve_model, tokenize_split

    validate_config(config, check_task_name=task_data is None)
    out = config.resolved_out()
    finished = _finished_run(out, config)
    if finished is not None:
        return finished
    resume_dir = out.with_name(out.name + ".partial")
    device = resolve_device(config.device)

    task = task_data if task_data is not None else load_task(config.task, glue_dir=config.glue_dir, seed=config.seed)
    source = resolve_model(config.model)
    torch.manual_seed(config.seed)
    model = load_base_model(source, task)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    n = task.max_length
    num_layers = model.config.num_hidden_layers
    lengths = resolve_lengths(config, n, num_layers)
    apply_selection(model, config, lengths)
    model.to(device)

    train = tokenize_split(tokenizer, task, "train")
    check_labels_fit(task, model.config.num_labels, train["labels"], source)
    train = take(train, subset_indices(len(train["labels"]), config.max_train_examples, config.seed))
    num_examples = len(train["labels"])
    if num_examples == 0:
        raise DataError(f"task {task.name}: the train split is empty")
    batch_size = config.resolved_batch_size()
    steps_per_epoch = math.ceil(num_examples / batch_size)
    total_steps = max(1, math.ceil(config.epochs * steps_per_epoch))
    optimizer, scheduler, warmup_steps = build_optimizer(model, config.lr, total_steps)

    state: dict[str, Any] = {"step": 0, "losses": [], "step_seconds": [], "train_seconds": 0.0, "resumed_at": []}
    resume_from = checkpoint.existing_dir(resume_dir)
    if resume_from is not None:
        saved = checkpoint.read_train_state(resume_from, model, optimizer, scheduler)
        if saved.get("config") != config.to_json_dict():
            raise ConfigError(
                f"out: {resume_dir} holds an interrupted run of a different config; delete it or choose another --out"
            )
        state = {key: saved[key] for key in state}
        state["resumed_at"].append(state["step"])

    model.train()
    bar = tqdm(
        total=total_steps, initial=state["step"], desc=f"finetune {task.name} {config.method}", unit="step",
        disable=not progress, dynamic_ncols=True,
    )  # fmt: skip
    last_save = time.monotonic()
    try:
        while state["step"] < total_steps:
            step = state["step"]
            epoch, position = divmod(step, steps_per_epoch)
            order = epoch_order(num_examples, config.seed, epoch)
            batch_indices = order[position * batch_size : (position + 1) * batch_size]
            batch = {key: value[batch_indices].to(device) for key, value in train.items()}
            started = time.perf_counter()
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_value = float(loss.detach())
            elapsed = time.perf_counter() - started
            state["step"] = step + 1
            state["losses"].append(loss_value)
            state["step_seconds"].append(elapsed)
            state["train_seconds"] += elapsed
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}", epoch=epoch + 1)
            epoch_done = state["step"] % steps_per_epoch == 0
            due = (save_every_steps is not None and state["step"] % save_every_steps == 0) or (
                time.monotonic() - last_save >= save_every_seconds
            )
            if state["step"] < total_steps and (epoch_done or due):
                checkpoint.write_train_state(
                    resume_dir, model, optimizer, scheduler, {**state, "config": config.to_dict()}
                )
                last_save = time.monotonic()
            if step_callback is not None:
                step_callback(state["step"])
    finally:
        bar.close()

    model.eval()
    metrics: dict[str, Any] = {}
    if evaluate_dev:
        metrics["dev"] = evaluate.score_split(
            model, tokenizer, task, "dev", batch_size=config.eval_batch_size,
            max_examples=config.max_eval_examples, device=device, seed=config.seed,
        )  # fmt: skip
    step_seconds = state["step_seconds"][1:] or state["step_seconds"]
    run_info = {
        "format": CHECKPOINT_FORMAT,
        "config": config.to_dict(),
        "task": {
            "name": task.name,
            "metric": task.metric,
            "is_regression": task.is_regression,
            "num_labels": task.num_labels,
            "label_names": list(task.label_names),
            "max_length": n,
        },
        "model_source": str(source),
        "model_shape": {
            "num_layers": num_layers,
            "hidden": model.config.hidden_size,
            "intermediate": model.config.intermediate_size,
            "heads": model.config.num_attention_heads,
        },
        "lengths": lengths,
        "pyramid": getattr(model.config, "pyramid", None),
        **pyramid_summary(model.config, n, lengths, config.method, config.position),
        "train": {
            "examples": num_examples,
            "batch_size": batch_size,
            "steps": total_steps,
            "steps_per_epoch": steps_per_epoch,
            "warmup_steps": warmup_steps,
            "weight_decay": WEIGHT_DECAY,
            "max_grad_norm": MAX_GRAD_NORM,
            "seconds": state["train_seconds"],
            "step_seconds_median": statistics.median(step_seconds),
            "loss_first": state["losses"][0],
            "loss_last_mean10": statistics.fmean(state["losses"][-10:]),
            "resumed_at_steps": state["resumed_at"],
            "threads": torch.get_num_threads(),
        },
        "metrics": metrics,
        "device": str(device),
        "versions": versions(),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    model.to("cpu")
    checkpoint.write_checkpoint(out, model, tokenizer, run_info)
    for leftover in (resume_dir, resume_dir.with_name(resume_dir.name + ".old")):
        if leftover.exists():
            shutil.rmtree(leftover)
    return out


def _finished_run(out: Path, config: FinetuneConfig) -> Path | None:
    """``out`` if it already holds a finished run of ``config``; error if it holds something else."""
    from pyramid_bert import checkpoint

    if not out.exists():
        return None
    if not (out / checkpoint.RUN_FILE).is_file():
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
            return None
        raise ConfigError(f"out: {out} exists and is not a pyramid-bert checkpoint; choose another --out")
    if checkpoint.read_run_info(out).get("config") != config.to_json_dict():
        raise ConfigError(f"out: {out} already holds a run of a different config; choose another --out or delete it")
    return out
