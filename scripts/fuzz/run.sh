#!/usr/bin/env bash
# Runs every libFuzzer target of a MECHSCOPE_FUZZ build for SECONDS each (make fuzz FUZZ_SECONDS=N).
#   scripts/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]
# Each target starts from its checked-in corpus and regressions (tests/fuzz/{corpus,regressions}/NAME)
# and grows a working corpus in BUILD_DIR/corpus/NAME; crashing inputs land in BUILD_DIR/findings/NAME/.
# A finding, once fixed, is copied to tests/fuzz/regressions/NAME/ so the normal suite replays it.
set -uo pipefail
build=${1:?build dir}; secs=${2:?seconds}; shift 2
root="$(cd "$(dirname "$0")/../.." && pwd)"
. "$root/scripts/sanitizer/env.sh"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$build"/fuzz_*; do [ -x "$f" ] && targets+=("$(basename "$f" | sed 's/^fuzz_//')"); done
fi
summary="$build/fuzz-summary.txt"
: > "$summary"
status=0
for t in "${targets[@]}"; do
  bin="$build/fuzz_$t"
  [ -x "$bin" ] || { echo "no fuzz target $t in $build" >&2; exit 2; }
  work="$build/corpus/$t"; found="$build/findings/$t"
  mkdir -p "$work" "$found"
  seeds=()
  for d in "$root/tests/fuzz/corpus/$t" "$root/tests/fuzz/regressions/$t"; do [ -d "$d" ] && seeds+=("$d"); done
  log="$build/fuzz-$t.log"
  echo "fuzz_$t: ${secs}s" >&2
  # -timeout: an input that takes 60 s is a finding (unbounded work; the first input also pays for
  # loading the fixtures under ASan, ~10 s on a busy machine); -rss_limit_mb: so is 2 GB.
  "$bin" -max_total_time="$secs" -timeout=60 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$found/" "$work" "${seeds[@]}" > "$log" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  nfound=$(find "$found" -type f | wc -l)
  line=$(printf '%-18s %6ss  %10s execs  cov %6s  findings %s  (exit %s)' "$t" "$secs" "${execs:-?}" "${cov:-?}" "$nfound" "$rc")
  echo "$line" | tee -a "$summary"
  [ "$rc" -eq 0 ] && [ "$nfound" -eq 0 ] || status=1
done
echo "summary: $summary"
exit $status
