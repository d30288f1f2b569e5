"""Export a dense or pyramid sequence classifier to ONNX, checked against eager PyTorch before it is written.

``torch.onnx.export(dynamo=True)`` (``torch.export`` underneath) traces the pyramid forward on its compile path
(:mod:`pyramid_bert.patch.plan`: widths bounded from the shape, per-example counts on the device), with batch and
sequence length dynamic; :mod:`pyramid_bert.onnx_ops` translates the two operators the exporter lacks (stable sort,
the k-center rounds). What makes a graph right is measured, not assumed: before the file is written the graph runs
under onnxruntime on generated inputs other than the export example (batch 1 at several lengths, up to the model's
limit, and padded batches) and its logits must match eager PyTorch within ``tolerance``; otherwise the export is
refused with the inputs that disagreed. Methods that cannot be exported at all are refused up front
(:data:`UNEXPORTABLE`, with the measured reason), and so are keep ratios or a fractional ``m`` that the graph's
float32 arithmetic rounds differently from PyTorch at some length (:data:`ROUNDING_REASON`).

``int8``: onnxruntime's dynamic int8 quantization (``quantize_dynamic``, QInt8 weights) of the checked float32
graph; its logits are reported against eager float32 (they differ by quantization, so no tolerance applies).

Needs the ``[onnx]`` extra: ``pip install "pyramid-bert[onnx]"`` (onnx, onnxruntime, onnxscript).
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pyramid_bert.data.user_task import input_limit
from pyramid_bert.errors import ConfigError
from pyramid_bert.io import atomic_write_bytes, check_output_file
from pyramid_bert.patch.hf import load_pyramid_model, pyramid_settings
from pyramid_bert.precision import check_precision, stored_precision
from pyramid_bert.schedule import ratio_keep
from pyramid_bert.selection import resolve_m

try:
    from pyramid_bert import onnx_ops
except ImportError as _error:  # the [onnx] extra is not installed: export_onnx says how to install it
    onnx_ops, _MISSING = None, _error
else:
    _MISSING = None

__all__ = ["UNEXPORTABLE", "ExportCheck", "ExportReport", "export_folder", "export_model", "verification_inputs"]

INSTALL_HINT = 'pip install "pyramid-bert[onnx]"'
#: Methods refused before any export, with the reason as measured (torch 2.13, onnxscript 0.7, onnxruntime 1.32).
UNEXPORTABLE = {
    "random": "Random-select draws its token order from a torch.Generator outside the graph: torch.export fails on "
    "it (RuntimeError: SymIntArrayRef expected to contain only concrete integers), and no ONNX graph would "
    "reproduce torch's random stream, so its logits could not be checked against eager PyTorch",
}
#: Keep ratios and fractional m become float32 in the graph: torch.onnx computes ``ceil(r * N)`` of symbolic sizes in
#: float32 and turns the Python float ``r`` of ``ratio_counts`` into a float32 constant (measured: 0.6 is stored as
#: 0.6000000238, so a graph keeps 16 of 25 tokens where PyTorch keeps 15). Values whose rounding differs from
#: PyTorch's at any length up to the model's limit are refused (:func:`_float32_rounding`); 0.5, 0.25, ...
#: export.
ROUNDING_REASON = (
    "the exported graph computes {what} in float32 (torch.onnx makes Python floats and symbolic sizes float32), "
    "which rounds differently from PyTorch (float64) at {var} = {lengths} (e.g. {graph} vs {eager} {noun} at {var} = "
    "{first}); values such as 0.5, 0.25, 0.75 and 0.125 export"
)
#: The export example (batch, tokens): neither 0 nor 1, which torch.export would fix as constants.
EXAMPLE_SHAPE = (2, 16)
#: Lengths of the unpadded batch-1 checks (those above the model's limit are left out; the limit is added).
CHECK_LENGTHS = (2, 3, 5, 8, 13, 21, 25, 34, 47, 64, 128)
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


@dataclass(frozen=True)
class ExportCheck:
    """One generated input run by eager PyTorch and onnxruntime: its shape, whether it is padded, and the largest
    absolute difference of the logits (float32 graph; for int8, also the int8 graph's)."""

    batch: int
    tokens: int
    padded: bool
    max_abs_diff: float
    int8_max_abs_diff: float | None = None


@dataclass
class ExportReport:
    """What :func:`export_model` wrote and checked."""

    path: Path
    precision: str
    method: str
    inputs: list[str]
    max_tokens: int
    checks: list[ExportCheck] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        """A few lines for the command line."""
        worst = max(check.max_abs_diff for check in self.checks)
        lines = [
            f"onnx: {self.path} ({self.method}, {self.precision}; inputs {', '.join(self.inputs)}; batch and "
            f"sequence length dynamic, 2..{self.max_tokens} tokens; {self.seconds:.0f} s)",
            f"checked on {len(self.checks)} generated inputs against eager PyTorch: largest float32 logit difference "
            f"{worst:.1e}",
        ]
        if self.precision == "int8":
            int8 = max(check.int8_max_abs_diff or 0.0 for check in self.checks)
            lines.append(
                f"int8 graph (onnxruntime quantize_dynamic): largest logit difference to eager fp32 {int8:.1e}"
            )
        return "\n".join(lines)


class _Logits(nn.Module):
    """The classifier called with positional inputs, returning its logits ``[B, C]`` only (one graph output)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).logits


def export_folder(
    model_dir: str | Path, out: str | Path, *, precision: str | None = None, force: bool = False,
    tolerance: float = 1e-4,
) -> ExportReport:  # fmt: skip
    """Export the classifier folder ``model_dir`` (``save_pretrained``, dense or pyramid) to the ONNX file ``out``.

    ``precision``: ``fp32`` or ``int8`` (None: the precision the folder's config names, else fp32). The model is
    loaded at float32 either way (int8 is onnxruntime's quantization of the checked float32 graph). See
    :func:`export_model`.
    """
    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        raise ConfigError(f"MODEL_DIR: {folder} is not a model folder (no config.json)")
    check_output_file(out, "--out", force=force)
    if precision is None:
        precision = stored_precision(json.loads((folder / "config.json").read_text()))
    _require_onnx()
    model = load_pyramid_model(str(folder), precision="fp32").eval()
    return export_model(model, out, precision=precision, force=force, tolerance=tolerance)


def export_model(
    model: nn.Module, out: str | Path, *, precision: str = "fp32", force: bool = False, tolerance: float = 1e-4,
) -> ExportReport:  # fmt: skip
    """Export the float32 sequence classifier ``model`` (dense or pyramidized) to the ONNX file ``out``.

    Inputs ``input_ids``, ``attention_mask`` (and ``token_type_ids`` when the model takes them), each ``[B, N]``
    int64 with B and N dynamic (N from 2 to the model's limit); output ``logits [B, C]``. The graph is checked on
    :func:`verification_inputs` against eager ``model`` (largest absolute difference at most ``tolerance``) before
    ``out`` is written (atomically: a temporary file renamed into place). An existing ``out`` is replaced only with
    ``force``. A method that cannot be exported, or a graph that disagrees with eager PyTorch, is a ConfigError
    saying why; nothing is written then.
    """
    check_precision(precision)
    if not tolerance > 0:
        raise ConfigError(f"tolerance must be > 0, got {tolerance!r}")
    check_output_file(out, "--out", force=force)
    ort = _require_onnx()
    method = _check_exportable(model)
    names = _input_names(model)
    limit = input_limit(model.config, None)
    rounding = _float32_rounding(model, limit)
    if rounding is not None:
        raise ConfigError(f"method {method!r} with these settings cannot be exported to ONNX: {rounding}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pyramid-bert-onnx-") as work:
        graph = Path(work) / "model.onnx"
        _export_graph(model, names, limit, graph)
        inputs = verification_inputs(model.config, names, limit)
        checks = _compare(ort, graph, model, inputs, method, tolerance)
        if precision == "int8":
            graph = _quantize(graph)
            checks = _compare_int8(ort, graph, model, inputs, checks)
        check_output_file(out, "--out", force=force)  # a file that appeared while exporting is still not replaced
        atomic_write_bytes(out, graph.read_bytes())
    return ExportReport(Path(out), precision, method, list(names), limit, checks, time.perf_counter() - started)


def verification_inputs(
    config: Any, names: tuple[str, ...], limit: int, seed: int = 0
) -> list[dict[str, torch.Tensor]]:
    """The generated inputs an exported graph is checked on: batch 1 unpadded at each of :data:`CHECK_LENGTHS`
    (within ``limit``) and at ``limit``; padded batches (real lengths of different residues) of 23, 30 and ``limit``
    tokens. Random token ids below the vocabulary size (seeded); ``token_type_ids`` 0 then 1 when asked for."""
    generator = torch.Generator().manual_seed(seed)
    vocab = int(getattr(config, "vocab_size", 1000))
    lengths = sorted({length for length in CHECK_LENGTHS if length <= limit} | {limit})
    shapes = [[length] for length in lengths] + [[23, 17, 6, 2], [30, 9, 25], [limit, limit - 1, (limit + 1) // 2, 3]]
    inputs = []
    for real in shapes:
        real = [min(length, limit) for length in real]
        batch, tokens = len(real), max(real)
        ids = torch.randint(0, vocab, (batch, tokens), generator=generator)
        mask = (torch.arange(tokens)[None, :] < torch.tensor(real)[:, None]).long()
        example = {"input_ids": ids * mask, "attention_mask": mask}
        if "token_type_ids" in names:
            example["token_type_ids"] = (
                torch.arange(tokens)[None, :] >= torch.tensor(real)[:, None] // 2
            ).long() * mask
        inputs.append({name: example[name] for name in names})
    return inputs


def _require_onnx() -> Any:
    """onnxruntime (and, imported with this module, onnxscript and onnx), or a ConfigError naming the extra."""
    if onnx_ops is None:
        raise ConfigError(f"exporting to ONNX needs onnx, onnxruntime and onnxscript ({_MISSING}): {INSTALL_HINT}")
    try:
        import onnxruntime
    except ImportError as error:
        raise ConfigError(f"exporting to ONNX needs onnxruntime ({error}): {INSTALL_HINT}") from None
    return onnxruntime


def _check_exportable(model: nn.Module) -> str:
    """The model's method (``dense`` for none); ConfigError for a method in :data:`UNEXPORTABLE` or a model that is
    not float32."""
    settings = pyramid_settings(model)
    method = "dense" if settings is None else settings.method
    if method in UNEXPORTABLE:
        raise ConfigError(f"method {method!r} cannot be exported to ONNX: {UNEXPORTABLE[method]}")
    dtypes = {parameter.dtype for parameter in model.parameters()}
    if dtypes != {torch.float32} or _is_quantized(model):
        raise ConfigError("export: the model must be float32 (int8 is applied to the exported graph: --precision int8)")
    return method


def _float32_rounding(model: nn.Module, limit: int) -> str | None:
    """Why the graph would round a keep ratio or a fractional ``m`` differently from PyTorch at some length up to
    ``limit`` (see :data:`ROUNDING_REASON`), or None. Both float32 forms the graph uses are simulated for every N."""
    settings = pyramid_settings(model)
    values = []
    if settings is not None and settings.keep_ratios is not None:
        values += [(f"ceil({ratio} * N)", ratio, lambda n, r=ratio: ratio_keep(r, n)) for ratio in settings.keep_ratios]
    m = None if settings is None else settings.options.m
    if isinstance(m, float):
        values.append((f"m = ceil({m} * k)", m, lambda k: resolve_m(m, k)))
    for what, value, eager in values:
        single = np.float32(value)
        wrong = []
        for n in range(1, limit + 1):
            graph = {math.ceil(single * np.float32(n)), math.ceil(float(single) * n)}  # sizes; per-example counts
            graph = {min(n, max(1, count)) if what.startswith("ceil") else max(1, count) for count in graph}
            if graph != {eager(n)}:
                wrong.append((n, max(graph - {eager(n)} or graph)))
        if wrong:
            lengths = ", ".join(str(n) for n, _ in wrong[:5]) + (", ..." if len(wrong) > 5 else "")
            first, graph_count = wrong[0]
            return ROUNDING_REASON.format(
                what=what,
                lengths=lengths,
                graph=graph_count,
                eager=eager(first),
                first=first,
                var="N" if what.startswith("ceil") else "k",
                noun="tokens" if what.startswith("ceil") else "centers",
            )
    return None


def _is_quantized(model: nn.Module) -> bool:
    return any("quantized" in type(module).__module__ for module in model.modules())


def _input_names(model: nn.Module) -> tuple[str, ...]:
    """``input_ids``, ``attention_mask`` and, when the model's forward takes them, ``token_type_ids``."""
    parameters = inspect.signature(model.forward).parameters
    return tuple(name for name in INPUT_NAMES if name in parameters)


def _export_graph(model: nn.Module, names: tuple[str, ...], limit: int, path: Path) -> None:
    """``torch.onnx.export(dynamo=True)`` of ``model``'s logits to ``path``; a failure is a ConfigError with the
    exporter's own reason."""
    batch, tokens = EXAMPLE_SHAPE
    example = {name: torch.ones(batch, tokens, dtype=torch.long) for name in names}
    dims = {0: torch.export.Dim("batch"), 1: torch.export.Dim("tokens", min=2, max=limit)}
    try:
        with warnings.catch_warnings(), torch.no_grad(), _quiet("torch.onnx"):
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                _Logits(model).eval(), (), kwargs=example, input_names=list(names), output_names=["logits"],
                dynamic_shapes={name: dims for name in names}, dynamo=True, verbose=False,
                custom_translation_table=onnx_ops.TRANSLATIONS,
            )  # fmt: skip
    except Exception as error:  # noqa: BLE001 - the exporter's reason is the message
        raise ConfigError(f"the ONNX exporter failed: {_export_reason(error)}") from error
    program.save(str(path))


@contextmanager
def _quiet(logger_name: str | None) -> Iterator[None]:
    """Log warnings of ``logger_name`` (None: the root logger) silenced for the block: the exporter's notes on
    torchvision's operators, onnxruntime's advice to pre-process before quantizing."""
    logger = logging.getLogger(logger_name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _export_reason(error: Exception) -> str:
    """The innermost cause the exporter reports (its messages end with an exception summary), in one line."""
    lines = [line.strip() for line in str(error).splitlines()]
    causes = [line for line in lines if line.startswith("<class")]
    return (causes[0] if causes else f"{type(error).__name__}: {lines[0] if lines else ''}")[:400]


def _session(ort: Any, path: Path) -> Any:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _eager_logits(model: nn.Module, example: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**example).logits


def _run(session: Any, example: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.from_numpy(session.run(["logits"], {name: value.numpy() for name, value in example.items()})[0])


def _compare(
    ort: Any, graph: Path, model: nn.Module, inputs: list[dict[str, torch.Tensor]], method: str, tolerance: float
) -> list[ExportCheck]:
    """Run every input through the graph and eager ``model``; ConfigError listing the inputs whose logits differ by
    more than ``tolerance`` (or that the graph fails on)."""
    session, checks, failures = _session(ort, graph), [], []
    for example in inputs:
        mask = example["attention_mask"]
        where = f"batch {mask.shape[0]} x {mask.shape[1]} tokens{' padded' if not bool(mask.all()) else ''}"
        try:
            eager = _eager_logits(model, example)
        except ConfigError as error:
            raise ConfigError(
                f"method {method!r}: eager PyTorch fails on a generated input ({where}): {error}"
            ) from None
        try:
            difference = float((_run(session, example) - eager).abs().max())
        except Exception as error:  # noqa: BLE001 - onnxruntime's failure is the reason
            failures.append(f"{where}: onnxruntime failed ({str(error).splitlines()[0][:200]})")
            continue
        if not difference <= tolerance:
            failures.append(f"{where}: logits differ by {difference:.2e}")
        checks.append(ExportCheck(mask.shape[0], mask.shape[1], not bool(mask.all()), difference))
    if failures:
        raise ConfigError(
            f"method {method!r}: the exported graph does not match eager PyTorch (tolerance {tolerance:g}), so it was "
            f"not written: {'; '.join(failures[:4])}{'; ...' if len(failures) > 4 else ''}"
        )
    return checks


def _quantize(graph: Path) -> Path:
    """onnxruntime's dynamic int8 quantization of ``graph`` (QInt8 weights), written beside it."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantized = graph.with_name("model-int8.onnx")
    with _quiet(None):
        quantize_dynamic(str(graph), str(quantized), weight_type=QuantType.QInt8)
    return quantized


def _compare_int8(
    ort: Any, graph: Path, model: nn.Module, inputs: list[dict[str, torch.Tensor]], checks: list[ExportCheck]
) -> list[ExportCheck]:
    """``checks`` with the int8 graph's largest logit difference to eager float32 on the same inputs."""
    session = _session(ort, graph)
    return [
        ExportCheck(check.batch, check.tokens, check.padded, check.max_abs_diff,
                    float((_run(session, example) - _eager_logits(model, example)).abs().max()))
        for check, example in zip(checks, inputs, strict=True)
    ]  # fmt: skip
