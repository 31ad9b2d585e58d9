#!/bin/sh
# The bounded fuzz runs of `make test`: runs a libFuzzer target for
# LKERAS_FUZZ_SECONDS (default 45) on a copy of its seed corpus (the seeds
# stay as they are), then prints one line the test runner counts, named
# after the binary:
#   fuzz_model_file: 1 passed, 0 failed      (or 0 passed, 1 failed)
# A crash whose faulting frame is inside libhdf5 (fuzz_h5) is reported apart:
#   fuzz_h5: skipped: a crash inside libhdf5 itself, not in lkeras (...)
#   fuzz_h5: 0 passed, 0 failed, 1 skipped
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
  exit 0
fi
echo "$out" | tail -40 | cat -v
# Whose crash: the sanitizer's first stack frame ("#0 0x... in f (module+0x..)")
# names the faulting function and its module (libhdf5 has no debug information
# here, so its frames name the library). A fault inside libhdf5 itself
# (its own parser, not instrumented, crashing on the hostile file) is not a
# bug of ours: it is reported on its own line, as skipped, with its input
# kept as build/fuzz/artifacts/libhdf5-*, and does not fail the run.
# Anything else -- our code, or a trap of ours on what libhdf5 returned -- fails.
# (the first frame outside the sanitizer runtime: a memcpy libhdf5 calls faults in the interceptor)
top=$(echo "$out" | grep -aE '^ *#[0-9]+ 0x[0-9a-f]+ in ' |
      grep -avE '__asan|__interceptor|__sanitizer|__ubsan|compiler-rt|libclang_rt' | head -1)
case "$top" in
  *libhdf5*)
    art=$(echo "$out" | grep -aoE 'build/fuzz/artifacts/(crash|leak|timeout|oom)-[0-9a-f]+' | head -1)
    [ -n "$art" ] && cp "$art" "build/fuzz/artifacts/libhdf5-$(basename "$art")"
    echo "$name: skipped: a crash inside libhdf5 itself, not in lkeras ($top; input: ${art:-none})"
    echo "$name: 0 passed, 0 failed, 1 skipped"
    exit 0 ;;
esac
echo "$name: 0 passed, 1 failed"
exit 1
