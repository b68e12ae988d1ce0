#!/usr/bin/env bash
# Benchmarks, each against a baseline measured in the same run on the same machine (make bench).
# usage: bench/run.sh [BUILD_DIR]; THREADS=N to set the thread count (default: all cores);
# DEVICE=cuda (or cuda:N, auto) runs the model benches and their plain-PyTorch peers on that device
# (MECHSCOPE_BENCH_DEVICE to them); PYTHON= the interpreter with torch (default /usr/bin/python3).
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
MODEL=$BUILD/bench/gpt2-small-random   # GPT-2 small's shape, random weights (generated once, ~500 MB)
THREADS=${THREADS:-$(nproc)}
export MECHSCOPE_BENCH_DEVICE=${DEVICE:-${MECHSCOPE_BENCH_DEVICE:-cpu}}
PYTHON=${PYTHON:-/usr/bin/python3}
OUT=$BUILD/bench/results
mkdir -p "$OUT"
# mechscope restarts itself with a better OPENBLAS_CORETYPE when OpenBLAS mistakes the CPU for an old
# one (src/core/blas.h); the bench binaries and the PyTorch baselines get the same kernels from here.
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  core=$("$BUILD/mechscope" --version | sed -n 's/.*OPENBLAS_CORETYPE=\([A-Za-z0-9_]*\) set by mechscope.*/\1/p')
  if [ -n "$core" ]; then export OPENBLAS_CORETYPE=$core; fi
fi
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), threads $THREADS, device $MECHSCOPE_BENCH_DEVICE"
"$BUILD/bench_forward" "$MODEL" "$THREADS" > "$OUT/forward.json"
echo "OpenBLAS kernels: $("$PYTHON" -c "import json,sys; print(json.load(open(sys.argv[1]))['openblas_kernels'] or 'not OpenBLAS')" "$OUT/forward.json") (OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-unset})"
"$PYTHON" bench/torch_gpt2.py "$MODEL" "$THREADS" > "$OUT/torch.json"
"$BUILD/bench_patch" "$MODEL" "$THREADS" 8 > "$OUT/patch.json"
"$PYTHON" bench/torch_patch.py "$MODEL" "$THREADS" > "$OUT/torch_patch.json"  # plain PyTorch and TransformerLens peers
"$BUILD/bench_trace" "$MODEL" "$THREADS" > "$OUT/trace.json"
"$BUILD/bench_tokenize" . > "$OUT/tokenize.json"
"$PYTHON" bench/report.py "$OUT"
"$BUILD/bench_attnviz" "$BUILD/bench/bert-base-random" "$THREADS" 1 150 > "$OUT/attnviz.json"
"$PYTHON" bench/torch_attnviz.py "$BUILD/bench/bert-base-random" "$THREADS" 1 150 > "$OUT/torch_attnviz.json"
"$PYTHON" bench/report_attnviz.py "$OUT"
"$BUILD/bench_sae" stats "$THREADS" > "$OUT/sae_stats.json"
"$BUILD/bench_sae" tsea "$THREADS" > "$OUT/sae_tsea.json"
"$PYTHON" bench/bench_sae_torch.py stats "$THREADS" 4096 > "$OUT/sae_stats_torch.json"  # SAELens's way needs ~5 copies of the projection
"$PYTHON" bench/bench_sae_torch.py tsea "$THREADS" 1000 > "$OUT/sae_tsea_torch.json"
"$PYTHON" bench/bench_sae_report.py "$OUT"
"$BUILD/bench_heads" "$MODEL" "$THREADS" > "$OUT/heads.json"
"$PYTHON" bench/torch_heads.py "$MODEL" "$THREADS" "$OUT/heads.json" 7 > "$OUT/torch_heads.json"  # every 7th prompt: ~4 TFLOP otherwise
"$PYTHON" bench/report_heads.py "$OUT"
