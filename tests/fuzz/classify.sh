#!/bin/sh
# After a long fuzzing campaign (make fuzz-h5, make fuzz-image): replays every
# crash the fuzzer kept in build/fuzz/artifacts and sorts them by whose code
# faulted, with the rule of bounded.sh: the sanitizer's first stack frame
# outside its own runtime names the module. A crash inside libhdf5 itself
# (not instrumented, crashing on a hostile file) is libhdf5's, kept as
# build/fuzz/artifacts/libhdf5-*; anything else is ours, kept as ours-*, and
# makes this script fail.
#   classify.sh FUZZER_BINARY
cd "$(dirname "$0")/../.."
bin=$1
name=$(basename "$bin")
dir=build/fuzz/artifacts
ours=0 theirs=0 gone=0
for art in "$dir"/crash-* "$dir"/oom-* "$dir"/timeout-*; do
  [ -f "$art" ] || continue
  out=$(ASAN_OPTIONS=detect_leaks=0 timeout 60 "$bin" -runs=1 "$art" 2>&1)
  if [ $? -eq 0 ]; then
    gone=$((gone + 1))
    echo "$name: does not crash again (kept): $art"
    continue
  fi
  top=$(echo "$out" | grep -aE '^ *#[0-9]+ 0x[0-9a-f]+ in ' |
        grep -avE '__asan|__interceptor|__sanitizer|__ubsan|compiler-rt|libclang_rt' | head -1)
  case "$top" in
    *libhdf5*)
      theirs=$((theirs + 1))
      mv "$art" "$dir/libhdf5-$(basename "$art")"
      echo "$name: inside libhdf5 itself, not lkeras: $dir/libhdf5-$(basename "$art") ($top)" ;;
    *)
      ours=$((ours + 1))
      mv "$art" "$dir/ours-$(basename "$art")"
      echo "$name: OURS: $dir/ours-$(basename "$art") (${top:-no stack: $(echo "$out" | grep -a 'ERROR' | head -1)})" ;;
  esac
done
echo "$name: $ours crashes in lkeras, $theirs inside libhdf5, $gone not reproduced"
[ "$ours" -eq 0 ]
