#!/bin/sh
# make bench, the latency section: single-sample calls from C, lkeras
# (scripts/bench/latency.c, lk_predict) against libtorch's C++ API
# (scripts/bench/latency_torch.cpp, Debian's libtorch-dev), the same models
# (mlp: Dense 4-64-64-2; lstm: LSTM(32) over one step), one thread each,
# OPENBLAS_NUM_THREADS=1 for both.
#
#   sh scripts/bench/latency.sh [MODEL...]          (default: mlp lstm)
#
# LKERAS_LATENCY_CALLS (default 100000) calls per side and model, in
# LKERAS_LATENCY_ROUNDS (default 5) interleaved rounds (ours, theirs, ours,
# ...); every call is timed alone, and the percentiles are taken over all of a
# side's calls. Our last round also runs LKERAS_LATENCY_RSS_CALLS (default
# 1000000) more calls and reports the resident set's growth over them.
# stdout: a JSON line per round and a summary line per model with median,
# p99, p99.9 (us) of each side, the ratios lkeras/torch and the CPU model;
# also kept in build/bench/latency.jsonl. LKERAS_BENCH_NO_PEER=1: ours only.
set -u
cd "$(dirname "$0")/../.."
B=build
OUT=$B/bench
mkdir -p "$OUT"
RESULTS=$OUT/latency.jsonl
: > "$RESULTS"
CALLS=${LKERAS_LATENCY_CALLS:-100000}
ROUNDS=${LKERAS_LATENCY_ROUNDS:-5}
RSS_CALLS=${LKERAS_LATENCY_RSS_CALLS:-1000000}
PER=$((CALLS / ROUNDS))
note() { echo "latency: $*" >&2; }

make -s $B/bench/latency || exit 1
PEER=$B/bench/latency_torch
if [ -z "${LKERAS_BENCH_NO_PEER:-}" ]; then
  LKERAS_WITH_TORCH=1 sh scripts/install-deps.sh >&2 || note "could not install libtorch-dev"
  make -s "$PEER" || { note "no libtorch harness: ours only"; PEER=""; }
else
  PEER=""
fi
CPU=$(sed -n 's/^model name[^:]*: *//p' /proc/cpuinfo | head -1)
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1

# the value at fraction q of a sorted file of numbers (ns), in us
pct() { awk -v q="$2" '{ v[NR] = $1 } END { i = int(NR * q) + 1; if (i > NR) i = NR; printf "%.3f", v[i] / 1000 }' "$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == "" || b + 0 == 0) print "null"; else printf "%.3f", a / b }'; }

[ $# -eq 0 ] && set -- mlp lstm
for model in "$@"; do
  ours=$OUT/latency_$model.lkeras.raw; theirs=$OUT/latency_$model.torch.raw
  : > "$ours"; : > "$theirs"
  rss="null"
  r=1
  while [ "$r" -le "$ROUNDS" ]; do
    extra=""
    [ "$r" -eq "$ROUNDS" ] && extra=$RSS_CALLS
    line=$($B/bench/latency "$model" "$PER" "$ours" $extra) || { note "lkeras $model failed"; break; }
    echo "$line" | tee -a "$RESULTS"
    g=$(echo "$line" | sed -n 's/.*"rss_growth_kb": *\([-0-9]*\).*/\1/p')
    [ -n "$g" ] && rss=$g
    if [ -n "$PEER" ]; then
      $PEER "$model" "$PER" "$theirs" | tee -a "$RESULTS" || note "torch $model failed"
    fi
    r=$((r + 1))
  done
  sort -n -o "$ours" "$ours"
  lm=$(pct "$ours" 0.5); l99=$(pct "$ours" 0.99); l999=$(pct "$ours" 0.999)
  tm=""; t99=""; t999=""
  if [ -n "$PEER" ] && [ -s "$theirs" ]; then
    sort -n -o "$theirs" "$theirs"
    tm=$(pct "$theirs" 0.5); t99=$(pct "$theirs" 0.99); t999=$(pct "$theirs" 0.999)
  fi
  printf '{"section": "latency", "summary": true, "model": "%s", "calls": %s, "rounds": %s, "lkeras_median_us": %s, "lkeras_p99_us": %s, "lkeras_p999_us": %s, "torch_median_us": %s, "torch_p99_us": %s, "torch_p999_us": %s, "median_ratio": %s, "p99_ratio": %s, "p999_ratio": %s, "lkeras_rss_growth_kb": %s, "rss_calls": %s, "cpu": "%s"}\n' \
    "$model" "$CALLS" "$ROUNDS" "$lm" "$l99" "$l999" "${tm:-null}" "${t99:-null}" "${t999:-null}" \
    "$(ratio "$lm" "$tm")" "$(ratio "$l99" "$t99")" "$(ratio "$l999" "$t999")" "$rss" "$RSS_CALLS" "$CPU" | tee -a "$RESULTS"
done
