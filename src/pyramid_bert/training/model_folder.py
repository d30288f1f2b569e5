"""Plain Hugging Face model folders (``save_pretrained``, no ``run.json``) as evaluation inputs.

``compress`` writes such folders, and so does anyone who pyramidizes a model with the library and saves it; the
pyramid settings live in ``config.json`` (``pyramid``; ``model_type`` "pyramid-bert" since Auto classes load such
folders pyramidized, "bert" etc. before: both read the same here). :func:`folder_run_info` gives ``evaluate`` what a
fine-tuning run's ``run.json`` would: a run config (method, position, m, seed of the stored settings) and the
nominal lengths of the schedule at the task's N.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pyramid_bert import schedule
from pyramid_bert.errors import CheckpointError, ConfigError
from pyramid_bert.spec import SelectionOptions
from pyramid_bert.training.config import DENSE, FinetuneConfig

TOKENIZER_FILES_ANY = ("tokenizer.json", "vocab.txt", "tokenizer_config.json")


def validate_model_folder(path: str | Path) -> dict[str, Any]:
    """Check that ``path`` holds a config, safetensors weights and a tokenizer; return the parsed config."""
    folder = Path(path)
    if not folder.is_dir():
        raise CheckpointError(f"model folder {path}: no such folder")
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"model folder {path}: missing config.json (not a Hugging Face model folder?)")
    if not any(folder.glob("*.safetensors")):
        raise CheckpointError(f"model folder {path}: missing model.safetensors")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES_ANY):
        raise CheckpointError(f"model folder {path}: missing tokenizer files (one of {', '.join(TOKENIZER_FILES_ANY)})")
    try:
        return json.loads(config_file.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"model folder {path}: config.json is not valid JSON ({error})") from None


def folder_run_info(path: str | Path, task_name: str | None) -> tuple[dict[str, Any], FinetuneConfig]:
    """``(run_info, run_config)`` for a model folder without ``run.json``; ``task_name`` is required."""
    config = validate_model_folder(path)
    if not task_name:
        raise ConfigError(
            f"--task: {path} holds no run.json (it was not written by `pyramid-bert finetune`); give --task NAME or "
            "--train FILE (with --test/--dev) to evaluate it on"
        )
    settings = config.get("pyramid") or {}
    run_config = FinetuneConfig(
        task=task_name, model=str(path), method=settings.get("method", DENSE), seed=int(settings.get("seed", 0)),
        selection=SelectionOptions.from_dict(settings),
    )  # fmt: skip
    return {"config": run_config.to_dict(), "pyramid": settings or None, "lengths": None, "model_folder": True}, run_config


def nominal_lengths(settings: dict[str, Any] | None, n: int) -> list[int] | None:
    """The kept lengths per layer of stored pyramid ``settings`` for an input of ``n`` real tokens (None: dense)."""

    if not settings:
        return None
    if settings.get("keep_ratios"):
        return schedule.ratio_lengths(n, settings["keep_ratios"])
    if settings.get("keep_thresholds"):  # adaptive: known only after running (pyramid_bert.measure.adaptive)
        return [n] * len(settings["keep_thresholds"])
    if settings.get("pool_windows"):
        return schedule.pool_lengths(n, settings["pool_windows"])
    return [min(length, n) for length in settings["lengths"]]
