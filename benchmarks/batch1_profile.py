"""What a batch-1 forward spends its time on: dense int8 vs pyramid int8 (keep ratios 0.5, 0.25, ...), one unpadded
test sentence per call, torch.profiler's self-CPU time per operator group, and the pyramid's selection share.

    OMP_NUM_THREADS=1 python benchmarks/batch1_profile.py DENSE_FOLDER [--requests 100]
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

GROUPS = {"int8 matmul (quantized linear)": ("quantized::linear_dynamic",), "attention (sdpa)": ("scaled_dot_product",),
          "layer norm / gelu / softmax": ("layer_norm", "gelu", "softmax"), "embedding": ("embedding",)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder")
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    dense = AutoModelForSequenceClassification.from_pretrained(args.folder).eval()
    settings = PyramidSettings(None, "coreset", keep_ratios=[0.5] + [0.25] * 5, options=SelectionOptions(m=1))
    models = build_variants(dense, settings, deploy_variants("int8")[1:])
    sentences = single_sentences(task_encodings("rt-polarity", None, None), args.requests)
    print(f"{len(sentences)} sentences, mean {sum(s['input_ids'].shape[1] for s in sentences) / len(sentences):.1f} tokens")
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
        print(f"\n## {name}: {1e3 * wall / len(sentences):.2f} ms per request under the profiler; {len(events)} ops, "
              f"{sum(e.count for e in events) / len(sentences):.0f} op calls per request")
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
