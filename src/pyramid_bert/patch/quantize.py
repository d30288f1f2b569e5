"""Run a (pyramid or dense) classifier at a precision on the CPU: ``fp32`` (as trained) or ``int8``.

``int8`` is PyTorch's dynamic quantization of every ``nn.Linear`` (:func:`torch.ao.quantization.quantize_dynamic`,
``qint8`` weights with one scale per output channel, activations quantized per call): the weights are
stored as int8, each matmul runs on int8 (fbgemm / oneDNN kernels), its output is float32 again, so everything
between the matmuls -- LayerNorm, softmax, GELU and the pyramid's token selection, which reads the hidden states --
stays float32 and the pyramid patch works unchanged.

Why this path (measured on this project's 2-core CPU, built-in MiniLM fine-tuned on rt-polarity, one thread,
length-sorted test sentences, interleaved repeats in one process; ``benchmarks/precision_candidates.py``, figures in
``benchmarks/deploy_speed.md``):

- ``torch.ao.quantization.quantize_dynamic`` (chosen): 2.0X over fp32 dense at batch 1 (p50 per request), 1.3-1.7X
  at batch 32-128; an in-place module swap, so the pyramid forward, its selection and its masks are untouched.
  Deprecated in favour of torchao, but present and working in torch 2.13 (its deprecation warnings are silenced
  here). Weights are scaled per output channel (``per_channel_dynamic_qconfig``), not per tensor (the default):
  on three dense rt-polarity models the per-tensor scheme loses 0.8 [0.3, 1.4] points of test accuracy and
  per-channel 0.1 [-1.3, +1.5], at 0.99X the speed (``benchmarks/int8_scheme.py``, ``benchmarks/deploy_speed.md``).
- torchao 0.18's ``Int8DynamicActivationInt8WeightConfig``: slower than fp32 in eager mode on this CPU (0.85X at
  batch 1, 1.1X at batch 32: its int8 matmul is not a fused kernel without ``torch.compile``); more accurate (per-token
  activation scales: 80.5 vs 80.2 of quantize_dynamic, fp32 80.6, one seed); not a dependency.
- onnxruntime's dynamic int8: the fastest dense int8 (4.0X over torch fp32 at batch 1, 2.9X at batch 32), but it
  needs an exported graph, and the legacy exporter traces the pyramid's data-dependent selection (keep counts, the
  numba rounds) as constants: the graph would keep the example input's tokens for every input.

A saved model folder keeps float32 weights and says ``"precision": "int8"`` in its ``config.json``
(:func:`pyramid_bert.precision.mark_precision`); :func:`pyramid_bert.load_pyramid_model` quantizes at load. Quantized weights are not saved:
dynamic quantization of a float32 checkpoint takes well under a second, is deterministic, and a float32 folder stays
loadable by every tool (``from_pretrained``, fine-tuning, export) where a packed-int8 state dict would not.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.ao.nn.quantized import dynamic as quantized_dynamic
from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

from pyramid_bert.errors import ConfigError
from pyramid_bert.precision import check_precision


def quantize(model: nn.Module, precision: str) -> nn.Module:
    """Make ``model`` (dense or pyramid, on the CPU) run at ``precision``, in place, and return it.

    ``fp32`` leaves it as it is; ``int8`` swaps every ``nn.Linear`` for a dynamically quantized one (see the module
    docstring). The pyramid patch (its classes, settings and Attention-select's forward hooks, which the swap carries
    over) keeps working. Inference only: the quantized model has no gradients and cannot be saved and reloaded with
    ``from_pretrained``; save the float32 model with :func:`pyramid_bert.precision.mark_precision` instead. Calling it
    twice is a no-op.
    """
    check_precision(precision)
    if precision == "fp32" or model_precision(model) == "int8":
        return model
    parameter = next(model.parameters(), None)
    if parameter is not None and parameter.device.type != "cpu":
        raise ConfigError(f"--precision int8: runs on the CPU only; the model is on {parameter.device}")
    with warnings.catch_warnings():  # torch 2.13 says torch.ao.quantization is deprecated (see the module docstring)
        warnings.filterwarnings("ignore", message=".*quantize_per_tensor", category=UserWarning)
        warnings.filterwarnings("ignore", message="torch.ao.quantization is deprecated", category=DeprecationWarning)
        quantize_dynamic(model, {nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
    return model.eval()


def model_precision(model: nn.Module) -> str:
    """``int8`` when any layer of ``model`` is a dynamically quantized Linear, else ``fp32``."""
    quantized = any(isinstance(module, quantized_dynamic.Linear) for module in model.modules())
    return "int8" if quantized else "fp32"
