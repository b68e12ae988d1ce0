#!/usr/bin/env bash
# Benchmarks, each against a baseline measured in the same run on the same machine.
# usage: bench/run.sh [BUILD_DIR]   (make bench)
set -euo pipefail
BUILD=${1:-build}
cd "$(dirname "$0")/.."
MODEL=$BUILD/bench/gpt2-small-random
THREADS=${THREADS:-$(nproc)}
echo "machine: $(lscpu | sed -n 's/^Model name: *//p') ($(nproc) cores), threads $THREADS"
ms=$("$BUILD/bench_forward" "$MODEL" "$THREADS")
pt=$(/usr/bin/python3 bench/torch_gpt2.py "$MODEL" "$THREADS")
/usr/bin/python3 - "$ms" "$pt" <<'PY'
import json, sys
ms, pt = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print("GPT-2-small-shaped model (124M parameters, random weights), median times")
print(f"{'measure':<22}{'mechscope':>12}{'PyTorch':>12}{'ratio':>9}")
for k, label in (("load_s", "load (s)"), ("forward_16_s", "forward 16 tok (ms)"), ("forward_256_s", "forward 256 tok (ms)")):
    scale = 1 if k == "load_s" else 1000
    print(f"{label:<22}{ms[k]*scale:>12.3f}{pt[k]*scale:>12.3f}{pt[k]/ms[k]:>8.2f}x")
PY
