"""Load what an analysis runs on: a model (a built-in name, a local checkpoint or a ``finetune`` run folder)
and a tokenized, seeded subset of one split of a task."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transformers import AutoTokenizer
from transformers.utils import logging as transformers_logging

from pyramid_bert import data  # data.load_task, looked up at call time (tests replace it)
from pyramid_bert.data import TASK_NAMES, resolve_model, tokenize_split
from pyramid_bert.errors import ConfigError
from pyramid_bert.patch.hf import is_pyramidized, unpyramidize
from pyramid_bert.training.config import load_base_model, subset_indices, take

if TYPE_CHECKING:
    import torch

    from pyramid_bert.data import TaskData


@dataclass
class AnalysisInputs:
    """A dense model in eval mode and the examples it is analysed on.

    ``encodings``: ``input_ids`` / ``attention_mask`` (/ ``token_type_ids``) LongTensor ``[n, N]`` and
    ``labels`` ``[n]``; ``source``: where the weights came from; ``fine_tuned``: a run folder of ``finetune``.
    """

    model: Any
    encodings: dict[str, torch.Tensor]
    task: TaskData
    source: str
    fine_tuned: bool


def load_inputs(
    model: str,
    *,
    task: str | TaskData,
    split: str,
    max_examples: int | None,
    seed: int = 0,
    glue_dir: str | None = None,
) -> AnalysisInputs:
    """The model ``model`` without token selection and ``max_examples`` seeded examples of ``split`` of ``task``
    (a task name, or a TaskData such as one read from the user's files).

    ``model``: a catalog name (``minilm-l6``), a local Hugging Face folder, or a run folder of
    ``pyramid-bert finetune`` (recognised by its ``run.json``; a pyramid checkpoint is unpyramidized, so the
    analysis sees its weights densely).
    """

    if isinstance(task, str) and task not in TASK_NAMES:
        raise ConfigError(f"--task: unknown task {task!r}; valid tasks: {', '.join(TASK_NAMES)}")
    if max_examples is not None and max_examples < 1:
        raise ConfigError(f"--max-examples must be >= 1, got {max_examples}")
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    folder = Path(model)
    fine_tuned = (folder / "run.json").is_file()
    source = str(folder) if folder.is_dir() else resolve_model(model)
    if not Path(source, "config.json").is_file():
        raise ConfigError(f"--model: {model!r} is neither a catalog model name nor a folder with a config.json")
    task_data = data.load_task(task, glue_dir=glue_dir) if isinstance(task, str) else task
    if split not in task_data.splits:
        raise ConfigError(f"--split: task {task} has no split {split!r}; valid: {', '.join(task_data.splits)}")
    net = load_base_model(source, task_data)
    if is_pyramidized(net):
        unpyramidize(net)
    net.eval()

    tokenizer = AutoTokenizer.from_pretrained(source)
    encodings = tokenize_split(tokenizer, task_data, split)
    encodings = take(encodings, subset_indices(len(encodings["labels"]), max_examples, seed))
    return AnalysisInputs(model=net, encodings=encodings, task=task_data, source=source, fine_tuned=fine_tuned)


def model_inputs(encodings: dict[str, torch.Tensor], rows: slice | None = None) -> dict[str, torch.Tensor]:
    """The model's keyword inputs (no labels) of ``rows`` of ``encodings``."""
    rows = rows or slice(None)
    return {key: value[rows] for key, value in encodings.items() if key != "labels"}
