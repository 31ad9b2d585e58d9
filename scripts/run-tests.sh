#!/bin/sh
# Runs every test of lkeras and ends with one line "N passed, M failed, K skipped"
# (skipped: busted's pending tests, "# SKIP" in TAP, and the parts a C test
# reports with check_skip; they are not counted as passed).
#   1. C tests (tests/c/test_*.c: engine, gradient checks, IO, optimizers), and
#      test_threads built with ThreadSanitizer (build/tsan/test_threads)
#   2. busted specs (tests/*_spec.lua) against build/keras.so from stock lua5.4
#   3. the same C tests and specs again, built with ASan + UBSan
#      and keras.distributed under mpirun (tests/dist/run.sh)
#   4. the example scripts (scripts/examples/*.lua) in their quick mode, and
#      a few of them and the C API's test under valgrind (memcheck)
# Set LKERAS_SKIP_ASAN=1 to skip step 3 while iterating.
set -u
cd "$(dirname "$0")/.."
B=build
passed=0
failed=0
skipped=0
log=$B/test-log.txt
mkdir -p $B
: > $log

count_c() {   # program, label
  out=$("$@" 2>&1); rc=$?
  echo "$out" >> $log
  line=$(echo "$out" | grep -E '^[a-z_0-9]+: [0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' | tail -1)
  if [ -z "$line" ]; then
    echo "FAIL $1 (crashed or printed no result, exit $rc)"; echo "$out" | tail -20
    failed=$((failed + 1)); return
  fi
  p=$(echo "$line" | sed -E 's/.*: ([0-9]+) passed.*/\1/')
  f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
  s=0
  case "$line" in *skipped) s=$(echo "$line" | sed -E 's/.* ([0-9]+) skipped$/\1/') ;; esac
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "$out" | tail -20; fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  echo "$line"
  [ "$s" -ne 0 ] && echo "$out" | grep ': skipped: '
  [ "$f" -ne 0 ] && echo "$out" | grep -v ' passed, ' | tail -30
}

count_busted() {   # label, runner...
  label=$1; shift
  out=$("$@" -o TAP tests 2>&1); rc=$?
  echo "$out" >> $log
  # a pending test is "ok N - # SKIP ..." in TAP: skipped, not passed
  s=$(echo "$out" | grep -cE '^ok [0-9]+ - # SKIP')
  p=$(( $(echo "$out" | grep -c '^ok ') - s ))
  f=$(echo "$out" | grep -c '^not ok ')
  if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$s" -eq 0 ]; then
    echo "FAIL $label: busted ran no test (exit $rc)"; echo "$out" | tail -20
    failed=$((failed + 1)); return
  fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; echo "$out" | tail -20; fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  echo "$label: $p passed, $f failed, $s skipped"
  [ "$s" -ne 0 ] && echo "$out" | grep -E '^ok [0-9]+ - # SKIP' | head -20
  [ "$f" -ne 0 ] && echo "$out" | grep -A12 '^not ok ' | head -150
}

echo "== C tests"
for t in $B/tests/test_*; do [ -x "$t" ] && count_c "$t"; done

echo "== ThreadSanitizer: tests/c/test_threads.c (four states on four threads)"
if [ -x $B/tsan/test_threads ]; then
  count_c env OPENBLAS_NUM_THREADS=1 TSAN_OPTIONS="halt_on_error=1:exitcode=66:suppressions=$(pwd)/tests/tsan.supp" \
    $B/tsan/test_threads
else
  echo "FAIL $B/tsan/test_threads was not built (make tsan)"; failed=$((failed + 1))
fi

echo "== busted specs (lua5.4 + build/keras.so)"
count_busted specs env LUA_CPATH="$B/?.so;;" busted --lua=lua5.4

echo "== keras.distributed under mpirun (tests/dist/run.sh)"
count_c sh tests/dist/run.sh

echo "== rockspec (luarocks make into a temporary tree)"
# a copy of the tree with its fresh build (mtimes kept, so make only installs),
# installed by luarocks into a scratch tree; then require "keras" from stock
# lua5.4 in another folder, and the lkeras command the rock installed
check_rock() {   # scratch folder
  command -v luarocks >/dev/null 2>&1 || { echo "luarocks not found (Debian package luarocks)"; return 1; }
  mkdir -p "$1/src/build" || return 1
  tar -cf - --exclude=./build --exclude=./.git . | (cd "$1/src" && tar -xpf -) || return 1
  cp -pR $B/obj $B/embedded.c $B/libkeras.a $B/keras.so $B/lkeras "$1/src/build/" || return 1
  (cd "$1/src" && luarocks --lua-version=5.4 --tree "$1/tree" make lkeras-scm-1.rockspec) || return 1
  got=$(cd "$1" && eval "$(luarocks --lua-version=5.4 --tree "$1/tree" path)" &&
        lua5.4 -e 'local k = require "keras"; io.write(tostring(k.tensor{1, 2}), " ", package.searchpath("keras", package.cpath))' &&
        "$1/tree/bin/lkeras" -e 'io.write(" ", keras.__version)') || return 1
  want="[1. 2.] $1/tree/lib/lua/5.4/keras.so $($B/lkeras -e 'io.write(keras.__version)')"
  [ "$got" = "$want" ] || { echo "got '$got', expected '$want'"; return 1; }
}
rock=$(mktemp -d /tmp/lkeras-rock-XXXXXX)
if out=$(check_rock "$rock" 2>&1); then
  passed=$((passed + 1)); echo "ok lkeras-scm-1.rockspec"
else
  failed=$((failed + 1)); echo "FAIL lkeras-scm-1.rockspec"; echo "$out" | tail -15
fi
echo "$out" >> $log
rm -rf "$rock"

if [ "${LKERAS_SKIP_ASAN:-0}" != 1 ]; then
  echo "== ASan + UBSan build"
  if make -s asan >> $log 2>&1; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:halt_on_error=1
    export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    export LSAN_OPTIONS=suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0
    for t in $B/asan/tests/test_*; do [ -x "$t" ] && count_c "$t"; done
    count_busted "specs (asan lkeras)" $B/asan/lkeras /usr/bin/busted
    # keras.distributed's engine paths under the sanitizers: the shared region,
    # the split step, the overlap's thread, train_on_batch and fit_generator
    if command -v mpirun >/dev/null 2>&1 && [ -f $B/keras_mpi.so ]; then
      for c in "mlp adam 2 LKERAS_DIST_SHARD=1 train_check.lua" "cnn sgd 3 LKERAS_DIST_SHARD=0 train_check.lua" \
               "lstm rmsprop 2 LKERAS_DIST_SHM=1 train_check.lua overlap" "onbatch - 3 LKERAS_DIST_SHM=1 batch_check.lua" \
               "generator - 2 LKERAS_DIST_SHM=1 batch_check.lua"; do
        set -- $c
        if [ "$5" = train_check.lua ]; then args="$1 $2 250 16 /tmp/lkeras-asan-dist ${6:-}"; else args="$1 250 25 /tmp/lkeras-asan-dist"; fi
        if out=$(env ASAN_OPTIONS=detect_leaks=0:halt_on_error=1 LKERAS_MPI_PLUGIN=$(pwd)/$B/keras_mpi.so "$4" \
                 mpirun --allow-run-as-root --oversubscribe -x ASAN_OPTIONS -x UBSAN_OPTIONS -x LKERAS_MPI_PLUGIN \
                 -x "${4%%=*}" -np $3 $B/asan/lkeras tests/dist/$5 $args 2>&1); then
          passed=$((passed + 1)); echo "ok asan dist: $c"
        else
          failed=$((failed + 1)); echo "FAIL asan dist: $c"; echo "$out" | tail -20
        fi
      done
      rm -f /tmp/lkeras-asan-dist.rank*
    fi
  else
    echo "FAIL asan build"; tail -20 $log; failed=$((failed + 1))
  fi
fi

echo "== luacheck (lua/, tests/, scripts/ with .luacheckrc): one test, passed at zero warnings"
out=$(luacheck --codes --no-color -q lua tests scripts 2>&1); rc=$?
echo "$out" >> $log
if [ "$rc" -eq 0 ]; then
  passed=$((passed + 1)); echo "ok luacheck: $(echo "$out" | tail -1)"
else
  failed=$((failed + 1)); echo "FAIL luacheck (exit $rc)"; echo "$out" | grep -v '^Checking ' | grep -v '^$'
fi

echo "== examples"
for f in scripts/examples/*.lua; do
  case "$f" in *fashion_augment*) ;; *fashion_*) continue ;; esac   # the real-data runs are the demo, not tests
  # (fashion_augment.lua has a quick mode)
  if out=$(LKERAS_QUICK=1 $B/lkeras "$f" 2>&1); then
    passed=$((passed + 1)); echo "ok $f"
  else
    failed=$((failed + 1)); echo "FAIL $f"; echo "$out" | tail -10
  fi
done

echo "== valgrind (memcheck): examples and a C host with no memory error and no definite leak"
if command -v valgrind >/dev/null 2>&1; then
  vg="valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --quiet"
  for f in mlp_softmax mlp_binary functional_reuse checkpoint_resume load_saved_model; do
    if out=$(LKERAS_QUICK=1 $vg $B/lkeras scripts/examples/$f.lua 2>&1); then
      passed=$((passed + 1)); echo "ok valgrind scripts/examples/$f.lua"
    else
      failed=$((failed + 1)); echo "FAIL valgrind scripts/examples/$f.lua"; echo "$out" | tail -30
    fi
  done
  if out=$($vg $B/tests/test_capi 2>&1); then   # a C program that embeds lkeras (the C API)
    passed=$((passed + 1)); echo "ok valgrind test_capi"
  else
    failed=$((failed + 1)); echo "FAIL valgrind test_capi"; echo "$out" | tail -30
  fi
else
  skipped=$((skipped + 1)); echo "skip valgrind: not installed"
fi

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
