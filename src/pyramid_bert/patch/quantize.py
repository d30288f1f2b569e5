"""Run a (pyramid or dense) classifier at a precision on the CPU: ``fp32`` (as trained) or ``int8``.

``int8`` is PyTorch's dynamic quantization of every ``nn.Linear`` (:func:`torch.ao.quantization.quantize_dynamic`,
``qint8`` weights with one scale per tensor, activations quantized per call): the weights are
stored as int8, each matmul runs on int8 (fbgemm / oneDNN kernels), its output is float32 again, so everything
between the matmuls -- LayerNorm, softmax, GELU and the pyramid's token selection, which reads the hidden states --
stays float32 and the pyramid patch works unchanged.

Why this path (measured on this project's 2-core CPU, built-in MiniLM fine-tuned on rt-polarity, one thread,
length-sorted test sentences, interleaved repeats in one process; ``benchmarks/precision_candidates.py``, figures in
``benchmarks/deploy_speed.md``):

- ``torch.ao.quantization.quantize_dynamic`` (chosen): faster than fp32 at batch 1 and at batch 32, within a few
  tenths of a point of test accuracy, and it is an in-place module swap, so the pyramid forward, its selection and
  its masks are untouched. It is deprecated in favour of torchao, but present and working in torch 2.13.
- torchao's int8 dynamic-activation / int8-weight (``Int8DynamicActivationInt8WeightConfig``, torchao 0.18): slower
  than fp32 in eager mode on this CPU (its int8 matmul is not a fused kernel without ``torch.compile``), so it
  brings nothing to eager serving; it would also be a new dependency.
- onnxruntime's dynamic int8 (``onnxruntime.quantization.quantize_dynamic``): the fastest dense int8 model, but it
  needs an exported graph, and the pyramid's data-dependent selection does not export as one graph (see
  ``benchmarks/deploy_speed.md``); it is a deployment format, not a precision of a torch model.

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
from torch.ao.quantization import quantize_dynamic

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
        quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)
    return model.eval()


def model_precision(model: nn.Module) -> str:
    """``int8`` when any layer of ``model`` is a dynamically quantized Linear, else ``fp32``."""
    quantized = any(isinstance(module, quantized_dynamic.Linear) for module in model.modules())
    return "int8" if quantized else "fp32"
