"""What a forward spends its time on: dense int8 vs pyramid int8 (keep ratios 0.5, 0.25, ...), one unpadded test
sentence per call (or, with ``--batch-size B``, length-sorted batches of B padded per batch, as ``bench --latency``
times them), torch.profiler's self-CPU time per operator group, and the pyramid's selection share.

    OMP_NUM_THREADS=1 python benchmarks/batch1_profile.py DENSE_FOLDER [--requests 100] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile
from transformers import AutoModelForSequenceClassification

from pyramid_bert.measure.bench import selection_timer, task_encodings
from pyramid_bert.measure.latency import build_variants, deploy_variants, single_sentences
from pyramid_bert.spec import PyramidSettings, SelectionOptions
from pyramid_bert.training.batching import make_batches

GROUPS = {"int8 matmul (quantized linear)": ("quantized::linear_dynamic",), "attention (sdpa)": ("scaled_dot_product",),
          "layer norm / gelu / softmax": ("layer_norm", "gelu", "softmax"), "embedding": ("embedding",)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--requests", type=int, default=100, help="test sentences (default 100)")
    parser.add_argument("--batch-size", type=int, default=1, help="1: one unpadded sentence per call (default)")
    args = parser.parse_args()
    dense = AutoModelForSequenceClassification.from_pretrained(args.folder).eval()
    settings = PyramidSettings(None, "coreset", keep_ratios=[0.5] + [0.25] * 5, options=SelectionOptions(m=1))
    models = build_variants(dense, settings, deploy_variants("int8")[1:])
    encodings = task_encodings("rt-polarity", None, None)
    sentences = single_sentences(encodings, args.requests)
    print(f"{len(sentences)} sentences, mean {sum(s['input_ids'].shape[1] for s in sentences) / len(sentences):.1f} tokens")
    if args.batch_size > 1:  # the same sentences, sorted and padded per batch
        first = {key: value[: args.requests] for key, value in encodings.items()}
        sentences = [batch.inputs for batch in make_batches(first, args.batch_size, "sorted")]
        print(f"{len(sentences)} batches of up to {args.batch_size}, length-sorted, padded per batch")
    for name, model in models.items():
        with torch.inference_mode():
            for inputs in sentences[:10]:
                model(**inputs)
            with profile(activities=[ProfilerActivity.CPU]) as prof:
                start = time.perf_counter()
                for inputs in sentences:
                    model(**inputs)
                wall = time.perf_counter() - start
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        print(f"\n## {name}: {1e3 * wall / len(sentences):.2f} ms per call under the profiler; {len(events)} ops, "
              f"{sum(e.count for e in events) / len(sentences):.0f} op calls per call")
        for group, keys in GROUPS.items():
            share = sum(e.self_cpu_time_total for e in events if any(k in e.key for k in keys)) / total
            print(f"- {group}: {100 * share:.1f}% of self CPU time")
        top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:8]
        print("- top ops: " + ", ".join(f"{e.key} {100 * e.self_cpu_time_total / total:.1f}%" for e in top))
        if name.startswith("pyramid"):
            with torch.inference_mode(), selection_timer(model) as spent:
                start = time.perf_counter()
                for inputs in sentences:
                    model(**inputs)
                wall = time.perf_counter() - start
            print(f"- selection (k-center + gather, timed around each selecting call): {100 * sum(spent) / wall:.1f}% of the forward")


if __name__ == "__main__":
    main()
