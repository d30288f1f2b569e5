"""Peak memory of one training step and of one inference batch, each measured in a fresh process.

What is measured, honestly:

- **CPU**: the resident set size (RSS) the operating system charges the process, which includes everything
  torch's allocator, oneDNN and glibc really hold (``tracemalloc`` sees none of that). Each measurement runs
  in a new Python process (``python -m pyramid_bert.measure.memory``) so no allocator cache or earlier peak from
  another model leaks in. Inside it: load the model, build the batch, run one untimed warm-up step (for
  training this also allocates the AdamW moments and gradients), then reset the kernel's peak-RSS mark
  (``/proc/self/clear_refs`` <- ``5``), run the measured step and read ``VmHWM`` (peak RSS) from
  ``/proc/self/status``. Reported: ``peak_mb`` (whole process peak during the measured step: runtime,
  weights, gradients, optimizer state, activations, allocator caches; the figure to compare) and
  ``step_mb`` = peak minus ``before_mb``, the RSS of the loaded model and inputs before any step (what
  training or inference adds on top of the loaded model). Where the peak mark cannot be reset (not Linux), the fallback is the
  child's lifetime peak ``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss`` read by the parent, flagged by
  ``method``.
- **CUDA**: ``torch.cuda.max_memory_allocated`` after ``torch.cuda.reset_peak_memory_stats`` (tensor
  memory only, the figure torch users compare).

Inputs are random token ids with a full attention mask (no padding): the worst case for a given batch and
N, and what matters for memory, which depends on shapes, not on the words.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

# This module is also the fresh process that is measured: what it imports is in every baseline, so it imports
# only what building and stepping the model needs (torch, transformers, the patch).
import torch
from transformers import AutoModelForSequenceClassification

from pyramid_bert.errors import PyramidBertError
from pyramid_bert.patch.hf import is_pyramidized, load_pyramid_model, pyramidize, unpyramidize
from pyramid_bert.patch.quantize import quantize
from pyramid_bert.precision import check_precision

MODES = ("train", "infer")
VARIANTS = ("dense", "pyramid")


def _status_kb(field: str) -> int | None:
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return None
    match = re.search(rf"^{field}:\s+(\d+)\s+kB", text, flags=re.MULTILINE)
    return int(match.group(1)) if match else None


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _build_model(spec: dict[str, Any]) -> Any:
    checkpoint = spec["checkpoint"]
    if spec["variant"] == "dense":
        model = AutoModelForSequenceClassification.from_pretrained(checkpoint)
        if is_pyramidized(model):
            unpyramidize(model)
        return model
    if spec.get("selection"):
        model = AutoModelForSequenceClassification.from_pretrained(checkpoint)
        if is_pyramidized(model):
            unpyramidize(model)
        selection = dict(spec["selection"])
        lengths = selection.pop("lengths", None)
        if selection.get("method") == "average_pool":
            lengths = None  # pooling is given by its windows; the lengths follow from them
        return pyramidize(model, lengths, **selection)
    return load_pyramid_model(checkpoint)


def _measure_here(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs inside the fresh process: build, warm up, reset the peak, run the measured step, report."""

    torch.set_num_threads(int(spec["threads"]))
    torch.manual_seed(0)
    device = torch.device(spec["device"])
    model = _build_model(spec).to(device)
    if spec["mode"] == "infer":
        quantize(model, spec.get("precision") or "fp32")  # training steps stay at float32
    batch_size, seq_len = int(spec["batch_size"]), int(spec["seq_len"])
    vocab = int(model.config.vocab_size)
    inputs = {
        "input_ids": torch.randint(1, vocab, (batch_size, seq_len), device=device),
        "attention_mask": torch.ones(batch_size, seq_len, dtype=torch.long, device=device),
    }
    num_labels = int(model.config.num_labels)
    if spec["mode"] == "train":
        if num_labels == 1:
            inputs["labels"] = torch.rand(batch_size, device=device)
        else:
            inputs["labels"] = torch.randint(0, num_labels, (batch_size,), device=device)
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)

        def step() -> None:
            model(**inputs).loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=False)

    else:
        model.eval()

        def step() -> None:
            with torch.inference_mode():
                model(**inputs)

    if device.type == "cuda":
        torch.cuda.synchronize()
        before = torch.cuda.memory_allocated(device)
        step()  # warm-up: allocations that persist across steps (grads, AdamW moments, kernel caches)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        step()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated(device)
        return {
            "method": "torch.cuda.max_memory_allocated",
            "peak_mb": peak / 2**20,
            "before_mb": before / 2**20,
            "step_mb": (peak - before) / 2**20,
        }
    before_kb = _status_kb("VmRSS")  # the loaded model and inputs, before any step
    step()  # warm-up: allocations that persist across steps (grads, AdamW moments, kernel caches)
    if before_kb is None or not _reset_peak_rss():
        step()
        return {"method": "ru_maxrss of the child (lifetime peak, includes loading)", "fallback": True}
    step()
    peak_kb = _status_kb("VmHWM") or 0
    return {
        "method": "VmHWM after clear_refs reset, fresh process",
        "peak_mb": peak_kb / 1024,
        "before_mb": before_kb / 1024,
        "step_mb": (peak_kb - before_kb) / 1024,
    }


def measure_peak_memory(
    checkpoint: str | Path,
    *,
    mode: str,
    variant: str,
    batch_size: int,
    seq_len: int,
    device: str = "cpu",
    selection: dict[str, Any] | None = None,
    threads: int | None = None,
    timeout: float = 900.0,
    precision: str = "fp32",
) -> dict[str, Any]:
    """Peak memory of one ``mode`` step ("train": forward + backward + AdamW; "infer": forward) of the
    ``variant`` ("dense" or "pyramid") of ``checkpoint`` on a ``[batch_size, seq_len]`` batch, in a fresh
    process. ``selection``: pyramidize kwargs (with ``lengths``) to apply to the dense weights instead of the
    checkpoint's own ``config.pyramid`` (only-infer). ``precision``: of the inference step (a training step is always
    float32; see :mod:`pyramid_bert.patch.quantize`). Returns a dict with ``peak_mb``, ``before_mb``,
    ``step_mb`` and ``method``.
    """

    if mode not in MODES:
        raise PyramidBertError(f"mode: must be one of {', '.join(MODES)}, got {mode!r}")
    if variant not in VARIANTS:
        raise PyramidBertError(f"variant: must be one of {', '.join(VARIANTS)}, got {variant!r}")
    spec = {
        "checkpoint": str(checkpoint), "mode": mode, "variant": variant, "batch_size": batch_size,
        "seq_len": seq_len, "device": device, "selection": selection, "precision": check_precision(precision),
        "threads": threads if threads is not None else torch.get_num_threads(),
    }  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    completed = subprocess.run(
        [sys.executable, "-m", "pyramid_bert.measure.memory"],
        input=json.dumps(spec), capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )  # fmt: skip
    if completed.returncode != 0:
        raise PyramidBertError(f"memory measurement ({mode}, {variant}) failed:\n{completed.stderr[-2000:]}")
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    if result.pop("fallback", False):
        after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        if after <= before:
            result["method"] += " (unreliable: an earlier child had a higher peak)"
        bytes_per_unit = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
        result["peak_mb"] = after * bytes_per_unit / 2**20
    used = precision if mode == "infer" else "fp32"
    return {**result, "mode": mode, "variant": variant, "batch_size": batch_size, "seq_len": seq_len, "precision": used}


def main() -> int:
    spec = json.loads(sys.stdin.read())
    print(json.dumps(_measure_here(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
