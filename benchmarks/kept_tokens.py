"""Which tokens does each selection method keep? Shares of [SEP], punctuation, stop words, word pieces and other
words among the kept tokens after each selecting layer, beside their share in the input, and example sentences.

    python benchmarks/kept_tokens.py CHECKPOINT [--task rt-polarity] [--examples 500] [--out kept_tokens.md]

CHECKPOINT: a densely fine-tuned sequence classifier (e.g. a sweep's dense checkpoint). The schedule is the
selection-quality study's (keep ratios 0.5, 0.25, ... : selection after layers 1 and 2). Stop words are
scikit-learn's English list. Reads only; writes the Markdown file (atomically) and prints it.
"""

from __future__ import annotations

import argparse
import string
from collections import Counter

import torch
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from pyramid_bert import kept_input_positions, pyramidize, unpyramidize
from pyramid_bert.data import load_task
from pyramid_bert.io import atomic_write_text
from pyramid_bert.sweep.presets import SELECTION_RATIOS
from pyramid_bert.training.config import subset_indices

CONFIGS = {
    "CS (euclidean)": dict(method="coreset"),
    "CS cosine": dict(method="coreset", distance="cosine"),
    "CS standardized": dict(method="coreset", distance="standardized"),
    "CS-k-1": dict(method="coreset", m=None),
    "Att": dict(method="attention"),
    "Rand": dict(method="random"),
    "1st": dict(method="first_k"),
}
CATEGORIES = ("[CLS]", "[SEP]", "punctuation", "stop word", "word piece (##)", "other word")
SELECTING_LAYERS = (0, 1)  # layers 1 and 2 of the schedule


def category(token: str) -> str:
    if token in ("[CLS]", "[SEP]"):
        return token
    if token.startswith("##"):
        return "word piece (##)"
    if all(ch in string.punctuation for ch in token):
        return "punctuation"
    return "stop word" if token in ENGLISH_STOP_WORDS else "other word"


def kept_tokens(model, encodings, tokenizer, options) -> list[list[list[str]]]:
    """Per selecting layer, per example, the kept tokens (original order)."""
    pyramidize(model, keep_ratios=list(SELECTION_RATIOS), **options)
    with torch.no_grad():
        model(**encodings)
    positions = kept_input_positions(model)
    unpyramidize(model)
    result = []
    for layer in SELECTING_LAYERS:
        kept, real = positions[layer]
        rows = []
        for row in range(kept.shape[0]):
            ids = encodings["input_ids"][row, kept[row][real[row]]].tolist()
            rows.append(tokenizer.convert_ids_to_tokens(ids))
        result.append(rows)
    return result


def shares(rows: list[list[str]]) -> Counter:
    counts = Counter(category(token) for row in rows for token in row)
    total = sum(counts.values())
    return Counter({name: counts[name] / total for name in CATEGORIES})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--task", default="rt-polarity")
    parser.add_argument("--examples", type=int, default=500)
    parser.add_argument("--out", default="kept_tokens.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    task = load_task(args.task, seed=0)
    model = AutoModelForSequenceClassification.from_pretrained(args.checkpoint).eval()
    tokenizer = AutoTokenizer.from_pretrained(args.checkpoint)
    split = task.splits["dev"]
    chosen = subset_indices(len(split.labels), args.examples, 0).tolist()
    texts = [split.text_a[i] for i in chosen]
    encodings = tokenizer(texts, padding=True, truncation=True, max_length=task.max_length, return_tensors="pt")
    real = [tokenizer.convert_ids_to_tokens(ids[mask.bool()].tolist())
            for ids, mask in zip(encodings["input_ids"], encodings["attention_mask"], strict=True)]  # fmt: skip
    lines = [f"# Kept tokens on {args.task} dev ({len(texts)} examples), keep ratios {list(SELECTION_RATIOS)}\n",
             f"checkpoint: `{args.checkpoint}`\n", "| tokens | layer | " + " | ".join(CATEGORIES) + " |",
             "|---|---|" + "---|" * len(CATEGORIES)]  # fmt: skip
    input_shares = shares(real)
    lines.append("| input (all real tokens) | - | " + " | ".join(f"{100 * input_shares[c]:.1f}" for c in CATEGORIES) + " |")
    examples = {}
    for name, options in CONFIGS.items():
        per_layer = kept_tokens(model, encodings, tokenizer, options)
        for layer, rows in zip(SELECTING_LAYERS, per_layer, strict=True):
            layer_shares = shares(rows)
            lines.append(f"| {name} | {layer + 1} | " + " | ".join(f"{100 * layer_shares[c]:.1f}" for c in CATEGORIES) + " |")
        examples[name] = per_layer[-1][:3]
    lines.append("\nKept after layer 2 (first three sentences):\n")
    for index in range(3):
        lines.append(f"- input: `{' '.join(real[index])}`")
        lines.extend(f"  - {name}: `{' '.join(rows[index])}`" for name, rows in examples.items())
    text = "\n".join(lines) + "\n"
    atomic_write_text(args.out, text)
    print(text)


if __name__ == "__main__":
    main()
