#!/usr/bin/env bash
# Runs every libFuzzer target of a MECHSCOPE_FUZZ build for SECONDS each (make fuzz FUZZ_SECONDS=N).
#   scripts/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]      (FUZZ_JOBS=N: N targets at a time, default 1)
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
jobs=${FUZZ_JOBS:-1}
case "$jobs" in ''|*[!0-9]*|0) echo "FUZZ_JOBS must be a positive integer, got '$jobs'" >&2; exit 2 ;; esac
for t in "${targets[@]}"; do
  [ -x "$build/fuzz_$t" ] || { echo "no fuzz target $t in $build" >&2; exit 2; }
done

# One target: its line of the summary goes to $build/fuzz-$t.line; its exit status says whether it
# ended cleanly with no finding.
run_one() {
  local t=$1 bin="$build/fuzz_$1" work="$build/corpus/$1" found="$build/findings/$1" log="$build/fuzz-$1.log"
  mkdir -p "$work" "$found"
  local seeds=() d
  for d in "$root/tests/fuzz/corpus/$t" "$root/tests/fuzz/regressions/$t"; do [ -d "$d" ] && seeds+=("$d"); done
  echo "fuzz_$t: ${secs}s" >&2
  # -timeout: an input that takes 60 s is a finding (unbounded work; the first input also pays for
  # loading the fixtures under ASan, ~10 s on a busy machine); -rss_limit_mb: so is 2 GB.
  "$bin" -max_total_time="$secs" -timeout=60 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$found/" "$work" "${seeds[@]}" > "$log" 2>&1
  local rc=$?
  local execs cov nfound
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
  nfound=$(find "$found" -type f | wc -l)
  printf '%-18s %6ss  %10s execs  cov %6s  findings %s  (exit %s)\n' "$t" "$secs" "${execs:-?}" "${cov:-?}" "$nfound" "$rc" \
    | tee "$build/fuzz-$t.line"
  [ "$rc" -eq 0 ] && [ "$nfound" -eq 0 ]
}

status=0
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "$jobs" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
for t in "${targets[@]}"; do cat "$build/fuzz-$t.line" >> "$summary"; rm -f "$build/fuzz-$t.line"; done
echo "summary: $summary"
exit $status
