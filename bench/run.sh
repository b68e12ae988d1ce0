#!/usr/bin/env bash
# Benchmarks, each against a baseline measured in the same run on the same machine (make bench).
# usage: bench/run.sh [BUILD_DIR]; THREADS=N to set the thread count (default: all cores).
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
MODEL=$BUILD/bench/gpt2-small-random   # GPT-2 small's shape, random weights (generated once, ~500 MB)
THREADS=${THREADS:-$(nproc)}
OUT=$BUILD/bench/results
mkdir -p "$OUT"
# mechscope restarts itself with a better OPENBLAS_CORETYPE when OpenBLAS mistakes the CPU for an old
# one (src/core/blas.h); the bench binaries and the PyTorch baselines get the same kernels from here.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  core=$("$BUILD/mechscope" --version | sed -n 's/.*OPENBLAS_CORETYPE=\([A-Za-z0-9_]*\) set by mechscope.*/\1/p')
  if [ -n "$core" ]; then export OPENBLAS_CORETYPE=$core; fi
fi
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), threads $THREADS"
"$BUILD/bench_forward" "$MODEL" "$THREADS" > "$OUT/forward.json"
echo "OpenBLAS kernels: $(/usr/bin/python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['openblas_kernels'] or 'not OpenBLAS')" "$OUT/forward.json") (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"
/usr/bin/python3 bench/torch_gpt2.py "$MODEL" "$THREADS" > "$OUT/torch.json"
"$BUILD/bench_patch" "$MODEL" "$THREADS" 8 > "$OUT/patch.json"
"$BUILD/bench_trace" "$MODEL" "$THREADS" > "$OUT/trace.json"
"$BUILD/bench_tokenize" . > "$OUT/tokenize.json"
/usr/bin/python3 bench/report.py "$OUT"
"$BUILD/bench_attnviz" "$BUILD/bench/bert-base-random" "$THREADS" 1 150 > "$OUT/attnviz.json"
/usr/bin/python3 bench/torch_attnviz.py "$BUILD/bench/bert-base-random" "$THREADS" 1 150 > "$OUT/torch_attnviz.json"
/usr/bin/python3 bench/report_attnviz.py "$OUT"
"$BUILD/bench_sae" stats "$THREADS" > "$OUT/sae_stats.json"
"$BUILD/bench_sae" tsea "$THREADS" > "$OUT/sae_tsea.json"
/usr/bin/python3 bench/bench_sae_torch.py stats "$THREADS" 4096 > "$OUT/sae_stats_torch.json"  # SAELens's way needs ~5 copies of the projection
/usr/bin/python3 bench/bench_sae_torch.py tsea "$THREADS" 1000 > "$OUT/sae_tsea_torch.json"
/usr/bin/python3 bench/bench_sae_report.py "$OUT"
"$BUILD/bench_heads" "$MODEL" "$THREADS" > "$OUT/heads.json"
/usr/bin/python3 bench/torch_heads.py "$MODEL" "$THREADS" "$OUT/heads.json" 7 > "$OUT/torch_heads.json"  # every 7th prompt: ~4 TFLOP otherwise
/usr/bin/python3 bench/report_heads.py "$OUT"
