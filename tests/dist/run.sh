#!/bin/sh
# keras.distributed's tests under mpirun (called by scripts/run-tests.sh; ends
# with one line "dist: N passed, M failed[, K skipped]"). Without mpirun or
# without the MPI plugin (build/keras_mpi.so) the MPI part is skipped.
#   LKERAS_DIST_FULL=1: the whole grid (3 models x 3 optimizers x n 256/250 x
#   -np 2/3 x shared memory/TCP, 72 runs; make test-dist-full) instead of the
#   short one that covers each model, optimizer, n, -np and transport.
set -u
cd "$(dirname "$0")/../.."
B=${LKERAS_BUILD:-build}   # the build folder (another one: LKERAS_BUILD=/tmp/b)
passed=0; failed=0; skipped=0
ok() { passed=$((passed + 1)); echo "ok $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
if ! command -v mpirun >/dev/null 2>&1 || [ ! -f $B/keras_mpi.so ]; then
  echo "dist: skipped: no mpirun or no $B/keras_mpi.so (Debian: openmpi-bin libopenmpi-dev)"
  echo "dist: 0 passed, 0 failed, 1 skipped"
  exit 0
fi
T=$(mktemp -d /tmp/lkeras-dist-XXXXXX)
MPI="mpirun --allow-run-as-root --oversubscribe"
# tcp: messages over loopback TCP, and no shared gradient region (as ranks on
# several hosts): the allreduce path
tr_opt() { [ "$1" = tcp ] && echo "--mca btl self,tcp -x LKERAS_DIST_SHM=0" || echo ""; }

# one case: model optimizer n -np transport; b = 16 rows per process
check() {
  m=$1; o=$2; n=$3; np=$4; tp=$5; b=16
  name="$m $o n=$n -np $np $tp"
  out=$T/$m-$o-$n-$np-$tp
  LKERAS_DIST=single $B/lkeras tests/dist/train_check.lua $m $o $n $((np * b)) $out.ref > $T/log 2>&1 &&
  LKERAS_DIST=single $B/lkeras tests/dist/train_check.lua $m $o $n $b $out.ctl >> $T/log 2>&1 &&
  $MPI $(tr_opt $tp) -np $np $B/lkeras tests/dist/train_check.lua $m $o $n $b $out.d >> $T/log 2>&1
  if [ $? -ne 0 ]; then bad "$name: a run failed"; tail -15 $T/log; return; fi
  same=1
  r=1
  while [ $r -lt $np ]; do
    cmp -s $out.d.rank0 $out.d.rank$r || same=0
    r=$((r + 1))
  done
  [ $same = 1 ] && ok "$name: weights bitwise identical on every rank" || bad "$name: ranks differ"
  if res=$(lua5.4 tests/dist/compare.lua $out.ref.rank0 $out.d.rank0); then
    ok "$name: equals one process at batch $((np * b)): $res"
  else
    bad "$name: differs from one process at batch $((np * b)): $res"
  fi
  if res=$(lua5.4 tests/dist/compare.lua $out.ref.rank0 $out.ctl.rank0); then
    bad "$name: control (one process at batch $b) agrees, so the comparison cannot fail: $res"
  else
    ok "$name: control (one process at batch $b) fails the comparison"
  fi
}

if [ "${LKERAS_DIST_FULL:-0}" = 1 ]; then
  for m in mlp cnn lstm; do for o in sgd adam rmsprop; do for n in 256 250; do for np in 2 3; do
    for tp in shm tcp; do check $m $o $n $np $tp; done
  done; done; done; done
else
  check mlp sgd 256 2 shm
  check cnn adam 250 3 tcp
  check lstm rmsprop 250 2 shm
  check mlp rmsprop 250 3 shm
  check cnn sgd 256 2 tcp
  check lstm adam 256 3 tcp
fi

# train_on_batch and fit_generator: every rank its own share of each global
# batch (25 rows: uneven on 2 and 3 ranks), the same as one process at the
# global batch; the control (the optimizer without DistributedOptimizer) not
batch_check() {   # mode -np transport
  name="$1 -np $2 $3"; o=$T/b-$1-$2-$3
  LKERAS_DIST=single $B/lkeras tests/dist/batch_check.lua $1 250 25 $o.ref > $T/log 2>&1 &&
  $MPI $(tr_opt $3) -np $2 $B/lkeras tests/dist/batch_check.lua $1 250 25 $o.d >> $T/log 2>&1 &&
  $MPI $(tr_opt $3) -np $2 $B/lkeras tests/dist/batch_check.lua $1 250 25 $o.ctl plain >> $T/log 2>&1
  if [ $? -ne 0 ]; then bad "$name: a run failed"; tail -15 $T/log; return; fi
  same=1; r=1
  while [ $r -lt $2 ]; do cmp -s $o.d.rank0 $o.d.rank$r || same=0; r=$((r + 1)); done
  [ $same = 1 ] && ok "$name: weights and logs bitwise identical on every rank" || bad "$name: ranks differ"
  if res=$(lua5.4 tests/dist/compare.lua $o.ref.rank0 $o.d.rank0); then
    ok "$name: equals one process at the global batch: $res"
  else
    bad "$name: differs from one process at the global batch: $res"
  fi
  if res=$(lua5.4 tests/dist/compare.lua $o.ref.rank0 $o.ctl.rank0); then
    bad "$name: control (no DistributedOptimizer) agrees, so the comparison cannot fail: $res"
  else
    ok "$name: control (no DistributedOptimizer) fails the comparison"
  fi
}
batch_check onbatch 2 shm
batch_check onbatch 3 tcp
batch_check generator 3 shm
batch_check generator 2 tcp

# the overlapped reduction (a communication thread reducing each bucket while
# the backward pass runs; small buckets so that there are several) gives the
# same bits as the reduction after the run
for c in "mlp rmsprop 2 shm" "cnn adam 3 tcp" "lstm sgd 3 shm"; do
  set -- $c
  o=$T/ov-$1-$2-$3-$4
  if $MPI $(tr_opt $4) -np $3 $B/lkeras tests/dist/train_check.lua $1 $2 250 16 $o.s serial > $T/log 2>&1 &&
     $MPI $(tr_opt $4) -np $3 $B/lkeras tests/dist/train_check.lua $1 $2 250 16 $o.o overlap >> $T/log 2>&1 &&
     cmp -s $o.s.rank0 $o.o.rank0 && cmp -s $o.o.rank0 $o.o.rank1; then
    ok "$1 $2 -np $3 $4: the overlapped reduction (several buckets) gives the same bits as after the run"
  else
    bad "$1 $2 -np $3 $4: overlapped reduction"; tail -5 $T/log
  fi
done

# on one host, the optimizer's step split over the ranks (each updates its
# share of the weights and slots, kept once for the host in the shared window,
# in chunks any rank takes as soon as every run is past them, or by fixed
# shares after a barrier with LKERAS_DIST_EARLY=0) gives the same bits as
# every rank taking it whole; the slots included (Nadam: a schedule of its own)
for c in "mlp adam 2" "cnn rmsprop 3" "lstm sgd 2" "mlp nadam 2"; do
  set -- $c
  o=$T/sh-$1-$2-$3
  if LKERAS_DIST_SHARD=1 $MPI -x LKERAS_DIST_SHARD -np $3 $B/lkeras tests/dist/train_check.lua $1 $2 250 16 $o.s \
       > $T/log 2>&1 &&
     LKERAS_DIST_SHARD=0 $MPI -x LKERAS_DIST_SHARD -np $3 $B/lkeras tests/dist/train_check.lua $1 $2 250 16 $o.w \
       >> $T/log 2>&1 &&
     LKERAS_DIST_SHARD=1 LKERAS_DIST_EARLY=0 $MPI -x LKERAS_DIST_SHARD -x LKERAS_DIST_EARLY -np $3 $B/lkeras \
       tests/dist/train_check.lua $1 $2 250 16 $o.e >> $T/log 2>&1 &&
     cmp -s $o.s.rank0 $o.w.rank0 && cmp -s $o.s.rank0 $o.e.rank0 && cmp -s $o.s.rank0 $o.s.rank1; then
    ok "$1 $2 -np $3: the split optimizer step, chunked and by shares, gives the same weights and slots as the whole one"
  else
    bad "$1 $2 -np $3: split optimizer step"; tail -5 $T/log
  fi
done

# the shared state (the weights and slots one copy per host during fit): back
# in each process after fit, after a larger window, after an error
if out=$($MPI -np 2 $B/lkeras tests/dist/state_check.lua 2>&1) && [ "$(echo "$out" | grep -c '^ok rank')" = 2 ]; then
  ok "-np 2 shm: fit's shared state goes back to every process at its end, after an error too"
else
  bad "-np 2 shm: the shared state's life"; echo "$out" | tail -5
fi

for c in "2 shm" "3 shm" "3 tcp"; do
  set -- $c
  if out=$($MPI $(tr_opt $2) -np $1 $B/lkeras tests/dist/allreduce_check.lua 2>&1) &&
     [ "$(echo "$out" | grep -c '^ok rank')" = "$1" ]; then
    ok "allreduce/broadcast/allgather exact, -np $1 $2"
  else
    bad "allreduce/broadcast/allgather, -np $1 $2"; echo "$out" | tail -10
  fi
done

# Dropout's streams: each rank its own during fit, the common one the same after
for np in 2 3; do
  if out=$($MPI -np $np $B/lkeras tests/dist/rng_check.lua 2>&1) && [ "$(echo "$out" | grep -c '^ok rank')" = $np ]; then
    ok "-np $np: a stream per rank and epoch during fit, the common stream the same after (shuffle on and off)"
  else
    bad "-np $np: random streams"; echo "$out" | grep -v '^\[' | tail -8
  fi
done

# a checkpoint written by rank 0 (-np 2) resumes with -np 3
D=$T/resume; mkdir -p $D
if $MPI -np 2 $B/lkeras tests/dist/resume_check.lua $D save > $T/log 2>&1 &&
   $MPI -np 3 $B/lkeras tests/dist/resume_check.lua $D resume >> $T/log 2>&1 &&
   [ -f $D/ckpt.lkm ] && [ "$(wc -l < $D/log.csv)" = 3 ] &&
   cmp -s $D/resumed.rank0 $D/resumed.rank1 && cmp -s $D/resumed.rank0 $D/resumed.rank2 &&
   [ "$(head -1 $D/resumed.rank0)" = "iterations 10 -> 13" ]; then
  ok "a checkpoint of rank 0 (-np 2) resumes with -np 3, ranks identical, iterations 10 -> 13"
else
  bad "checkpoint resume with another number of ranks"; tail -10 $T/log; head -1 $D/resumed.rank0 2>/dev/null
fi

# the example: the same test accuracy with 2 processes as with one (global batch 128)
a1=$(LKERAS_QUICK=1 $B/lkeras scripts/examples/distributed_fashion.lua 2>&1 | grep '^Test accuracy')
a2=$(LKERAS_QUICK=1 $MPI -np 2 $B/lkeras scripts/examples/distributed_fashion.lua 2>&1 | grep '^Test accuracy')
if [ -n "$a1" ] && [ "$a1" = "$a2" ]; then
  ok "distributed_fashion.lua (quick): -np 2 and one process: $a2"
else
  bad "distributed_fashion.lua (quick): one process '$a1', -np 2 '$a2'"
fi

# a rank that raises ends the job within a bounded time, with a message
start=$(date +%s)
out=$(LKERAS_DIST_TIMEOUT=60 timeout 120 $MPI -np 2 $B/lkeras tests/dist/fault_check.lua 2>&1); rc=$?
took=$(( $(date +%s) - start ))
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $took -lt 60 ] && echo "$out" | grep -q "rank 1 aborts the job" &&
   ! echo "$out" | grep -q "should not get here"; then
  ok "a rank that raises ends the job in ${took} s with a message"
else
  bad "a rank that raises: exit $rc after ${took} s"; echo "$out" | tail -10
fi

rm -rf "$T"
echo "dist: $passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ]
