"""Fine-tune a (pyramid) BERT-family classifier on one task: a small, deterministic, resumable loop.

Defaults are the paper's (Appendix D): learning rate 2e-5, 3 epochs, train batch 48 (32 for MNLI, 16 for
RTE), inference batch 128, AdamW with linear warm-up (10% of the steps; the paper does not say) and linear
decay to 0, gradient clipping at norm 1.0.

Determinism on CPU: the classifier head is initialised after ``torch.manual_seed(seed)``, the example order
of epoch e is a permutation drawn from a generator seeded with ``(seed, e)``, and every random state a step
draws from (torch's CPU RNG for dropout, the CUDA RNGs when in use, Random-select's generators) is saved with the
resume state, so a run interrupted and resumed gives the same weights as an uninterrupted one.

One run at a time per ``out``: the run holds a lock (``.<out>.lock`` beside it) and a second run on the same
``out`` stops with a clear message; temporary folders left by a killed write (``.<out>.tmp-PID``) are removed.

Resume: while training, the state (weights, AdamW moments, LR schedule, RNG, step) is saved atomically to
``<out>.partial`` every few minutes and at every epoch end; running the same config again continues from it.
The finished checkpoint appears at ``<out>`` in one rename (see :mod:`pyramid_bert.training.checkpoint`).

The run config and what fine-tuning shares with evaluation live in :mod:`pyramid_bert.training.config`
(re-exported here: ``from pyramid_bert.training.loop import FinetuneConfig, finetune``).
"""

from __future__ import annotations

import math
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm
from transformers import AutoTokenizer, get_linear_schedule_with_warmup

# data.load_task is looked up at call time (tests replace it)
from pyramid_bert import data, length_drop
from pyramid_bert.data import resolve_model
from pyramid_bert.errors import CheckpointError, ConfigError, DataError
from pyramid_bert.geometry import flops_geometry
from pyramid_bert.patch.hf import pyramid_settings
from pyramid_bert.patch.reschedule import set_keep_ratios
from pyramid_bert.training import checkpoint
from pyramid_bert.training.batching import real_lengths
from pyramid_bert.training.config import (
    DEFAULT_BATCH_SIZE,
    DENSE,
    TASK_BATCH_SIZES,
    FinetuneConfig,
    apply_selection,
    check_labels_fit,
    load_base_model,
    pyramid_summary,
    resolve_device,
    resolve_lengths,
    subset_indices,
    take,
    validate_config,
    versions,
)
from pyramid_bert.training.distillation import combined_loss, distillation_loss, load_teacher
from pyramid_bert.training.scoring import score_split, tokenize_for_model

if TYPE_CHECKING:
    from pyramid_bert.data import TaskData

__all__ = [
    "CHECKPOINT_FORMAT", "DEFAULT_BATCH_SIZE", "DENSE", "TASK_BATCH_SIZES", "FinetuneConfig", "apply_selection",
    "build_optimizer", "check_labels_fit", "epoch_order", "finetune", "load_base_model", "pyramid_summary",
    "resolve_device", "resolve_lengths", "subset_indices", "take", "validate_config", "versions",
]  # fmt: skip

WARMUP_RATIO = 0.1
WEIGHT_DECAY = 0.01
MAX_GRAD_NORM = 1.0
CHECKPOINT_FORMAT = "pyramid-bert-checkpoint/1"


def epoch_order(num_examples: int, seed: int, epoch: int) -> torch.Tensor:
    """The example order of ``epoch``: a permutation that depends only on (seed, epoch)."""

    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(num_examples, generator=generator)


def build_optimizer(model: Any, lr: float, total_steps: int) -> tuple[Any, Any, int]:
    """AdamW (no weight decay on biases and LayerNorm) + linear warm-up and decay; returns (opt, sched, warmup)."""

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
@dataclass
class _Run:
    """What the steps of one fine-tuning run share (built by :func:`_prepare_run`)."""

    config: FinetuneConfig
    task: TaskData
    source: str
    model: Any
    tokenizer: Any
    device: torch.device
    n: int
    lengths: list[int] | None
    train: dict[str, torch.Tensor]
    batch_size: int
    steps_per_epoch: int
    total_steps: int
    optimizer: Any
    scheduler: Any
    warmup_steps: int
    resume_dir: Path
    teacher: Any = None  # the dense teacher of distillation (None: no distillation)

    @property
    def num_examples(self) -> int:
        return len(self.train["labels"])


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

    validate_config(config, check_task_name=task_data is None)
    out = config.resolved_out()
    with checkpoint.run_folder_lock(out):  # a second run on the same out stops here with a clear message
        for final in (out, out.with_name(out.name + ".partial")):
            checkpoint.remove_stale_temporaries(final)  # left by a killed write
        finished = _finished_run(out, config)
        if finished is not None:
            return finished
        run = _prepare_run(config, task_data)
        state = _initial_state(run)
        _train_steps(run, state, progress, save_every_seconds, save_every_steps, step_callback)
        metrics = {"dev": _dev_scores(run)} if evaluate_dev else {}
        _write_finished(run, out, _run_info(run, state, metrics))
    return out


def _dev_scores(run: _Run) -> dict[str, Any]:
    """The task metric of the trained model on the dev split (seeded subset of ``max_eval_examples``)."""

    run.model.eval()
    config = run.config
    return score_split(
        run.model, run.tokenizer, run.task, "dev", batch_size=config.eval_batch_size,
        max_examples=config.max_eval_examples, device=run.device, seed=config.seed,
    )  # fmt: skip


def _prepare_run(config: FinetuneConfig, task_data: TaskData | None) -> _Run:
    """Load the task, the model (with its selection) and tokenizer; tokenize train; build AdamW + schedule."""

    device = resolve_device(config.device)
    task = task_data if task_data is not None else data.load_task(config.task, glue_dir=config.glue_dir, seed=config.seed)
    source = resolve_model(config.model)
    torch.manual_seed(config.seed)
    model = load_base_model(source, task)
    tokenizer = AutoTokenizer.from_pretrained(source)
    n = task.max_length
    lengths = resolve_lengths(config, n, model.config.num_hidden_layers)
    apply_selection(model, config, lengths)
    model.to(device)

    train = tokenize_for_model(model, tokenizer, task, "train")  # Input-first-k: cut to k by the tokenizer
    check_labels_fit(task, model.config.num_labels, train["labels"], source)
    train = take(train, subset_indices(len(train["labels"]), config.max_train_examples, config.seed))
    if len(train["labels"]) == 0:
        raise DataError(f"task {task.name}: the train split is empty")
    if config.batching == "dynamic":
        real_lengths(train)  # dynamic padding trims on the right: check the padding is there
    batch_size = config.resolved_batch_size()
    steps_per_epoch = math.ceil(len(train["labels"]) / batch_size)
    total_steps = max(1, math.ceil(config.epochs * steps_per_epoch))
    optimizer, scheduler, warmup_steps = build_optimizer(model, config.lr, total_steps)
    teacher = config.resolved_teacher()
    if teacher is not None:
        teacher = load_teacher(resolve_model(teacher), task.num_labels, device)
    out = config.resolved_out()
    return _Run(
        config=config, task=task, source=str(source), model=model, tokenizer=tokenizer, device=device, n=n,
        lengths=lengths, train=train, batch_size=batch_size, steps_per_epoch=steps_per_epoch,
        total_steps=total_steps, optimizer=optimizer, scheduler=scheduler, warmup_steps=warmup_steps,
        resume_dir=out.with_name(out.name + ".partial"), teacher=teacher,
    )  # fmt: skip


def _initial_state(run: _Run) -> dict[str, Any]:
    """A fresh training state, or the one saved in ``<out>.partial`` (restored into model and optimizer)."""

    state: dict[str, Any] = {"step": 0, "losses": [], "step_seconds": [], "train_seconds": 0.0, "resumed_at": []}
    resume_from = checkpoint.existing_dir(run.resume_dir)
    if resume_from is None:
        return state
    saved = checkpoint.read_train_state(resume_from, run.model, run.optimizer, run.scheduler)
    difference = run.config.saved_difference(saved.get("config"))
    if difference is not None:
        raise ConfigError(
            f"out: {run.resume_dir} (an interrupted run) holds {difference}; delete it or choose another --out"
        )
    state = {key: saved[key] for key in state}
    state["resumed_at"].append(state["step"])
    return state


def _train_steps(
    run: _Run,
    state: dict[str, Any],
    progress: bool,
    save_every_seconds: float,
    save_every_steps: int | None,
    step_callback: Callable[[int], None] | None,
) -> None:
    """Run the remaining optimizer steps, saving the resume state at epoch ends and when due."""

    run.model.train()
    bar = tqdm(
        total=run.total_steps, initial=state["step"], desc=f"finetune {run.task.name} {run.config.method}",
        unit="step", disable=not progress, dynamic_ncols=True,
    )  # fmt: skip
    last_save = time.monotonic()
    try:
        while state["step"] < run.total_steps:
            epoch = state["step"] // run.steps_per_epoch
            loss_value, elapsed = _one_step(run, state["step"])
            state["step"] += 1
            state["losses"].append(loss_value)
            state["step_seconds"].append(elapsed)
            state["train_seconds"] += elapsed
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.4f}", epoch=epoch + 1)
            epoch_done = state["step"] % run.steps_per_epoch == 0
            due = (save_every_steps is not None and state["step"] % save_every_steps == 0) or (
                time.monotonic() - last_save >= save_every_seconds
            )
            if state["step"] < run.total_steps and (epoch_done or due):
                checkpoint.write_train_state(
                    run.resume_dir, run.model, run.optimizer, run.scheduler, {**state, "config": run.config.to_dict()}
                )
                last_save = time.monotonic()
            if step_callback is not None:
                step_callback(state["step"])
    finally:
        bar.close()


def _one_step(run: _Run, step: int) -> tuple[float, float]:
    """Optimizer step number ``step`` (0-based) on its batch; returns (loss, seconds)."""

    epoch, position = divmod(step, run.steps_per_epoch)
    order = epoch_order(run.num_examples, run.config.seed, epoch)
    batch_indices = order[position * run.batch_size : (position + 1) * run.batch_size]
    batch = {key: value[batch_indices] for key, value in run.train.items()}
    if run.config.batching == "dynamic":  # pad to the batch's longest example, not to N
        width = int(batch["attention_mask"].sum(dim=1).max())
        batch = {key: value[:, :width] if value.dim() == 2 else value for key, value in batch.items()}
    batch = {key: value.to(run.device) for key, value in batch.items()}
    started = time.perf_counter()
    loss_value = _backward(run, batch, step)
    torch.nn.utils.clip_grad_norm_(run.model.parameters(), MAX_GRAD_NORM)
    run.optimizer.step()
    run.scheduler.step()
    run.optimizer.zero_grad(set_to_none=True)
    return loss_value, time.perf_counter() - started


def _backward(run: _Run, batch: dict[str, torch.Tensor], step: int) -> float:
    """Forward and backward of ``batch`` under each schedule of the step (one: the model's own; LengthDrop: its own
    and one random draw, :func:`pyramid_bert.length_drop.sandwich`), the gradients of their mean loss accumulated;
    returns that mean. The model leaves with its own schedule."""

    teacher_logits = _teacher_logits(run, batch)
    if run.config.length_drop == 0:
        loss = _loss(run, batch, teacher_logits)
        loss.backward()
        return float(loss.detach())
    stored = pyramid_settings(run.model).keep_ratios
    schedules = length_drop.sandwich(stored, run.config.length_drop, run.config.seed, step)
    total = 0.0
    try:
        for ratios in schedules:
            set_keep_ratios(run.model, ratios)
            loss = _loss(run, batch, teacher_logits) / len(schedules)
            loss.backward()  # one graph at a time: the memory of one forward
            total += float(loss.detach())
    finally:
        set_keep_ratios(run.model, stored)
    return total


def _teacher_logits(run: _Run, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
    """The distillation teacher's logits of ``batch`` (None without a teacher); one forward, no gradients."""
    if run.teacher is None:
        return None
    with torch.no_grad():
        return run.teacher(**{key: value for key, value in batch.items() if key != "labels"}).logits


def _loss(run: _Run, batch: dict[str, torch.Tensor], teacher_logits: torch.Tensor | None) -> torch.Tensor:
    """The task loss of ``batch``, combined with distillation to the teacher's logits when there are some."""

    outputs = run.model(**batch)
    if teacher_logits is None:
        return outputs.loss
    distill = distillation_loss(
        outputs.logits, teacher_logits, run.config.distill_temperature, regression=run.task.is_regression
    )
    return combined_loss(outputs.loss, distill, run.config.distill_weight)


def _run_info(run: _Run, state: dict[str, Any], metrics: dict[str, Any]) -> dict[str, Any]:
    """The ``run.json`` of the finished run: config, task, model shape, schedule, train figures, versions."""

    task, model_config = run.task, run.model.config
    step_seconds = state["step_seconds"][1:] or state["step_seconds"]
    return {
        "format": CHECKPOINT_FORMAT,
        "config": run.config.to_dict(),
        "task": {
            "name": task.name,
            "metric": task.metric,
            "is_regression": task.is_regression,
            "num_labels": task.num_labels,
            "label_names": list(task.label_names),
            "max_length": run.n,
        },
        "model_source": run.source,
        "model_shape": {
            **{name: flops_geometry(model_config)[name] for name in ("num_layers", "hidden", "intermediate")},
            "heads": model_config.num_attention_heads,
        },
        "lengths": run.lengths,
        "pyramid": getattr(model_config, "pyramid", None),
        **pyramid_summary(model_config, run.n, run.lengths, run.config.method, run.config.selection.position),
        "train": {
            "examples": run.num_examples,
            "batch_size": run.batch_size,
            "steps": run.total_steps,
            "steps_per_epoch": run.steps_per_epoch,
            "warmup_steps": run.warmup_steps,
            "weight_decay": WEIGHT_DECAY,
            "max_grad_norm": MAX_GRAD_NORM,
            "seconds": state["train_seconds"],
            "step_seconds_median": statistics.median(step_seconds),
            "loss_first": state["losses"][0],
            "loss_last_mean10": statistics.fmean(state["losses"][-10:]),
            "resumed_at_steps": state["resumed_at"],
            "threads": torch.get_num_threads(),
            "batching": run.config.batching,
            **_length_drop_info(run),
        },
        "metrics": metrics,
        "device": str(run.device),
        "versions": versions(),
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _length_drop_info(run: _Run) -> dict[str, Any]:
    """What ``run.json["train"]`` says of LengthDrop: its bound and the forwards each step ran (none without it)."""
    if run.config.length_drop == 0:
        return {}
    teacher = 1 if run.teacher is not None else 0
    return {"length_drop": {
        "bound": run.config.length_drop, "schedules_per_step": "the stored (smallest) and one random draw",
        "forwards_per_step": length_drop.FORWARDS_PER_STEP + teacher, "backwards_per_step": length_drop.FORWARDS_PER_STEP,
    }}  # fmt: skip


def _write_finished(run: _Run, out: Path, run_info: dict[str, Any]) -> None:
    """Write the checkpoint folder ``out`` in one rename and remove the resume state."""

    run.model.to("cpu")
    checkpoint.write_checkpoint(out, run.model, run.tokenizer, run_info)
    for leftover in (run.resume_dir, run.resume_dir.with_name(run.resume_dir.name + ".old")):
        if leftover.exists():
            shutil.rmtree(leftover)


def _finished_run(out: Path, config: FinetuneConfig) -> Path | None:
    """``out`` if it already holds a finished run of ``config``; error if it holds something else.

    A checkpoint of ``config`` whose files are missing or damaged (weights that do not load or do not match the
    SHA-256 stored in ``run.json``) is not finished: None (it is trained again and replaced), with a message.
    """

    if not out.exists():
        return None
    if not (out / checkpoint.RUN_FILE).is_file():
        if out.is_dir() and not any(out.iterdir()):
            out.rmdir()
            return None
        raise ConfigError(f"out: {out} exists and is not a pyramid-bert checkpoint; choose another --out")
    difference = config.saved_difference(checkpoint.read_run_info(out).get("config"))
    if difference is not None:
        raise ConfigError(f"out: {out} already holds {difference}; choose another --out or delete it")
    try:
        checkpoint.validate_checkpoint(out)
    except CheckpointError as error:
        print(f"finetune: {error}; not a finished run: training it again", file=sys.stderr)
        return None
    return out
