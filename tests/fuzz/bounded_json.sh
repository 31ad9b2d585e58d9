#!/bin/sh
# The bounded JSON-config fuzz run of `make test`: tests/fuzz/fuzz_json.lua
# under the ASan + UBSan host for LKERAS_FUZZ_JSON_SECONDS (default 15),
# (the plain host with LKERAS_SKIP_ASAN=1), then one line the test runner counts:
#   fuzz_json: 1 passed, 0 failed      (or 0 passed, 1 failed)
# A crash, an abort or a hang fails it; the input being tried is shown and
# kept in build/fuzz/artifacts/.
cd "$(dirname "$0")/../.."
secs=${LKERAS_FUZZ_JSON_SECONDS:-15}
mkdir -p build/fuzz/artifacts
# LKERAS_SKIP_ASAN=1 (the quick test run): the plain host, which still
# catches crashes and hangs, not the memory errors only ASan sees
host=build/asan/lkeras
[ "${LKERAS_SKIP_ASAN:-0}" = 1 ] && host=build/lkeras
if ! make -s $host > build/fuzz-json-build.log 2>&1; then
  tail -5 build/fuzz-json-build.log
  echo "fuzz_json: 0 passed, 1 failed"
  exit 1
fi
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0
out=$(timeout $((secs + 120)) $host tests/fuzz/fuzz_json.lua "$secs" "${LKERAS_FUZZ_JSON_SEED:-20260}" 2>&1)
rc=$?
if [ $rc -eq 0 ] && echo "$out" | grep -q '^fuzz_json: 1 passed, 0 failed$'; then
  echo "$out" | grep -v '^fuzz_json: '
  echo "fuzz_json: 1 passed, 0 failed"
  exit 0
fi
echo "$out" | tail -40 | cat -v
[ $rc -eq 124 ] && echo "(a hang: stopped after $((secs + 120)) s)"
if [ -f build/fuzz/json-current.json ]; then
  keep=build/fuzz/artifacts/json-crash-$(date +%s).json
  cp build/fuzz/json-current.json "$keep"
  echo "the input (kept in $keep):"
  head -c 2000 "$keep" | cat -v; echo
fi
echo "fuzz_json: 0 passed, 1 failed"
exit 1
