#!/bin/sh
# The bounded fuzz run of `make test`: runs the libFuzzer target for
# LKERAS_FUZZ_SECONDS (default 45) on a copy of tests/fuzz/corpus (the seeds
# stay as they are), then prints one line the test runner counts:
#   fuzz_model_file: 1 passed, 0 failed      (or 0 passed, 1 failed)
# Usage: bounded.sh FUZZER_BINARY
cd "$(dirname "$0")/../.."
bin=$1
secs=${LKERAS_FUZZ_SECONDS:-45}
if ! make -s "$bin" > build/fuzz-build.log 2>&1; then
  tail -5 build/fuzz-build.log
  echo "the fuzzer needs clang with libFuzzer (Debian: apt-get install clang libclang-rt-dev)"
  echo "fuzz_model_file: 0 passed, 1 failed"
  exit 1
fi
work=build/fuzz/work-corpus
rm -rf "$work" && mkdir -p "$work" build/fuzz/artifacts
cp tests/fuzz/corpus/* "$work"/ 2>/dev/null
out=$("$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix=build/fuzz/artifacts/ "$work" 2>&1)
rc=$?
echo "$out" | grep -aE '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb|stat::new_units_added)' | sed 's/^/  /'
if [ $rc -eq 0 ]; then
  echo "fuzz_model_file: 1 passed, 0 failed"
else
  echo "$out" | tail -40 | cat -v
  echo "fuzz_model_file: 0 passed, 1 failed"
  exit 1
fi
