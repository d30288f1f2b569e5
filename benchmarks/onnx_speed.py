"""Per-request latency of exported ONNX graphs under onnxruntime: dense vs pyramid, fp32 and int8, in one process.

    OMP_NUM_THREADS=1 python benchmarks/onnx_speed.py DENSE_FOLDER [--requests 200] [--repeats 2] [--out DIR]

DENSE_FOLDER: a dense rt-polarity classifier (``save_pretrained``). The pyramid variants are its weights with the
selection applied at inference (keep ratios 0.5, 0.25, 0.25, 0.25, 0.25, 0.25; coreset m = 1 and attention), so
their accuracy shows an un-adapted pyramid. Every graph is written by :func:`pyramid_bert.export.export_model`
(checked against eager PyTorch before it is written; int8: onnxruntime ``quantize_dynamic``). Each variant runs on
``--requests`` single test sentences (batch 1, unpadded), the variants' order rotating per sentence; eager PyTorch
dense fp32 is timed alongside for reference. Prints the export reports, the accuracy on those sentences and the
latency table (speedups: medians of paired ratios).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import torch

from pyramid_bert import load_pyramid_model, pyramidize
from pyramid_bert.export import export_model
from pyramid_bert.measure.bench import task_encodings
from pyramid_bert.measure.latency import format_deploy_table, measure_latency, single_sentences, summarize

RATIOS = [0.5, 0.25, 0.25, 0.25, 0.25, 0.25]
PYRAMIDS = {"pyramid CS m=1": dict(method="coreset", m=1), "pyramid Att": dict(method="attention")}


class OrtModel:
    """An onnxruntime session called like the classifier (keyword tensors in, ``.logits`` out), one thread per
    ``torch.get_num_threads()``."""

    def __init__(self, path: Path) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.names = [value.name for value in self.session.get_inputs()]

    def __call__(self, **inputs: torch.Tensor):  # noqa: ANN204
        feed = {name: inputs[name].numpy() for name in self.names}
        logits = self.session.run(["logits"], feed)[0]
        return type("Output", (), {"logits": torch.from_numpy(logits)})()


def exported_variants(folder: Path, work: Path) -> dict[str, OrtModel]:
    """Every graph of the comparison, exported (and checked) into ``work``."""
    dense = load_pyramid_model(str(folder), precision="fp32").eval()
    models = {"dense": dense}
    for name, options in PYRAMIDS.items():
        models[name] = pyramidize(copy.deepcopy(dense), keep_ratios=RATIOS, **options).eval()
    variants = {}
    for name, model in models.items():
        for precision in ("fp32", "int8"):
            path = work / f"{name.replace(' ', '_').replace('=', '')}-{precision}.onnx"
            report = export_model(model, path, precision=precision)
            print(report.summary(), flush=True)
            variants[f"{name} {precision}"] = OrtModel(path)
    return variants


def accuracy(model, sentences, labels) -> float:  # noqa: ANN001
    with torch.inference_mode():
        predicted = [int(model(**inputs).logits.argmax(dim=-1)) for inputs in sentences]
    return sum(p == int(label) for p, label in zip(predicted, labels, strict=True)) / len(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", type=Path, help="keep the graphs here (default: a temporary folder)")
    args = parser.parse_args()
    encodings = task_encodings("rt-polarity", None, args.requests)
    sentences = single_sentences(encodings, args.requests)
    labels = encodings["labels"][: len(sentences)].tolist()
    print(f"{len(sentences)} test sentences, {sum(s['input_ids'].shape[1] for s in sentences) / len(sentences):.1f} "
          f"tokens on average; {torch.get_num_threads()} thread(s)")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="onnx-speed-") as scratch:
        work = args.out or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        models = {"torch dense fp32": load_pyramid_model(str(args.folder), precision="fp32").eval()}
        models.update(exported_variants(args.folder, work))
        print("| variant | accuracy on these sentences |\n|---|---|")
        for name, model in models.items():
            print(f"| {name} | {100 * accuracy(model, sentences, labels):.1f} |", flush=True)
        samples = measure_latency(models, sentences, repeats=args.repeats, warmup=1)
    print(format_deploy_table(summarize(samples, reference="dense fp32"), reference="onnxruntime dense fp32"))
    int8 = [row for row in summarize(samples, reference="dense int8") if row.variant.endswith("int8")]
    print("\nint8 rows against onnxruntime dense int8:")
    print(format_deploy_table(int8, reference="onnxruntime dense int8"))


if __name__ == "__main__":
    main()
