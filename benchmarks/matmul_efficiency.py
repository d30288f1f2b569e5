"""How matmul time scales with the token count: the bound on pyramid speedups at small batches.

    python benchmarks/matmul_efficiency.py [--threads 2]

For the FFN input projection of each geometry (hidden -> intermediate) and batch sizes 1 and 32, times one
``nn.Linear`` on ``[B, t, hidden]`` for t in {128, 80, 64, 50, 32, 16} and prints time, achieved GFLOP/s, and the
time relative to t = 128 beside the FLOPs ratio t / 128. Where the time ratio stays well above t / 128, the
shorter sequence cannot deliver the speedup the FLOPs model predicts, whatever the token selection costs.
"""

from __future__ import annotations

import argparse

import torch

from pyramid_bert.measure.timing import time_interleaved

GEOMETRIES = {"minilm-l6": (384, 1536), "bert-base": (768, 3072)}
TOKENS = (128, 80, 64, 50, 32, 16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"threads={torch.get_num_threads()}")
    print("| geometry | B | tokens | ms | GFLOP/s | time / time(128) | FLOPs ratio |")
    print("|---|---|---|---|---|---|---|")
    for name, (hidden, intermediate) in GEOMETRIES.items():
        linear = torch.nn.Linear(hidden, intermediate).eval()
        for batch in (1, 32):
            inputs = {t: torch.randn(batch, t, hidden) for t in TOKENS}
            with torch.inference_mode():
                times = time_interleaved(
                    {t: (lambda x=x, linear=linear: linear(x)) for t, x in inputs.items()},
                    warmup=5,
                    repeats=args.repeats,
                )
            base = times[128].median
            for t in TOKENS:
                seconds = times[t].median
                gflops = 2 * batch * t * hidden * intermediate / seconds / 1e9
                print(
                    f"| {name} | {batch} | {t} | {1e3 * seconds:.3f} | {gflops:.1f} | {seconds / base:.2f} | {t / 128:.2f} |"
                )


if __name__ == "__main__":
    main()
