#!/usr/bin/env bash
# Real speedups (benchmarks/real_speedup.md): dense vs pyramid over real rt-polarity inputs, every batching mode,
# fixed and keep-ratio schedules, batch 128 and batch 1 (with and without torch.compile), MiniLM and BERT-base
# geometries. Run on an idle machine: `bash benchmarks/real_speedup.sh OUT_DIR` (about 20 minutes on 2 cores); the
# committed CSVs are in benchmarks/real_speedup/.
set -euo pipefail
out="${1:-runs/real_speedup}"
mkdir -p "$out"
bench() { pyramid-bert bench --task rt-polarity --m 1 "$@"; }

# batch 128, MiniLM-L6 (6 x 384), 512 test sentences, 2 threads
bench --model minilm-l6 --batch-sizes 128 --examples 512 --threads 2 --repeats 5 --schedule fixed \
  --configs "32/16/16/16/16/16;16/8/8/8/8/8" --csv "$out/minilm_b128_fixed.csv"
bench --model minilm-l6 --batch-sizes 128 --examples 512 --threads 2 --repeats 5 --schedule ratio \
  --configs "2:0.25,1:0.5" --csv "$out/minilm_b128_ratio.csv"

# batch 128, BERT-base (12 x 768), one batch of 128 sentences, 2 threads
bench --model bert-base --batch-sizes 128 --examples 128 --threads 2 --repeats 3 --schedule fixed \
  --configs "3:0.25" --csv "$out/bertbase_b128_fixed.csv"
bench --model bert-base --batch-sizes 128 --examples 128 --threads 2 --repeats 3 --schedule ratio \
  --configs "3:0.25" --csv "$out/bertbase_b128_ratio.csv"

# batch 1 (each sentence alone, unpadded in the dynamic and sorted modes), eager and torch.compile, 1 thread
bench --model minilm-l6 --batch-sizes 1 --examples 200 --threads 1 --repeats 3 --schedule ratio \
  --configs "2:0.25" --compile --csv "$out/minilm_b1_ratio.csv"
bench --model minilm-l6 --batch-sizes 1 --examples 200 --threads 1 --repeats 3 --schedule fixed \
  --configs "2:0.25" --compile --csv "$out/minilm_b1_fixed.csv"

# the tables of benchmarks/real_speedup.md, rebuilt from the CSVs above
python benchmarks/bench_table.py "$out/minilm_b128_fixed.csv" "$out/minilm_b128_ratio.csv" \
  "$out/bertbase_b128_fixed.csv" "$out/bertbase_b128_ratio.csv"
python benchmarks/bench_table.py "$out/minilm_b1_fixed.csv" "$out/minilm_b1_ratio.csv"
