#!/usr/bin/env bash
# Run HERE (a Debian machine with internet), not on the GPU machine: downloads what
# scripts/device/gpu-check.sh needs to build mechscope on a GPU machine that has a PyTorch wheel but no
# internet and maybe none of our build dependencies. Into .debs/ (ignored by git; pass it to the
# device run with carry: [".debs"], 64 MiB at most with everything else carried):
#   .debs/*.deb     cmake, ninja, the -dev packages and the libraries they need (unpacked there with
#                   dpkg -x into a prefix; Debian 12's, so they want glibc >= 2.36 there)
#   .debs/node_modules/  the npm packages the build and the tests read (plotly.js is compiled in;
#                   the GPT-2 vocabulary), copied from this checkout's node_modules (npm ci made it)
#   .debs/wheels/   with WITH_WHEELS=1: cmake and ninja as manylinux wheels too (any glibc >= 2.17,
#                   ~26 MB more), for an older system
# usage: scripts/device/fetch-debs.sh [DEST]; WITH_GCC=1 adds g++ (about 60 MB more) for a machine
# without a compiler.
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST=${1:-.debs}
mkdir -p "$DEST/wheels"

pkgs=(cmake ninja-build nlohmann-json3-dev libgtest-dev libutf8proc-dev libpango1.0-dev libcairo2-dev zlib1g-dev pkgconf)
if [[ ${WITH_GCC:-0} == 1 ]]; then pkgs+=(g++); fi

# Never unpacked into the prefix: the C library, the C++ runtime and what every Debian or Ubuntu
# system has (the machine's own must be used, or nothing that links them runs).
skip='^(libc6|libc6-dev|libc-bin|libc-dev-bin|linux-libc-dev|libgcc-s1|libstdc\+\+6|gcc-[0-9]+-base|libcrypt1|libcrypt-dev|debconf|debconf-2.0|dpkg|perl-base|tar|coreutils|libselinux1|libpcre2-8-0|zlib1g|libzstd1|liblzma5|libbz2-1.0|libmd0|libtinfo6|libgmp10|libacl1|libattr1|libaudit1|libaudit-common|libcap-ng0|libpam0g|libpam-modules|libpam-runtime|libsystemd0|libudev1|libgpg-error0|libgcrypt20|liblz4-1|libdb5.3|base-files|sensible-utils|init-system-helpers|mount|util-linux|login|passwd|adduser)$'

# Not needed to compile and link against pango/cairo: perl and python (glib's code generators), ICU
# (harfbuzz-icu), GObject introspection data, and fonts past one family (DejaVu, what figures use).
skip_more='^(perl|perl-modules-.*|libperl.*|python3.*|libpython3.*|libicu.*|icu-devtools|gir1\.2-.*|libgirepository.*|libharfbuzz-icu0|fonts-(urw-base35|texgyre|freefont-otf|freefont-ttf|croscore|liberation2|liberation|noto-mono|droid-fallback)|gsfonts|libglib2\.0-dev-bin|libglib2\.0-data|libsqlite3-0|libssl3)$'

mapfile -t closure < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
  --no-replaces --no-enhances "${pkgs[@]}" | grep -E '^[a-z0-9][a-z0-9.+-]*$' | sort -u | grep -Ev "$skip" | grep -Ev "$skip_more")
echo "fetch-debs: ${#closure[@]} packages (${pkgs[*]} and what they need)"
(cd "$DEST" && apt-get download "${closure[@]}")
printf '%s\n' "${closure[@]}" > "$DEST/packages.txt"

# node_modules is not part of the working tree that travels (it is ignored, here often a link).
mkdir -p "$DEST/node_modules"
for m in plotly.js-dist-min gpt-3-encoder; do
  [[ -e node_modules/$m ]] || { echo "fetch-debs: node_modules/$m is missing (npm ci)" >&2; exit 1; }
  rm -rf "${DEST:?}/node_modules/$m"
  cp -rL "node_modules/$m" "$DEST/node_modules/$m"
done

# cmake and ninja from PyPI (pip is the ordinary client; only these two).
if [[ ${WITH_WHEELS:-0} == 1 ]]; then
  python3 -m pip download --only-binary=:all: --platform manylinux2014_x86_64 --python-version 3 --no-deps \
    -d "$DEST/wheels" cmake ninja
fi

du -sh "$DEST"
total=$(du -sm "$DEST" | cut -f1)
if (( total > 56 )); then
  echo "fetch-debs: $DEST is ${total} MiB; a device run carries 64 MiB in all (tree, .debs and anything else)" >&2
fi
