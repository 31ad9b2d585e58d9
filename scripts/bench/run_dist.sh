#!/bin/sh
# make bench's dist section: keras.distributed's data-parallel fit on this
# machine. For each workload (default: cnn lstm_stacked mlp_big) it runs, in
# the same call, 1 process x 1 thread, 1 process x 2 threads and, under
# mpirun, 2 processes x 1 thread at the same global batch (the workload's
# batch, half of it per process), and prints one JSON line per run and one
# summary per workload: the throughput ratios (2x1 / (2 * 1x1), 2x1 / 1x2) and
# the time spent in allreduce per step. The targets (quiet machine): 2x1 >=
# 0.85 x twice 1x1 for cnn and lstm_stacked, >= 0.75 for mlp_big, and 2x1
# beats 1x2 on all three.
#   sh scripts/bench/run_dist.sh [WORKLOAD...]
# LKERAS_BENCH_ARGS: extra bench.lua arguments (e.g. "--samples 2000 --epochs 3").
# LKERAS_BENCH_REPEAT: runs of each configuration, in turn (1x1, 1x2, 2x1, 1x1, ...);
# the best of each is kept (the machine's noise only slows runs down).
set -u
cd "$(dirname "$0")/../.."
B=build
LK=$B/lkeras
BENCH=scripts/bench/bench.lua
EXTRA=${LKERAS_BENCH_ARGS:-}
note() { echo "bench dist: $*" >&2; }
if ! command -v mpirun >/dev/null 2>&1 || [ ! -f $B/keras_mpi.so ]; then
  note "skipped: no mpirun or no $B/keras_mpi.so (Debian: openmpi-bin libopenmpi-dev)"; exit 0
fi
[ $# -eq 0 ] && set -- cnn lstm_stacked mlp_big
field() { echo "$1" | sed -n "s/.*\"$2\": *\([0-9.e+-]*\).*/\1/p"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0 && a != "") printf "%.3f", a / b; else printf "null" }'; }
REPEAT=${LKERAS_BENCH_REPEAT:-1}
run() {   # config, command...
  config=$1; shift
  line=$("$@" 2>$B/bench-dist-err.txt | grep '^JSON ' | sed 's/^JSON //')
  if [ -z "$line" ]; then note "$config failed"; tail -5 $B/bench-dist-err.txt >&2; echo ""; return; fi
  echo "$line" | sed "s/^{/{\"config\": \"$config\", /"
}
best() {   # the faster of two JSON lines (train samples/s), the first when one is empty
  if [ -z "$2" ]; then echo "$1"; return; fi
  if [ -z "$1" ]; then echo "$2"; return; fi
  if awk -v a="$(field "$1" train_samples_per_s)" -v b="$(field "$2" train_samples_per_s)" 'BEGIN { exit !(b > a) }'
  then echo "$2"; else echo "$1"; fi
}
for w in "$@"; do
  one=""; two=""; dist=""; i=0
  while [ $i -lt "$REPEAT" ]; do
    one=$(best "$one" "$(run 1x1 $LK $BENCH "$w" --threads 1 $EXTRA)")
    two=$(best "$two" "$(run 1x2 $LK $BENCH "$w" --threads 2 $EXTRA)")
    dist=$(best "$dist" "$(run 2x1 mpirun --allow-run-as-root --oversubscribe --bind-to none -np 2 $LK $BENCH "$w" \
      --threads 1 --dist 1 $EXTRA)")
    i=$((i + 1))
  done
  echo "$one"; echo "$two"; echo "$dist"
  s1=$(field "$one" train_samples_per_s); s2=$(field "$two" train_samples_per_s); sd=$(field "$dist" train_samples_per_s)
  twice=$(awk -v a="$s1" 'BEGIN { if (a != "") print 2 * a; else print 0 }')
  printf '{"workload": "%s", "summary": true, "dist": true, "train_sps_1x1": %s, "train_sps_1x2": %s, "train_sps_2x1": %s, "ratio_2x1_vs_twice_1x1": %s, "ratio_2x1_vs_1x2": %s, "allreduce_ms_per_step": %s, "train_ms_per_step_2x1": %s, "cpu": "%s"}\n' \
    "$w" "${s1:-null}" "${s2:-null}" "${sd:-null}" "$(ratio "$sd" "$twice")" "$(ratio "$sd" "$s2")" \
    "$(field "$dist" allreduce_ms_per_step | sed 's/^$/null/')" "$(field "$dist" train_ms_per_step | sed 's/^$/null/')" \
    "$(echo "$one" | sed -n 's/.*"cpu": *"\([^"]*\)".*/\1/p')"
done
