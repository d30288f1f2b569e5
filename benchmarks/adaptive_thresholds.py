"""Keep thresholds calibrated to keep ratios on rt-polarity dev sentences: realised tokens kept per layer.

Run: OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/adaptive_thresholds.py [--model minilm-l6] [--examples 512]
The model is the catalog's pretrained MiniLM-L6 with a fresh head (its attention, not a fine-tuned one's) unless
--model names a fine-tuned folder. Calibrated on the first half of the sampled dev sentences, reported on the other.
"""

from __future__ import annotations

import argparse

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from pyramid_bert import data
from pyramid_bert.data.models import resolve_model
from pyramid_bert.data.tokenize import tokenize_split
from pyramid_bert.measure.adaptive import calibrate_thresholds, count_summary, realised_counts, realised_speedup
from pyramid_bert.schedule import sequence_ratios
from pyramid_bert.training.batching import make_batches


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="minilm-l6")
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = data.load_task("rt-polarity")
    folder = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encodings = tokenize_split(tokenizer, task, "dev", task.max_length)
    order = torch.randperm(len(encodings["input_ids"]), generator=torch.Generator().manual_seed(0))[: args.examples]
    half = len(order) // 2
    parts = [{k: v[idx] for k, v in encodings.items() if k != "labels"} for idx in (order[:half], order[half:])]
    calibrate, report = (make_batches(p, args.batch_size, "sorted") for p in parts)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=2).eval()
    layers = model.config.num_hidden_layers
    results = []
    for p, upto in ((0.5, 1), (0.5, 3), (0.25, 3), (0.25, 1)):
        targets = sequence_ratios(layers, p, upto)
        thresholds = calibrate_thresholds(model, targets, calibrate)
        realised = realised_counts(model, report)
        summary = count_summary(realised)
        results.append({"targets": targets, "thresholds": thresholds, "layers": summary,
                        "predicted_speedup": realised_speedup(model, realised)})  # fmt: skip
        print(f"p={p} prune_upto={upto}: thresholds " + ", ".join(f"{t:.3f}" for t in thresholds))
        for j, (target, layer) in enumerate(zip(targets, summary, strict=True), start=1):
            print(f"  layer {j}: target {target:.3f} realised {layer['keep_ratio']:.3f}  kept {layer['mean']:.1f} "
                  f"+- {layer['std']:.1f} (min {layer['min']:.0f}, max {layer['max']:.0f})")  # fmt: skip
        speed = results[-1]["predicted_speedup"]
        print(
            f"  FLOPs-model speedup: batched (sorted) {speed['batched']:.2f}X, per example {speed['per_example']:.2f}X"
        )
    real = realised.real.double()
    print(f"real tokens per sentence: mean {real.mean():.1f} +- {real.std():.1f}; N = {task.max_length}")


if __name__ == "__main__":
    main()
