#!/usr/bin/env bash
# Installs everything mechscope needs to build, test and benchmark on Debian 12, with apt-get and npm
# only. Idempotent: when everything is present it checks and returns in about a second.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev            # tensor backend (libtorch 1.13 on Debian 12)
  libopenblas0-openmp     # fast BLAS for libtorch (without it libblas.so.3 is the reference BLAS, ~10x slower); OpenMP so it shares torch's threads
  nlohmann-json3-dev      # config.json, tokenizer.json, safetensors headers
  libutf8proc-dev         # Unicode categories and normalisation for tokenizers
  libgtest-dev            # unit tests
  clang-format-14         # make format / make format-check (CI): the layout in .clang-format
  zlib1g-dev              # deflate entries of .npz files (Gemma Scope SAEs)
  openmpi-bin libopenmpi-dev   # mpirun -np N mechscope <batch command> (optional at build time: without it, --shard i/N + merge)
  libcairo2-dev libpango1.0-dev fonts-noto-cjk fonts-noto-color-emoji fonts-dejavu-core
  chromium                # headless check of index.html
  python3-torch python3-numpy   # benchmark baseline (plain PyTorch)
)
# `make fuzz` only: libFuzzer comes with Debian's clang.
[ "${MECHSCOPE_FUZZ_DEPS:-0}" = 1 ] && APT_PACKAGES+=(clang)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# Node may come from another repository (e.g. nodesource, whose nodejs bundles npm): check commands.
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm packages pinned by package-lock.json, installed into ./node_modules.
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.mechscope-lock; then
  echo "install-deps: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  cp package-lock.json node_modules/.mechscope-lock
fi
