#!/usr/bin/env bash
# Soak test of a real vouchd on SQLite (see bench/README.md).
#
#   bench/soak.sh
#
# Attesting VerifyPackages calls of 50 packages at a fixed rate, 80% of the
# maximum, as one ghz run per minute (--rps). After each minute it records
# vouchd's RSS, goroutines and open files, that minute's p99 and errors,
# and the sizes of the SQLite database and its WAL.
# Prints a per-minute Markdown table and the RSS slope; writes soak.csv and
# the raw ghz JSON to OUT. Environment (defaults in brackets):
#
#   SOAK_MINUTES     minutes of load [10]
#   RATE             calls per second; unset: 80% (RATE_PERCENT) of the rate
#                    measured by a MEASURE run at SOAK_CONCURRENCY
#   RATE_PERCENT     share of the measured maximum [80]
#   MEASURE          duration of the measuring run [30s]
#   SOAK_CONCURRENCY ghz concurrency [50]
#   CONNECTIONS      gRPC connections, capped at the concurrency [4]
#   SOAK_SLICE       length of one "minute" [60s]; shorter only to test the script
#   TIMEOUT          ghz per-call timeout [20s]
#   OUT              results [bench/results/tmp/<UTC timestamp>-soak]
#   GZIP_RAW         gzip the raw ghz JSON [1]
#   KEEP_WORK        1 keeps the temporary directory (config, database, log)
#   HEALTH_TIMEOUT   seconds to wait for vouchd to become healthy [60]
#   MIN_FREE_GB      stop when the database's file system has less free [10]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=load/lib.sh
source "$root/bench/load/lib.sh"

SOAK_MINUTES=${SOAK_MINUTES:-10}
RATE=${RATE:-}
RATE_PERCENT=${RATE_PERCENT:-80}
MEASURE=${MEASURE:-30s}
SOAK_CONCURRENCY=${SOAK_CONCURRENCY:-50}
CONNECTIONS=${CONNECTIONS:-4}
SOAK_SLICE=${SOAK_SLICE:-60s}
TIMEOUT=${TIMEOUT:-20s}
OUT=${OUT:-$root/bench/results/tmp/$(date -u +%Y%m%dT%H%M%SZ)-soak}
GZIP_RAW=${GZIP_RAW:-1}
MIN_FREE_GB=${MIN_FREE_GB:-10}

[[ $SOAK_MINUTES =~ ^[1-9][0-9]*$ ]] || die "SOAK_MINUTES must be a positive integer"
[[ -z $RATE || $RATE =~ ^[1-9][0-9]*$ ]] || die "RATE must be a positive integer (calls per second)"

bench_init
mkdir -p "$OUT"
envdir=$work/sqlite
read -r p_grpc p_metrics <<<"$(free_ports 2)"
"$work/bin/setup" --dir "$envdir" --packages 50 --listen "127.0.0.1:$p_grpc" --metrics "127.0.0.1:$p_metrics" >/dev/null
start_bg "$envdir/vouchd.log" "$work/bin/vouchd" --config "$envdir/vouch.yaml"
pid=$last_pid
target=127.0.0.1:$p_grpc
metrics_url=http://127.0.0.1:$p_metrics/metrics
wait_healthy "$target" "$pid" "$envdir/vouchd.log"
log "vouchd pid $pid serving on $target"

conns=$((SOAK_CONCURRENCY < CONNECTIONS ? SOAK_CONCURRENCY : CONNECTIONS))
ghz_call_args attest "$envdir/attest-50.json"
common=(--insecure -c "$SOAK_CONCURRENCY" --connections "$conns" --timeout "$TIMEOUT" --duration-stop=wait "${ghz_args[@]}")

rate_note="given as RATE"
if [[ -z $RATE ]]; then
  log "measuring the maximum rate: $MEASURE at concurrency $SOAK_CONCURRENCY"
  "$GHZ" "${common[@]}" -z "$MEASURE" --format json -o "$OUT/measure.json" "$target" || die "ghz measuring run failed"
  read -r max_rps _ _ _ _ max_errors _ < <("$LOADTOOL" summary "$OUT/measure.json") || die "cannot read the ghz report $OUT/measure.json"
  ((max_errors == 0)) || log "warning: the measuring run had $max_errors errors"
  RATE=$(awk -v r="$max_rps" -v p="$RATE_PERCENT" 'BEGIN {v = int(r * p / 100); if (v < 1) v = 1; print v}')
  rate_note="$RATE_PERCENT% of $max_rps RPC/s measured over $MEASURE at concurrency $SOAK_CONCURRENCY"
  if [[ $GZIP_RAW == 1 ]]; then gzip -f "$OUT/measure.json"; fi
fi
log "soak: $SOAK_MINUTES x $SOAK_SLICE at $RATE calls/s ($rate_note)"

header=$(
  print_header "vouchd soak (bench/soak.sh)"
  echo "- load: VerifyPackages, 50 packages, attest=true, SQLite; $RATE calls/s ($rate_note)"
  echo "- $SOAK_MINUTES slices of $SOAK_SLICE; concurrency $SOAK_CONCURRENCY over $conns connections; per-call timeout $TIMEOUT"
  echo "- raw ghz JSON and soak.csv: $OUT"
)
echo "$header" >"$OUT/header.md"

# file_mb PATH: size of PATH in MB (0 when missing), one decimal.
file_mb() {
  local b=0
  [[ -f $1 ]] && b=$(stat -c %s "$1")
  awk -v b="$b" 'BEGIN {printf "%.1f\n", b / 1048576}'
}

csv=$OUT/soak.csv
echo "minute,elapsed_min,target_rps,rps,count,errors,p50_ms,p99_ms,rss_mb,goroutines,open_fds,db_mb,wal_mb" >"$csv"
start=$(date +%s.%N)
for m in $(seq "$SOAK_MINUTES"); do
  file=$OUT/minute-$(printf %03d "$m").json
  "$GHZ" "${common[@]}" --rps "$RATE" -z "$SOAK_SLICE" --format json -o "$file" "$target" || die "ghz failed in minute $m"
  check_alive "$pid" "$envdir/vouchd.log" vouchd
  now=$(date +%s.%N)
  rss=$(rss_mb "$pid")
  goroutines=$("$LOADTOOL" metric "$metrics_url" go_goroutines) || die "cannot read go_goroutines from $metrics_url"
  fds=$("$LOADTOOL" metric "$metrics_url" process_open_fds 2>/dev/null || find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
  db=$(file_mb "$envdir/vouch.db")
  wal=$(file_mb "$envdir/vouch.db-wal")
  read -r rps p50 _ p99 count errors codes < <("$LOADTOOL" summary "$file") || die "cannot read the ghz report $file"
  elapsed=$(awk -v a="$start" -v b="$now" 'BEGIN {printf "%.3f", (b - a) / 60}')
  echo "$m,$elapsed,$RATE,$rps,$count,$errors,$p50,$p99,$rss,$goroutines,$fds,$db,$wal" >>"$csv"
  log "minute $m: $rps RPC/s (target $RATE), p99 $p99 ms, $errors errors [$codes], RSS $rss MB, $goroutines goroutines, $fds fds, SQLite $db MB + WAL $wal MB"
  if [[ $GZIP_RAW == 1 ]]; then gzip -f "$file"; fi
  # The ledger (and the WAL) grow with every call: stop before the disk fills.
  free_gb=$(df -Pk "$envdir" | awk 'NR == 2 {printf "%d", $4 / 1048576}')
  if ((free_gb < MIN_FREE_GB)); then
    die "only $free_gb GB free next to the database after minute $m (MIN_FREE_GB=$MIN_FREE_GB); rows so far in $csv"
  fi
done
stop_all
cp "$envdir/vouchd.log" "$OUT/vouchd.log"

{
  echo "$header"
  echo
  "$LOADTOOL" soak-report "$csv"
} | tee "$OUT/summary.md"
