"""Which int8 path? Speed and accuracy of the int8 candidates against fp32, dense and pyramid, in one process.

    OMP_NUM_THREADS=1 flock /tmp/pyramid-timing.lock python benchmarks/precision_candidates.py DENSE_FOLDER \
        [--torchao-path DIR] [--requests 100] [--examples 640] [--csv FILE]

DENSE_FOLDER: a dense rt-polarity classifier (e.g. the main job's seed-0 dense fine-tune). Candidates (each a
:class:`pyramid_bert.measure.latency.Variant`, timed with the deployment benchmark's per-request and sorted-batch
protocol, all against ``dense fp32``):

- ``torch.ao`` ``quantize_dynamic`` (what ``--precision int8`` does), dense and pyramid;
- torchao's ``Int8DynamicActivationInt8WeightConfig`` (eager), dense and pyramid, when torchao imports (from
  ``--torchao-path`` if given: it is not a dependency of the project);
- onnxruntime, fp32 and dynamic int8 (``onnxruntime.quantization.quantize_dynamic``), dense only, when onnxruntime
  imports; the pyramid model's export is attempted and its error printed.

The pyramid schedule is keep ratios 0.5, 0.25, 0.25, ... (the issue's), coreset m = 1. Accuracy: test accuracy of
each variant on the sampled test sentences (the dense weights with selection applied at inference only, so the
pyramid rows show the int8 effect, not a tuned pyramid's accuracy).
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import traceback
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification

from pyramid_bert import pyramidize
from pyramid_bert.io import write_csv_atomic
from pyramid_bert.measure.bench import task_encodings
from pyramid_bert.measure.latency import DEFAULT_VARIANTS, Variant, deploy_samples, format_deploy_table, summarize
from pyramid_bert.spec import PyramidSettings, SelectionOptions
from pyramid_bert.training.batching import make_batches, restore_order

RATIOS = [0.5, 0.25, 0.25, 0.25, 0.25, 0.25]


def torchao_builder(pyramid: bool):
    from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

    def build(dense, settings):
        model = copy.deepcopy(dense)
        quantize_(model, Int8DynamicActivationInt8WeightConfig())
        return pyramidize(model, settings=settings).eval() if pyramid else model.eval()

    return build


class OrtModel:
    """An onnxruntime session called like the classifier; returns an object with ``.logits``."""

    def __init__(self, path: str) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
        self.session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    def __call__(self, input_ids, attention_mask, **_):
        logits = self.session.run(None, {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()})[0]
        return type("Output", (), {"logits": torch.from_numpy(logits)})()


def export_onnx(model, path: str) -> None:
    ids = torch.randint(1000, 2000, (2, 16))
    torch.onnx.export(
        model, (ids, torch.ones_like(ids)), path, input_names=["input_ids", "attention_mask"], output_names=["logits"],
        dynamic_axes={name: {0: "batch", 1: "tokens"} for name in ("input_ids", "attention_mask")}, dynamo=False,
        opset_version=17,
    )  # fmt: skip


def ort_builders(folder: Path) -> list[Variant]:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    work = Path(tempfile.mkdtemp(prefix="precision-onnx-"))
    dense = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    export_onnx(dense, str(work / "dense.onnx"))
    quantize_dynamic(str(work / "dense.onnx"), str(work / "dense-int8.onnx"), weight_type=QuantType.QInt8)
    try:
        export_onnx(pyramidize(copy.deepcopy(dense), keep_ratios=RATIOS), str(work / "pyramid.onnx"))
        print("pyramid export: succeeded (legacy tracer: its keep counts are traced as constants)")
    except Exception as error:  # noqa: BLE001 - the error is what we measure
        print("pyramid export failed:", type(error).__name__, str(error).splitlines()[0][:300])
        traceback.print_exc(limit=2)
    return [
        Variant("onnxruntime dense fp32", lambda d, s: OrtModel(str(work / "dense.onnx"))),
        Variant("onnxruntime dense int8", lambda d, s: OrtModel(str(work / "dense-int8.onnx"))),
    ]


def accuracy(model, encodings) -> float:
    batches = make_batches(encodings, 64, "sorted")
    with torch.inference_mode():
        logits = restore_order(batches, [model(**batch.inputs).logits for batch in batches])
    return float((logits.argmax(dim=-1) == encodings["labels"]).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--torchao-path")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--examples", type=int, default=640)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--csv")
    args = parser.parse_args()
    if args.torchao_path:
        sys.path.append(args.torchao_path)
    variants = list(DEFAULT_VARIANTS)
    try:
        variants += [Variant("torchao dense int8", torchao_builder(False)), Variant("torchao pyramid int8", torchao_builder(True))]
    except ImportError as error:
        print("torchao: not measured:", error)
    try:
        variants += ort_builders(args.folder)
    except ImportError as error:
        print("onnxruntime: not measured:", error)
    dense = AutoModelForSequenceClassification.from_pretrained(args.folder).eval()
    settings = PyramidSettings(None, "coreset", keep_ratios=RATIOS, options=SelectionOptions(m=1))
    encodings = task_encodings("rt-polarity", None, args.examples)
    from pyramid_bert.measure.latency import build_variants

    models = build_variants(dense, settings, variants)
    print("| variant | test accuracy (sampled sentences) |\n|---|---|")
    for name, model in models.items():
        print(f"| {name} | {100 * accuracy(model, encodings):.1f} |", flush=True)
    samples = deploy_samples(dense, settings, encodings, batch_sizes=[1, 32], requests=args.requests,
                             repeats=args.repeats, variants=variants)  # fmt: skip
    print(format_deploy_table(summarize(samples)))
    if args.csv:
        write_csv_atomic(args.csv, [sample.to_dict() for sample in samples])


if __name__ == "__main__":
    main()
