#!/usr/bin/env bash
# Speed of the selection-quality study's configurations (benchmarks/selection_quality.md): real (length-sorted)
# and paper (padded to N) speedups over 512 rt-polarity test sentences, batch 128, one thread, the study's keep
# ratios 0.5 0.25 ... 0.25. Run on an idle machine (about 11 min): `bash benchmarks/selection_quality_speed.sh OUT_DIR`.
set -euo pipefail
out="${1:-runs/selection_speed}"
mkdir -p "$out"
bench() { pyramid-bert bench --task rt-polarity --model minilm-l6 --batch-sizes 128 --examples 512 --threads 1 \
  --repeats 3 --schedule ratio --configs "0.5/0.25/0.25/0.25/0.25/0.25" --m 1 "$@"; }
bench --method first_k --csv "$out/first_k.csv"
bench --method first_k --merge --csv "$out/first_k_merge.csv"
bench --method attention --csv "$out/attention.csv"
bench --method random --csv "$out/random.csv"
bench --method coreset --csv "$out/coreset.csv"
bench --method coreset --distance cosine --duplicity-attention --merge --csv "$out/coreset_plus.csv"
