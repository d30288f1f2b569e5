#!/usr/bin/env bash
# Real speedups per encoder family (benchmarks/families.md): dense vs pyramid (Coreset, m = 1) over real rt-polarity
# inputs, length-sorted batches (the real speedup) beside the paper's padded protocol, on each family's -small
# (MiniLM-L6 shape) and -base geometry with random weights. One thread, every run under the timing lock:
# `bash benchmarks/families.sh OUT_DIR [MODEL ...]` (default: every family geometry below); SCHEDULES="fixed" skips
# the keep-ratio runs.
set -euo pipefail
out="${1:-runs/families}"
shift || true
mkdir -p "$out"
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(minilm-l6 distilbert-small albert-small deberta-small modernbert-small bert-base
  distilbert-base albert-base deberta-base modernbert-base)
bench() { OMP_NUM_THREADS=1 flock /tmp/pyramid-timing.lock pyramid-bert bench --task rt-polarity --m 1 --threads 1 "$@"; }
for model in "${models[@]}"; do
  case "$model" in *-base) examples=128 ;; *) examples=256 ;; esac
  for schedule in ${SCHEDULES:-fixed ratio}; do
    bench --model "$model" --batch-sizes 32 --examples "$examples" --repeats 3 --schedule "$schedule" \
      --configs 3:0.25 --csv "$out/${model}_${schedule}.csv" --force
  done
done
