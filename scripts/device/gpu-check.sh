#!/usr/bin/env bash
# Issue 19's device check, in one run on a GPU machine (a PyTorch wheel with CUDA installed, no
# internet, this working tree copied in; results under $OUT). Each step has its own time limit so a
# slow or failing step still leaves the others' results; the whole run fits in about 9 minutes.
#   1. environment: nvidia-smi, the wheel's torch (version, CUDA, C++ ABI, cmake prefix)
#   2. build tools: what is missing is unpacked from .debs/ (scripts/device/fetch-debs.sh, run where
#      there is internet; carry .debs with the run) into .debs/root
#   3. configure build-cuda against the wheel's libtorch (its TorchConfig; without the CUDA toolkit
#      that fails, and MECHSCOPE_TORCH_ROOT links the wheel's libraries directly), build everything
#   4. mechscope --version, info --device, info --device cuda
#   5. the device tests (MECHSCOPE_TEST_DEVICE=cuda): test_models Device*, test_cli DeviceCli*
#   6. the whole suite with MECHSCOPE_TEST_DEVICE=cuda MECHSCOPE_DEVICE=cuda (every command on the GPU)
#   7. the patching peers on the GPU first (bench_patch, then bench/torch_patch.py: the same resid_pre
#      sweep as a plain PyTorch loop and, where transformer_lens is importable, as TransformerLens
#      run_with_hooks on a HookedTransformer of the same weights; "TransformerLens not installed"
#      otherwise), then the other benches with DEVICE=cuda (bench/run.sh) in the time that is left
# usage (on the GPU machine): OUT=/some/dir bash scripts/device/gpu-check.sh
# FORCE_DEBS=1 uses .debs/ even when the machine seems to have everything; SKIP_BENCH=1 stops after the
# suite (both for rehearsing the script where there is no GPU).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
ROOT=$PWD
OUT=${OUT:-$ROOT/gpu-out}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
JOBS=${JOBS:-$(nproc)}
BUILD=${BUILD:-build-cuda}
T0=$(date +%s)
exec > >(tee -a "$OUT/gpu-check.log") 2>&1

# step NAME LIMIT_S CMD...: runs CMD with its output in $OUT/NAME.log; records rc and seconds.
step() {
  local name=$1 limit=$2 start rc
  shift 2
  start=$(date +%s)
  echo "== $name (limit ${limit}s, at $((start - T0))s)"
  timeout -k 10 "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  echo "$name rc=$rc $(($(date +%s) - start))s" | tee -a "$OUT/steps.txt"
  tail -n 8 "$OUT/$name.log"
  return "$rc"
}

PY=${PYTHON:-}
if [[ -z $PY ]]; then
  for p in python3 python /usr/bin/python3; do
    if command -v "$p" > /dev/null && "$p" -c 'import torch' 2> /dev/null; then PY=$(command -v "$p"); break; fi
  done
fi
[[ -n $PY ]] || { echo "no python with torch found (set PYTHON=)"; exit 1; }

# 1. environment
{
  date -u
  uname -a
  nproc
  nvidia-smi || true
  "$PY" - << 'PYEOF'
import os, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(),
      "gpus", torch.cuda.device_count())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0))
print("cxx11_abi", int(torch.compiled_with_cxx11_abi()))
print("cmake_prefix_path", torch.utils.cmake_prefix_path)
print("torch_root", os.path.dirname(torch.__file__))
PYEOF
  for t in cmake ninja pkg-config g++ nvcc; do echo "$t: $(command -v "$t" || echo missing)"; done
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
TORCH_PREFIX=$("$PY" -c 'import torch; print(torch.utils.cmake_prefix_path)')
TORCH_ROOT=$("$PY" -c 'import os, torch; print(os.path.dirname(torch.__file__))')
TORCH_ABI=$("$PY" -c 'import torch; print(int(torch.compiled_with_cxx11_abi()))')

# 2. build tools and headers, from .debs/ when missing here
have_deps() {
  command -v cmake > /dev/null && command -v ninja > /dev/null && command -v pkg-config > /dev/null &&
    pkg-config --exists pangocairo libutf8proc 2> /dev/null && [[ -e /usr/include/nlohmann/json.hpp ]] &&
    [[ -e /usr/include/gtest/gtest.h ]] && [[ -e /usr/include/zlib.h ]]
}
PREFIX_ARGS=()
if [[ ${FORCE_DEBS:-0} == 1 ]] || ! have_deps; then
  if compgen -G ".debs/*.deb" > /dev/null; then
    P=$ROOT/.debs/root
    mkdir -p "$P"
    for d in .debs/*.deb; do dpkg -x "$d" "$P"; done
    if compgen -G ".debs/wheels/*.whl" > /dev/null; then
      "$PY" -m pip install --no-index --find-links .debs/wheels --target "$ROOT/.debs/pip" cmake ninja > /dev/null 2>&1 &&
        export PATH=$ROOT/.debs/pip/bin:$PATH
    fi
    L=$P/usr/lib/x86_64-linux-gnu
    export PATH=$PATH:$P/usr/bin
    export LD_LIBRARY_PATH=$L:$P/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    # The .pc files say prefix=/usr: the sysroot puts their paths under the prefix.
    export PKG_CONFIG_LIBDIR=$L/pkgconfig:$P/usr/share/pkgconfig
    export PKG_CONFIG_SYSROOT_DIR=$P
    export LIBRARY_PATH=$L${LIBRARY_PATH:+:$LIBRARY_PATH}
    export CPATH=$P/usr/include${CPATH:+:$CPATH}
    export FONTCONFIG_PATH=$P/etc/fonts
    PREFIX_ARGS=(-DCMAKE_PREFIX_PATH="$TORCH_PREFIX;$P/usr" "-DCMAKE_EXE_LINKER_FLAGS=-Wl,-rpath-link,$L -Wl,-rpath,$L")
    echo "unpacked $(find .debs -maxdepth 1 -name '*.deb' | wc -l) .debs into $P"
  else
    echo "build dependencies are missing and there is no .debs/ (run scripts/device/fetch-debs.sh where there is internet)"
  fi
fi
[[ ${#PREFIX_ARGS[@]} -gt 0 ]] || PREFIX_ARGS=(-DCMAKE_PREFIX_PATH="$TORCH_PREFIX")

# plotly.js is compiled in and the tests read the GPT-2 vocabulary: node_modules from .debs/ when absent.
if [[ ! -e node_modules/plotly.js-dist-min/plotly.min.js && -d .debs/node_modules ]]; then
  rm -rf node_modules
  cp -r .debs/node_modules node_modules
fi

# 3. configure and build
GEN=(-G Ninja)
command -v ninja > /dev/null || GEN=()
if ! step configure 120 cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${PREFIX_ARGS[@]}"; then
  echo "TorchConfig failed (no CUDA toolkit?): linking the wheel's libraries directly"
  rm -rf "$BUILD"
  step configure-root 120 cmake -S . -B "$BUILD" "${GEN[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo "${PREFIX_ARGS[@]}" \
    -DMECHSCOPE_TORCH_ROOT="$TORCH_ROOT" -DMECHSCOPE_TORCH_CXX11_ABI="$TORCH_ABI"
fi
cp "$BUILD/CMakeCache.txt" "$OUT/" 2> /dev/null
step build 330 cmake --build "$BUILD" -j "$JOBS"

# 4. what ran
M=$BUILD/mechscope
step runtime 30 bash -c "'$M' --version; '$M' info --device; '$M' info --device cuda --json"

# 5. the device tests first (the rest of the suite may run out of time)
export MECHSCOPE_TEST_DEVICE=cuda
step device-tests 150 bash -c "'$BUILD/test_models' --gtest_filter='*Device*:RuntimeInfo*:CheckDtypeOn*'; a=\$?; \
  '$BUILD/test_cli' --gtest_filter='DeviceCli*'; exit \$((a | \$?))"

# 6. the whole suite, every command on the GPU (about 100 s are kept for step 7's patching peers)
left=$((540 - ($(date +%s) - T0)))
if ((left > 160)); then
  (cd "$BUILD" && export MECHSCOPE_DEVICE=cuda && step ctest $((left > 340 ? 200 : left - 140)) ctest --output-on-failure -j 8 --timeout 150)
  cp "$BUILD/Testing/Temporary/LastTest.log" "$OUT/ctest-LastTest.log" 2> /dev/null
fi

# 7. benches on the GPU: the patching peers (mechscope, plain PyTorch, TransformerLens) first, then
# the rest of bench/run.sh with the time that is left
left=$((570 - ($(date +%s) - T0)))
if [[ ${SKIP_BENCH:-0} != 1 ]] && ((left > 60)); then
  export DEVICE=cuda PYTHON=$PY THREADS=$JOBS MECHSCOPE_BENCH_DEVICE=cuda
  mkdir -p "$OUT/bench-results"
  R=$OUT/bench-results
  MODEL=$BUILD/bench/gpt2-small-random
  if step bench-build 60 cmake --build "$BUILD" --target benches -j "$JOBS"; then
    # bench_patch generates the GPT-2-small-shaped model once (~500 MB of random weights) for both; the
    # Python peers run even when bench_patch ran out of time after making it.
    step bench-patch 70 bash -c "'$BUILD/bench_patch' '$MODEL' '$JOBS' 8 > '$R/patch.json'"
    [[ -e $MODEL/model.safetensors ]] &&
      step torch-patch 60 bash -c "'$PY' bench/torch_patch.py '$MODEL' '$JOBS' > '$R/torch_patch.json' && cat '$R/torch_patch.json'"
    left=$((570 - ($(date +%s) - T0)))
    if ((left > 60)); then step bench $((left - 10)) bash bench/run.sh "$BUILD"; fi
  fi
  cp -r "$BUILD/bench/results/." "$R/" 2> /dev/null
fi
echo "done in $(($(date +%s) - T0))s; results in $OUT"
