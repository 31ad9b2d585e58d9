#!/bin/sh
# The bounded fuzz runs of `make test`: runs a libFuzzer target for
# LKERAS_FUZZ_SECONDS (default 45) on a copy of its seed corpus (the seeds
# stay as they are), then prints one line the test runner counts, named
# after the binary:
#   fuzz_model_file: 1 passed, 0 failed      (or 0 passed, 1 failed)
# Usage: bounded.sh FUZZER_BINARY [CORPUS_DIR (default tests/fuzz/corpus)]
cd "$(dirname "$0")/../.."
bin=$1
seeds=${2:-tests/fuzz/corpus}
name=$(basename "$bin")
secs=${LKERAS_FUZZ_SECONDS:-45}
if ! make -s "$bin" > build/fuzz-build.log 2>&1; then
  tail -5 build/fuzz-build.log
  echo "the fuzzer needs clang with libFuzzer (Debian: apt-get install clang libclang-rt-dev)"
  echo "$name: 0 passed, 1 failed"
  exit 1
fi
work=build/fuzz/work-corpus-$name
rm -rf "$work" && mkdir -p "$work" build/fuzz/artifacts
cp "$seeds"/* "$work"/ 2>/dev/null
# LKERAS_FUZZ_FLAGS: more libFuzzer flags (fuzz_h5: -detect_leaks=0, see the Makefile)
# shellcheck disable=SC2086
out=$("$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      ${LKERAS_FUZZ_FLAGS:-} -artifact_prefix=build/fuzz/artifacts/ "$work" 2>&1)
rc=$?
echo "$out" | grep -aE '^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb|stat::new_units_added)' | sed 's/^/  /'
if [ $rc -eq 0 ]; then
  echo "$name: 1 passed, 0 failed"
else
  echo "$out" | tail -40 | cat -v
  echo "$name: 0 passed, 1 failed"
  exit 1
fi
