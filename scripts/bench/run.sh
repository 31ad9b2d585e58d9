#!/bin/sh
# make bench: the seed workloads on lkeras and on the PyTorch peer, in the same run.
#
#   sh scripts/bench/run.sh [WORKLOAD...]      (default: mlp mlp_big)
#
# Every workload runs under /usr/bin/time -v (peak RSS from "Maximum resident set
# size") in each configuration the peer's README names -- 1 and 2 threads, 2 threads
# with OPENBLAS_NUM_THREADS=1, 2 threads with OMP_WAIT_POLICY=PASSIVE (and
# --channels-last for the cnn, conv_autoencoder, separable_cnn and conv3d) -- ours under the
# same environment variables as the peer. OPENBLAS_CORETYPE is left as the environment has it.
# stdout: one JSON line per run (the program's JSON plus "config", "maxrss_mb",
# "cpu_s", "elapsed_s") and one summary line per workload (best train and best infer
# configuration of each side, ratios lkeras/torch). Notices go to stderr. The lines
# are also kept in build/bench/results.jsonl.
#
# Environment: LKERAS_PEER_DIR (where torch_seed.py is, when ../shared/bench/peers
# beside the clone is missing), LKERAS_BENCH_REPEAT (runs per configuration, best
# kept; default 1), LKERAS_BENCH_ARGS (extra arguments for both sides, e.g.
# "--samples 2000 --epochs 3" for a quick check), LKERAS_BENCH_NO_PEER=1 (ours only),
# LKERAS_BENCH_ENV (extra environment for our side alone, e.g.
# "LKERAS_TEST_BLAS_CORE=Prescott": OpenBLAS's SSE3 fallback, corrected by lkeras).
# Every line names the OpenBLAS kernels each side ran ("blas_core") and the CPU.
set -u
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
B=$ROOT/build
LK=$B/lkeras
BENCH=$ROOT/scripts/bench/bench.lua
OUTDIR=$B/bench
mkdir -p "$OUTDIR"
RESULTS=$OUTDIR/results.jsonl
: > "$RESULTS"
REPEAT=${LKERAS_BENCH_REPEAT:-1}
EXTRA=${LKERAS_BENCH_ARGS:-}

note() { echo "bench: $*" >&2; }

# ---- what the runs need: python3-torch, python3-numpy, GNU time
if [ -z "${LKERAS_BENCH_NO_PEER:-}" ]; then
  LKERAS_WITH_TORCH=1 sh scripts/install-deps.sh || note "could not install python3-torch/python3-numpy/time"
fi
[ -x "$LK" ] || make -s all || exit 1
TIME=/usr/bin/time
if ! [ -x $TIME ]; then note "/usr/bin/time is missing (apt-get install time)"; exit 1; fi

# ---- the peer
PEER=""
top=$(git rev-parse --show-toplevel 2>/dev/null || echo "$ROOT")
for d in "$top/../shared/bench/peers" "${LKERAS_PEER_DIR:-}" "$ROOT/../shared/bench/peers"; do
  if [ -n "$d" ] && [ -f "$d/torch_seed.py" ]; then PEER="$d/torch_seed.py"; break; fi
done
PY=/usr/bin/python3
if [ -n "${LKERAS_BENCH_NO_PEER:-}" ]; then
  PEER=""
elif [ -z "$PEER" ]; then
  note "torch_seed.py not found (../shared/bench/peers beside the clone, or LKERAS_PEER_DIR): lkeras only"
elif ! $PY -c 'import torch, numpy' 2>/dev/null; then
  note "$PY cannot import torch and numpy: lkeras only"; PEER=""
fi

KNOWN=$("$LK" "$BENCH" --list) || { note "bench.lua --list failed"; exit 1; }

# ---- one run: side config workload command... -> a JSON line on stdout (and in $RESULTS)
run_one() {
  side=$1; config=$2; shift 2
  tf=$OUTDIR/time.txt; of=$OUTDIR/out.txt
  $TIME -v -o "$tf" "$@" < /dev/null > "$of" 2> "$OUTDIR/err.txt"
  rc=$?
  line=$(grep '^JSON ' "$of" | tail -1 | sed 's/^JSON //')
  if [ $rc -ne 0 ] || [ -z "$line" ]; then
    note "$side $config failed (exit $rc): $*"; tail -5 "$OUTDIR/err.txt" >&2
    return 1
  fi
  rss_kb=$(sed -n 's/.*Maximum resident set size (kbytes): *\([0-9]*\).*/\1/p' "$tf")
  usr=$(sed -n 's/.*User time (seconds): *\([0-9.]*\).*/\1/p' "$tf")
  sys=$(sed -n 's/.*System time (seconds): *\([0-9.]*\).*/\1/p' "$tf")
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): *\(.*\)$/\1/p' "$tf" |
         awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
  extra=$(awk -v c="$config" -v r="${rss_kb:-0}" -v u="${usr:-0}" -v s="${sys:-0}" -v w="${wall:-0}" \
    'BEGIN { printf ", \"config\": \"%s\", \"maxrss_mb\": %.1f, \"cpu_s\": %.2f, \"elapsed_s\": %.2f}", c, r / 1024, u + s, w }')
  line=$(echo "$line" | sed 's/}[[:space:]]*$//')"$extra"
  echo "$line" | tee -a "$RESULTS"
  # the conv autotuner's choices and tuning time of our runs (bench.lua's AUTOTUNE line)
  tune=$(grep '^AUTOTUNE ' "$of" | tail -1 | sed 's/^AUTOTUNE //')
  [ -n "$tune" ] && echo "{\"autotune\": true, \"workload\": \"${w:-}\", \"config\": \"$config\", \"report\": $tune}" >> "$RESULTS"
  return 0
}

# a numeric field of a JSON line
field() { echo "$1" | sed -n "s/.*\"$2\": *\([-0-9.eE+]*\).*/\1/p"; }
sfield() { echo "$1" | sed -n "s/.*\"$2\": *\"\([^\"]*\)\".*/\1/p"; }

# the configurations: name|environment|arguments
configs() {
  echo "t1||--threads 1"
  echo "t2||--threads 2"
  echo "t2_openblas1|OPENBLAS_NUM_THREADS=1|--threads 2"
  echo "t2_passive|OMP_WAIT_POLICY=PASSIVE|--threads 2"
  if [ "$1" = cnn ] || [ "$1" = conv_autoencoder ] || [ "$1" = separable_cnn ] || [ "$1" = conv3d ]; then
    echo "t1_channels_last||--threads 1 --channels-last"
    echo "t2_channels_last||--threads 2 --channels-last"
    echo "t2_openblas1_channels_last|OPENBLAS_NUM_THREADS=1|--threads 2 --channels-last"
  fi
}

# best line of a file of JSON lines by a field
best_by() {   # file field
  best=""; bv=-1
  while IFS= read -r l; do
    v=$(field "$l" "$2")
    [ -z "$v" ] && continue
    if awk -v a="$v" -v b="$bv" 'BEGIN { exit !(a > b) }'; then best=$l; bv=$v; fi
  done < "$1"
  echo "$best"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "null"; else printf "%.3f", a / b }'; }
num() { [ -n "$1" ] && echo "$1" || echo null; }

# the peer of a workload: torch_seed.py by name, except for our own twins
peer_of() {
  case $1 in
    multi_io) echo "$ROOT/scripts/bench/torch_multi_io.py multi_io" ;;
    mlp_functional) echo "$PEER mlp" ;;   # the same network as mlp, built with nn.Sequential
    lstm_varlen|lstm_fixedlen) echo "$ROOT/scripts/bench/torch_lstm_varlen.py $1" ;;
    conv_autoencoder|separable_cnn|conv3d) echo "$ROOT/scripts/bench/torch_convnets.py $1" ;;
    custom_dense) echo "$PEER mlp" ;;     # the mlp network, its Dense layers written in Lua
    *) echo "$PEER $1" ;;
  esac
}

[ $# -eq 0 ] && set -- mlp mlp_big mlp_functional custom_dense multi_io cnn conv1d lstm_stacked embed_lstm lstm_varlen lstm_fixedlen conv_autoencoder separable_cnn conv3d
for w in "$@"; do
  if ! echo "$KNOWN" | grep -qx "$w"; then
    note "skipping '$w': scripts/bench/bench.lua does not know it yet"
    continue
  fi
  ours=$OUTDIR/$w.lkeras.jsonl; theirs=$OUTDIR/$w.torch.jsonl
  : > "$ours"; : > "$theirs"
  note "$w ..."
  r=1
  while [ $r -le "$REPEAT" ]; do
    configs "$w" | while IFS='|' read -r name envs args; do
      # ours: the same environment; --channels-last is the peer's alone
      largs=$(echo "$args" | sed 's/ --channels-last//')
      case $name in *channels_last*) ;; *)
        # shellcheck disable=SC2086
        run_one lkeras "$name" env $envs ${LKERAS_BENCH_ENV:-} "$LK" "$BENCH" "$w" $largs $EXTRA >> "$ours" ;;
      esac
      if [ -n "$PEER" ]; then
        # shellcheck disable=SC2086
        run_one torch "$name" env $envs $PY $(peer_of "$w") $args $EXTRA >> "$theirs"
      fi
    done
    r=$((r + 1))
  done
  cat "$ours" "$theirs"

  lt=$(best_by "$ours" train_samples_per_s); li=$(best_by "$ours" infer_samples_per_s)
  tt=$(best_by "$theirs" train_samples_per_s); ti=$(best_by "$theirs" infer_samples_per_s)
  l_tsps=$(field "$lt" train_samples_per_s); l_isps=$(field "$li" infer_samples_per_s)
  t_tsps=$(field "$tt" train_samples_per_s); t_isps=$(field "$ti" infer_samples_per_s)
  l_rss=$(field "$lt" maxrss_mb); t_rss=$(field "$tt" maxrss_mb)
  l_rss_max=$(sed -n 's/.*"maxrss_mb": *\([0-9.]*\).*/\1/p' "$ours" | sort -n | tail -1)
  t_rss_min=$(sed -n 's/.*"maxrss_mb": *\([0-9.]*\).*/\1/p' "$theirs" | sort -n | head -1)
  summary=$(printf '{"workload": "%s", "summary": true, "lkeras_train_sps": %s, "lkeras_train_config": "%s", "lkeras_infer_sps": %s, "lkeras_infer_config": "%s", "torch_best_train_sps": %s, "torch_best_config": "%s", "torch_best_infer_sps": %s, "torch_best_infer_config": "%s", "train_ratio": %s, "infer_ratio": %s, "lkeras_maxrss_mb": %s, "torch_maxrss_mb": %s, "rss_ratio": %s, "lkeras_maxrss_mb_max": %s, "torch_maxrss_mb_min": %s, "rss_ratio_worst": %s, "OPENBLAS_CORETYPE": "%s", "lkeras_blas_core": "%s", "lkeras_blas_chosen_by": "%s", "torch_blas_core": "%s", "cpu": "%s"}' \
    "$w" "$(num "$l_tsps")" "$(sfield "$lt" config)" "$(num "$l_isps")" "$(sfield "$li" config)" \
    "$(num "$t_tsps")" "$(sfield "$tt" config)" "$(num "$t_isps")" "$(sfield "$ti" config)" \
    "$(ratio "$l_tsps" "$t_tsps")" "$(ratio "$l_isps" "$t_isps")" \
    "$(num "$l_rss")" "$(num "$t_rss")" "$(ratio "$l_rss" "$t_rss")" \
    "$(num "$l_rss_max")" "$(num "$t_rss_min")" "$(ratio "$l_rss_max" "$t_rss_min")" "${OPENBLAS_CORETYPE:-}" \
    "$(sfield "$lt" blas_core)" "$(sfield "$lt" blas_chosen_by)" "$(sfield "$tt" blas_core)" "$(sfield "$lt" cpu)")
  echo "$summary" | tee -a "$RESULTS"
done

# the dist section: keras.distributed over MPI (2 processes x 1 thread against
# 1 x 1 and 1 x 2), when mpirun and the MPI plugin are there (LKERAS_BENCH_NO_DIST=1
# leaves it out, for a run of a few workloads)
if [ -z "${LKERAS_BENCH_NO_DIST:-}" ]; then
  sh scripts/bench/run_dist.sh | tee -a "$RESULTS"
fi
