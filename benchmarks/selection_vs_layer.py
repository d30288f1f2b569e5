"""Time of one k-Center-greedy selection against the time of one encoder layer (MiniLM-L6 geometry by default).

    python benchmarks/selection_vs_layer.py [--hidden 384 --heads 12 --intermediate 1536 --n 128 --k 80]

For B in {32, 1} and m in {1, 0.2, k-1}: the compiled CPU path (``kcenter_greedy``), the torch-ops path
(``kcenter_greedy_torch``, the CUDA path), and one dense encoder layer on N tokens, interleaved in one process;
medians over repeats.
"""

from __future__ import annotations

import argparse

import torch
from transformers import BertConfig
from transformers.models.bert.modeling_bert import BertLayer

from pyramid_bert.measure.timing import time_interleaved
from pyramid_bert.selection import kcenter_greedy, kcenter_greedy_torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=384)
    parser.add_argument("--heads", type=int, default=12)
    parser.add_argument("--intermediate", type=int, default=1536)
    parser.add_argument("--n", type=int, default=128)
    parser.add_argument(
        "--k", type=int, default=80, help="tokens kept (80 = layer 1 of Table 9's p=0.25, prune_upto=3)"
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = BertConfig(hidden_size=args.hidden, num_attention_heads=args.heads, intermediate_size=args.intermediate)
    torch.manual_seed(0)
    layer = BertLayer(config).eval()
    print(f"threads={torch.get_num_threads()} N={args.n} k={args.k} hidden={args.hidden}")
    print("| B | m | k-center (compiled) ms | k-center (torch ops) ms | encoder layer ms | compiled / layer |")
    print("|---|---|---|---|---|---|")
    for batch in (32, 1):
        x = torch.randn(batch, args.n, args.hidden)
        for m, label in ((1, "1"), (0.2, "0.2k"), (None, "k-1")):
            with torch.inference_mode():
                times = time_interleaved(
                    {
                        "compiled": lambda x=x, m=m: kcenter_greedy(x, args.k, m),
                        "torch": lambda x=x, m=m: kcenter_greedy_torch(x, args.k, m),
                        "layer": lambda x=x: layer(x),
                    },
                    warmup=3,
                    repeats=args.repeats,
                )
            compiled, ops, dense = (1e3 * times[name].median for name in ("compiled", "torch", "layer"))
            print(f"| {batch} | {label} | {compiled:.3f} | {ops:.3f} | {dense:.3f} | {compiled / dense:.1%} |")


if __name__ == "__main__":
    main()
