"""Checkpoint folders: write atomically, validate before loading, and keep resumable training state.

A finished checkpoint is a folder holding

- ``config.json`` + ``model.safetensors`` (``save_pretrained``; ``config.pyramid`` holds the selection
  settings, so :func:`pyramid_bert.load_pyramid_model` rebuilds the pyramid model),
- the tokenizer files (``tokenizer.save_pretrained``),
- ``run.json``: everything needed to reproduce the run (config, resolved lengths, versions, metrics) and the
  SHA-256 of every ``*.safetensors`` file, so that a corrupted weight file is detected before use.

Every folder is first written under a temporary name beside its destination, then renamed, so an
interrupted write never leaves a half checkpoint where a good one was. No pickle anywhere: tensors go to
safetensors, everything else to JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from pyramid_bert.errors import CheckpointError, ConfigError, RunFolderBusyError
from pyramid_bert.io import atomic_write_json, fsync_dir, fsync_tree
from pyramid_bert.patch.hf import selection_generators

RUN_FILE = "run.json"
CONFIG_FILE = "config.json"
TOKENIZER_FILES_ANY = ("tokenizer.json", "vocab.txt")
TRAIN_STATE_TENSORS = "train_state.safetensors"
TRAIN_STATE_JSON = "train_state.json"


# ---------------------------------------------------------------------------------------------- atomic I/O
def temporary_sibling(path: Path, tag: str = "tmp") -> Path:
    """A fresh path beside ``path`` for writing before the rename (hidden, unique per process)."""
    return path.with_name(f".{path.name}.{tag}-{os.getpid()}")


def remove_stale_temporaries(final: Path) -> list[Path]:
    """Delete what an interrupted write of ``final`` left beside it: the ``.NAME.tmp-PID`` siblings that
    :func:`temporary_sibling` names (and nothing else). Call it only while holding :func:`run_folder_lock`."""
    pattern = re.compile(rf"\.{re.escape(final.name)}\.tmp-\d+")
    removed = []
    if final.parent.is_dir():
        for path in final.parent.iterdir():
            if pattern.fullmatch(path.name):
                if path.is_dir() and not path.is_symlink():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed.append(path)
    return removed


@contextmanager
def run_folder_lock(out: Path, flag: str = "--out") -> Iterator[None]:
    """Hold the lock of run folder ``out`` (the file ``.NAME.lock`` beside it) for the block.

    Taken without waiting: if another process holds it, a ConfigError naming ``flag`` says so, so that two
    runs never write the same folder (or its ``.partial`` resume state) at once.
    """

    out.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(out.with_name(f".{out.name}.lock")))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise RunFolderBusyError(
            f"{flag}: {out} is in use by another run (its lock {lock.lock_file} is held); wait for that run to "
            f"finish or choose another {flag}"
        ) from None
    try:
        yield
    finally:
        lock.release()


def replace_dir(tmp: Path, final: Path) -> None:
    """Move the finished folder ``tmp`` to ``final``, replacing an existing ``final``.

    Every file of ``tmp`` is synced to disk first, and the parent folder after the renames, so that a crash never
    leaves a renamed folder with empty files. The old folder is renamed to ``final.old`` first and deleted last;
    :func:`existing_dir` falls back to it if the process died between the two renames.
    """
    fsync_tree(tmp)
    old = final.with_name(final.name + ".old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        final.rename(old)
    tmp.rename(final)
    fsync_dir(final.parent)
    if old.exists():
        shutil.rmtree(old)


def existing_dir(final: Path) -> Path | None:
    """``final`` if it exists, else the ``final.old`` left by an interrupted :func:`replace_dir`, else None."""
    if final.is_dir():
        return final
    old = final.with_name(final.name + ".old")
    return old if old.is_dir() else None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -------------------------------------------------------------------------------------- final checkpoint
def write_checkpoint(out: str | Path, model: Any, tokenizer: Any, run_info: dict[str, Any]) -> Path:
    """Save ``model`` (safetensors), ``tokenizer`` and ``run_info`` (+ weight checksums) to folder ``out``.

    Written to a temporary sibling folder and renamed; an existing ``out`` is replaced only once the new
    folder is complete. Returns ``out`` as a Path.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(out)
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    checksums = {f.name: file_sha256(f) for f in sorted(tmp.glob("*.safetensors"))}
    atomic_write_json(tmp / RUN_FILE, {**run_info, "weights_sha256": checksums})
    replace_dir(tmp, out)
    return out


def read_run_info(path: str | Path) -> dict[str, Any]:
    """The parsed ``run.json`` of checkpoint folder ``path``."""
    run_file = Path(path) / RUN_FILE
    if not run_file.is_file():
        raise CheckpointError(f"checkpoint {path}: missing {RUN_FILE} (not a pyramid-bert checkpoint folder?)")
    try:
        return json.loads(run_file.read_text())
    except json.JSONDecodeError as error:
        raise CheckpointError(f"checkpoint {path}: {RUN_FILE} is not valid JSON ({error})") from error


def validate_checkpoint(path: str | Path) -> dict[str, Any]:
    """Check that ``path`` is a complete, uncorrupted checkpoint folder; return its run info.

    Raises :class:`CheckpointError` naming the missing or corrupted file.
    """

    folder = Path(path)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint {path}: no such folder")
    for name in (CONFIG_FILE, RUN_FILE):
        if not (folder / name).is_file():
            raise CheckpointError(f"checkpoint {path}: missing {name}")
    if not any((folder / name).is_file() for name in TOKENIZER_FILES_ANY):
        raise CheckpointError(f"checkpoint {path}: missing tokenizer files (one of {', '.join(TOKENIZER_FILES_ANY)})")
    run_info = read_run_info(folder)
    expected = run_info.get("weights_sha256") or {}
    weight_files = sorted(folder.glob("*.safetensors"))
    if not weight_files:
        raise CheckpointError(f"checkpoint {path}: missing model.safetensors")
    for name in expected:
        if not (folder / name).is_file():
            raise CheckpointError(f"checkpoint {path}: missing {name}")
    for weight_file in weight_files:
        if weight_file.name == TRAIN_STATE_TENSORS:
            continue
        try:
            with safe_open(str(weight_file), framework="pt") as handle:
                list(handle.keys())
        except Exception as error:  # safetensors raises several types for a damaged header or size
            raise CheckpointError(f"checkpoint {path}: {weight_file.name} is corrupted ({error})") from error
        if weight_file.name in expected and file_sha256(weight_file) != expected[weight_file.name]:
            raise CheckpointError(f"checkpoint {path}: {weight_file.name} is corrupted (SHA-256 differs from run.json)")
    return run_info


# --------------------------------------------------------------------------------- resumable train state
def write_train_state(folder: str | Path, model: Any, optimizer: Any, scheduler: Any, state: dict[str, Any]) -> Path:
    """Save everything needed to continue training bit-for-bit: weights, AdamW moments, LR schedule, the random
    states (torch CPU and CUDA RNGs, Random-select's generators) and the JSON ``state`` (step, epoch, losses,
    config). Atomic (temp folder + rename).
    """

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(folder)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    tensors: dict[str, torch.Tensor] = {
        f"model.{name}": value.detach().cpu().contiguous() for name, value in model.state_dict().items()
    }
    optimizer_dict = optimizer.state_dict()
    optimizer_scalars: dict[str, dict[str, Any]] = {}
    for param_id, param_state in optimizer_dict["state"].items():
        for key, value in param_state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{param_id}.{key}"] = value.detach().cpu().contiguous()
            else:
                optimizer_scalars.setdefault(str(param_id), {})[key] = value
    tensors.update(_rng_states(model))
    save_file(tensors, str(tmp / TRAIN_STATE_TENSORS))
    payload = {
        **state,
        "optimizer_param_groups": optimizer_dict["param_groups"],
        "optimizer_scalars": optimizer_scalars,
        "scheduler": scheduler.state_dict(),
    }
    (tmp / TRAIN_STATE_JSON).write_text(json.dumps(payload, indent=1))
    replace_dir(tmp, folder)
    return folder


def read_train_state(folder: str | Path, model: Any, optimizer: Any, scheduler: Any) -> dict[str, Any]:
    """Restore what :func:`write_train_state` saved into ``model``, ``optimizer`` and ``scheduler`` (built
    the same way as for the original run) and the random states; returns the JSON state."""

    folder = Path(folder)
    try:
        payload = json.loads((folder / TRAIN_STATE_JSON).read_text())
        tensors = load_file(str(folder / TRAIN_STATE_TENSORS))
    except Exception as error:
        raise CheckpointError(f"resume state {folder}: unreadable ({error}); delete it to start over") from error
    model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
    optimizer_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, param_id, name = key.split(".", 2)
            optimizer_state.setdefault(int(param_id), {})[name] = value
    for param_id, scalars in payload.get("optimizer_scalars", {}).items():
        optimizer_state.setdefault(int(param_id), {}).update(scalars)
    groups = payload["optimizer_param_groups"]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": optimizer_state, "param_groups": groups})
    scheduler.load_state_dict(payload["scheduler"])
    _restore_rng_states(model, tensors)
    return payload


_SELECTION_RNG = "rng.selection."
_CUDA_RNG = "rng.cuda."


def _model_generators(model: Any) -> dict[str, Any]:
    try:
        return selection_generators(model)
    except ConfigError:  # not a BERT-family model: no selection, no generators
        return {}


def _rng_states(model: Any) -> dict[str, Any]:
    """Every random state a training step draws from, as uint8 tensors: torch's CPU RNG (dropout), each CUDA
    device's RNG (when CUDA is in use) and Random-select's generators (``rng.selection.<device>``)."""

    states = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states.update({f"{_CUDA_RNG}{index}": state for index, state in enumerate(torch.cuda.get_rng_state_all())})
    for device, generator in _model_generators(model).items():
        states[_SELECTION_RNG + device] = generator.get_state()
    return states


def _restore_rng_states(model: Any, tensors: dict[str, Any]) -> None:
    """Put back what :func:`_rng_states` saved (Random-select's generators are created if not yet used)."""

    torch.set_rng_state(tensors["rng.torch"])
    cuda = [tensors[key] for key in sorted((k for k in tensors if k.startswith(_CUDA_RNG)), key=_device_index)]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    generators = _model_generators(model)
    for key, state in tensors.items():
        if key.startswith(_SELECTION_RNG):
            device = key[len(_SELECTION_RNG) :]
            if device not in generators:
                generators[device] = torch.Generator(device=device)
            generators[device].set_state(state)


def _device_index(key: str) -> int:
    return int(key.rsplit(".", 1)[1])
