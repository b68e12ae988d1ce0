# Sourced by `make test-asan` (and scripts/fuzz/run.sh): sanitizer options for the suite.
# halt_on_error / abort: the first report fails the test that triggered it.
# detect_leaks: on, with suppressions for the thread pools and caches the uninstrumented libraries
# keep until exit (lsan.supp says which and why).
here="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd)"
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:detect_stack_use_after_return=0:strict_string_checks=1:check_initialization_order=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$here/ubsan.supp:${UBSAN_OPTIONS:-}"
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0:${LSAN_OPTIONS:-}"
