"""What core-set selection at the LRA input layer costs, measured: Gram matrix vs row-by-row distances.

For LRA's lengths (image N = 784 + CLS, Pathfinder-32 N = 1024 + CLS) and the Table 4 keep (70 % attention-space
reduction), times on one batch of random embedding-like states ``[B, N, 64]``, interleaved in one process:

- ``gram, compiled rounds``: :func:`pyramid_bert.selection.kcenter_greedy` (the ``[B, N, N]`` Gram product, then
  the compiled CPU rounds; what the encoder layers use);
- ``gram, torch rounds``: :func:`~pyramid_bert.selection.kcenter_greedy_torch` (the CUDA path);
- ``rows``: :func:`~pyramid_bert.selection.kcenter_greedy_rows` (distance rows of each round's centers only; what
  the LRA input layer uses), for m = 1 and m = 8; and m = k-1 (one round: distances to CLS only);

beside the no-pruning forward of each LRA backbone (random weights, the ``pyramid-bert lra`` defaults), so each
selection time reads as a share of a forward. One torch thread by default:

    OMP_NUM_THREADS=1 python benchmarks/lra_selection_cost.py --batch 64 --repeats 5
"""

from __future__ import annotations

import argparse
import sys

import torch

from pyramid_bert.lra.input_selection import keep_for_space_reduction
from pyramid_bert.lra.models import LraModelConfig, build_lra_model
from pyramid_bert.measure.timing import time_interleaved
from pyramid_bert.selection import kcenter_greedy, kcenter_greedy_rows, kcenter_greedy_torch

LENGTHS = {"lra-image": 784, "lra-pathfinder32": 1024}


def timed_calls(tokens: int, batch: int, hidden: int, seed: int) -> dict[str, object]:
    """name -> zero-argument callable, for one sequence length ``tokens`` (CLS excluded)."""
    generator = torch.Generator().manual_seed(seed)
    total = tokens + 1
    states = torch.randn(batch, total, hidden, generator=generator)
    mask = torch.ones(batch, total, dtype=torch.bool)
    keep = keep_for_space_reduction(total, 0.7)
    calls: dict[str, object] = {
        "select: gram, compiled rounds, m=1": lambda: kcenter_greedy(states, keep, 1, mask),
        "select: gram, torch rounds, m=1": lambda: kcenter_greedy_torch(states, keep, 1, mask),
        "select: rows, m=1": lambda: kcenter_greedy_rows(states, keep, 1, mask),
        "select: rows, m=8": lambda: kcenter_greedy_rows(states, keep, 8, mask),
        "select: one round, m=k-1": lambda: kcenter_greedy_rows(states, keep, None, mask),
    }
    ids = torch.randint(0, 256, (batch, tokens), generator=generator)
    for backbone in ("bigbird", "performer"):
        config = LraModelConfig(backbone=backbone, vocab_size=256, num_labels=10, seq_len=tokens, pad_id=None,
                                hidden=hidden, num_layers=2, heads=2, intermediate=2 * hidden)
        model = build_lra_model(config).eval()

        def forward(model=model) -> None:
            with torch.inference_mode():
                model(ids)

        calls[f"forward: {backbone}, no pruning"] = forward
    return {"keep": keep, "calls": calls}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64, help="examples per call (default 64, the lra timing batch)")
    parser.add_argument("--hidden", type=int, default=64, help="embedding size (default 64)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timed repeats (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"batch {args.batch}, hidden {args.hidden}, {args.threads} thread(s), median of {args.repeats} "
          "interleaved repeats; share = of the Performer's / Big Bird's no-pruning forward\n")
    print("| task | N | k | call | ms (median) | share of Performer fwd | share of Big Bird fwd |")
    print("|---|---|---|---|---|---|---|")
    for task, tokens in LENGTHS.items():
        setup = timed_calls(tokens, args.batch, args.hidden, seed=0)
        stats = time_interleaved(setup["calls"], warmup=1, repeats=args.repeats)
        performer = stats["forward: performer, no pruning"].median
        bigbird = stats["forward: bigbird, no pruning"].median
        for name, timing in stats.items():
            print(f"| {task} | {tokens + 1} | {setup['keep']} | {name} | {1000 * timing.median:.1f} "
                  f"| {100 * timing.median / performer:.0f}% | {100 * timing.median / bigbird:.0f}% |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
