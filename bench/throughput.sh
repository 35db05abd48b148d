#!/usr/bin/env bash
# gRPC throughput of a real vouchd, measured with ghz (see bench/README.md).
#
#   bench/throughput.sh
#
# Matrix: the gRPC health check (baseline), VerifyPackages without and with
# attestation, 50 and 1,000 packages per request, at concurrency 1, 50, 200;
# on SQLite (one vouchd) and on PostgreSQL (two vouchd replicas sharing one
# fresh schema, behind bench/lbproxy). Prints a Markdown report on stdout,
# keeps the raw ghz JSON in OUT. Environment (defaults in brackets):
#
#   DURATION      ghz duration per cell [20s]; COUNT=N runs N calls instead
#   WARMUP        unrecorded ghz run before each cell [3s]; 0 skips it
#   CONCURRENCY   concurrency levels ["1 50 200"]
#   CONNECTIONS   gRPC connections per ghz run, capped at the concurrency [4]
#   GHZ_DATA      binary: requests sent as serialised protobuf; json: built by
#                 ghz from JSON on every call (costs ghz more CPU) [binary]
#   SIZES         packages per request ["50 1000"]
#   CALLS         cells to run ["health verify attest"]
#   STORES        ["sqlite postgres"]
#   TIMEOUT       ghz per-call timeout [20s]
#   PACKAGES      packages in the generated repository [1000]
#   INDEX_ENTRIES extra generated index entries (index size) [0]
#   POSTGRES_DSN  [$VOUCH_TEST_POSTGRES_DSN or postgres://postgres@127.0.0.1:5432/test?sslmode=disable]
#   OUT           raw results [bench/results/tmp/<UTC timestamp>]
#   GZIP_RAW      gzip the raw ghz JSON after each cell [1]
#   KEEP_WORK     1 keeps the temporary directory (configs, databases, logs)
#   HEALTH_TIMEOUT seconds to wait for vouchd to become healthy [60]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=load/lib.sh
source "$root/bench/load/lib.sh"

DURATION=${DURATION:-20s}
COUNT=${COUNT:-}
WARMUP=${WARMUP:-3s}
CONCURRENCY=${CONCURRENCY:-1 50 200}
CONNECTIONS=${CONNECTIONS:-4}
SIZES=${SIZES:-50 1000}
CALLS=${CALLS:-health verify attest}
STORES=${STORES:-sqlite postgres}
TIMEOUT=${TIMEOUT:-20s}
PACKAGES=${PACKAGES:-1000}
INDEX_ENTRIES=${INDEX_ENTRIES:-0}
POSTGRES_DSN=${POSTGRES_DSN:-${VOUCH_TEST_POSTGRES_DSN:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}}
OUT=${OUT:-$root/bench/results/tmp/$(date -u +%Y%m%dT%H%M%SZ)}
GZIP_RAW=${GZIP_RAW:-1}

for s in $SIZES; do
  ((s <= PACKAGES)) || die "SIZES has $s but PACKAGES is $PACKAGES"
  [[ $s == 50 || $s == 1000 ]] || die "SIZES: only 50 and 1000 have request bodies (bench/load/setup)"
done
for s in $STORES; do
  [[ $s == sqlite || $s == postgres ]] || die "STORES: unknown store $s (want sqlite, postgres)"
done

bench_init
mkdir -p "$OUT"
results=$OUT/results.tsv
printf 'store\treplicas\tcall\tpackages\tconcurrency\tconnections\tfile\tsplit\tserver_ms\tcpu_ms\tghz_cpu_ms\n' >"$results"

header=$(
  print_header "vouchd throughput (bench/throughput.sh)"
  if [[ -n $COUNT ]]; then echo "- per cell: $COUNT calls after ${WARMUP} warm-up"; else echo "- per cell: $DURATION after ${WARMUP} warm-up"; fi
  echo "- ghz request data: ${GHZ_DATA:-binary}"
  echo "- concurrency: $CONCURRENCY; connections per run: min(concurrency, $CONNECTIONS); per-call timeout $TIMEOUT"
  echo "- repository: $PACKAGES packages + $INDEX_ENTRIES extra index entries; raw ghz JSON: $OUT"
)
echo "$header" >"$OUT/header.md"

# Sorted cells: health once per concurrency, then each call and size.
cells=()
for call in $CALLS; do
  case $call in
    health) cells+=("health 0") ;;
    verify | attest) for s in $SIZES; do cells+=("$call $s"); done ;;
    *) die "CALLS: unknown call $call (want health, verify, attest)" ;;
  esac
done
ncells=$((${#cells[@]} * $(wc -w <<<"$CONCURRENCY") * $(wc -w <<<"$STORES")))
log "$ncells cells; output in $OUT"

# scrape_all METHOD: one "requests dur_sum dur_count cpu_seconds" line per
# replica (see loadtool scrape).
scrape_all() {
  local u
  for u in "${metrics_urls[@]}"; do
    "$LOADTOOL" scrape "$u" "$1" || die "cannot read $u"
  done
}

# run_matrix STORE REPLICAS TARGET ENVDIR: every cell against TARGET. Uses
# the globals vouchd_pids, vouchd_logs, metrics_urls.
run_matrix() {
  local store=$1 replicas=$2 target=$3 envdir=$4
  local cellspec call size c conns file body before after split method stats server_ms cpu_ms i
  for cellspec in "${cells[@]}"; do
    read -r call size <<<"$cellspec"
    body=$envdir/$call-$size.json
    ghz_call_args "$call" "$body"
    for c in $CONCURRENCY; do
      conns=$((c < CONNECTIONS ? c : CONNECTIONS))
      local common=(--insecure -c "$c" --connections "$conns" --timeout "$TIMEOUT" --duration-stop=wait)
      if [[ $WARMUP != 0 && $WARMUP != 0s ]]; then
        "$GHZ" "${common[@]}" "${ghz_args[@]}" -z "$WARMUP" "$target" >/dev/null ||
          die "ghz warm-up failed: $store $call $size c=$c"
      fi
      method=/vouch.v1.BuilderService/VerifyPackages
      [[ $call == health ]] && method=/grpc.health.v1.Health/Check
      before=$(scrape_all "$method")
      file=$OUT/$store-$call-$size-c$c.json
      local amount=(-z "$DURATION")
      [[ -n $COUNT ]] && amount=(-n "$COUNT")
      # ghz's own CPU (user + system) for the cell: with both on the same
      # cores, what the load generator takes is not left for vouchd.
      local ghz_times=$OUT/.ghz-times
      ghz_rc=0
      { TIMEFORMAT='%U %S'; time "$GHZ" "${common[@]}" "${ghz_args[@]}" "${amount[@]}" --format json -o "$file" "$target" 2>&3 || ghz_rc=$?; } 3>&2 2>"$ghz_times"
      ((ghz_rc == 0)) || die "ghz failed: $store $call $size c=$c"
      read -r ghz_user ghz_sys <"$ghz_times"
      for i in "${!vouchd_pids[@]}"; do check_alive "${vouchd_pids[$i]}" "${vouchd_logs[$i]}" "vouchd replica $i"; done
      after=$(scrape_all "$method")
      # Per replica: requests; over all replicas: mean server latency and CPU
      # per call of the method.
      stats=$(paste -d' ' <(echo "$before") <(echo "$after") | awk '
        { split_ = split_ (NR > 1 ? "/" : "") ($5 - $1); ds += $6 - $2; dc += $7 - $3; cpu += $8 - $4 }
        END {
          if (dc > 0) printf "%s %.3f %.3f\n", split_, ds / dc * 1000, cpu / dc * 1000
          else printf "%s - -\n", split_
        }')
      read -r split server_ms cpu_ms <<<"$stats"
      ((replicas > 1)) || split=-
      read -r rps p50 p90 p99 count errors codes < <("$LOADTOOL" summary "$file") || die "cannot read the ghz report $file"
      ghz_ms=$(awk -v u="$ghz_user" -v s="$ghz_sys" -v n="$count" 'BEGIN { if (n > 0) printf "%.3f", (u + s) / n * 1000; else print "-" }')
      log "$store $call packages=$size c=$c conns=$conns: $rps RPC/s p50 $p50 p99 $p99 ms, $count calls, $errors errors [$codes] split $split, server $server_ms ms, vouchd CPU $cpu_ms ms/call, ghz CPU $ghz_ms ms/call"
      if [[ $GZIP_RAW == 1 ]]; then
        gzip -f "$file"
        file=$file.gz
      fi
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$store" "$replicas" "$call" "$size" "$c" "$conns" "$file" "$split" "$server_ms" "$cpu_ms" "$ghz_ms" >>"$results"
    done
  done
}

for store in $STORES; do
  envdir=$work/$store
  vouchd_pids=()
  vouchd_logs=()
  metrics_urls=()
  if [[ $store == sqlite ]]; then
    read -r p_grpc p_metrics <<<"$(free_ports 2)"
    "$work/bin/setup" --dir "$envdir" --packages "$PACKAGES" --index-entries "$INDEX_ENTRIES" \
      --listen "127.0.0.1:$p_grpc" --metrics "127.0.0.1:$p_metrics" >/dev/null
    start_bg "$envdir/vouchd.log" "$work/bin/vouchd" --config "$envdir/vouch.yaml"
    vouchd_pids+=("$last_pid")
    vouchd_logs+=("$envdir/vouchd.log")
    metrics_urls+=("http://127.0.0.1:$p_metrics/metrics")
    wait_healthy "127.0.0.1:$p_grpc" "$last_pid" "$envdir/vouchd.log"
    log "sqlite: vouchd pid $last_pid serving on 127.0.0.1:$p_grpc"
    run_matrix sqlite 1 "127.0.0.1:$p_grpc" "$envdir"
  else
    "$LOADTOOL" pg-check "$POSTGRES_DSN" || die "PostgreSQL not reachable (POSTGRES_DSN); set STORES=sqlite to skip it"
    bench_pg_dsn=$POSTGRES_DSN
    schema=vouch_bench_$(date -u +%Y%m%d%H%M%S)_$$
    bench_schemas+=("$schema")
    if [[ $POSTGRES_DSN == *\?* ]]; then store_url="$POSTGRES_DSN&schema=$schema"; else store_url="$POSTGRES_DSN?schema=$schema"; fi
    read -r p_g0 p_g1 p_m0 p_m1 p_lb <<<"$(free_ports 5)"
    "$work/bin/setup" --dir "$envdir" --packages "$PACKAGES" --index-entries "$INDEX_ENTRIES" --store "$store_url" \
      --listen "127.0.0.1:$p_g0,127.0.0.1:$p_g1" --metrics "127.0.0.1:$p_m0,127.0.0.1:$p_m1" >/dev/null
    # Both replicas start together: they race for the migrations and the
    # first refresh as real replicas do.
    for i in 0 1; do
      cfg=$envdir/vouch.yaml
      ((i == 0)) || cfg=$envdir/vouch-$i.yaml
      start_bg "$envdir/vouchd-$i.log" "$work/bin/vouchd" --config "$cfg"
      vouchd_pids+=("$last_pid")
      vouchd_logs+=("$envdir/vouchd-$i.log")
    done
    metrics_urls=("http://127.0.0.1:$p_m0/metrics" "http://127.0.0.1:$p_m1/metrics")
    wait_healthy "127.0.0.1:$p_g0" "${vouchd_pids[0]}" "${vouchd_logs[0]}"
    wait_healthy "127.0.0.1:$p_g1" "${vouchd_pids[1]}" "${vouchd_logs[1]}"
    start_bg "$envdir/lbproxy.log" "$work/bin/lbproxy" --listen "127.0.0.1:$p_lb" --backends "127.0.0.1:$p_g0,127.0.0.1:$p_g1"
    lb_pid=$last_pid
    wait_healthy "127.0.0.1:$p_lb" "$lb_pid" "$envdir/lbproxy.log"
    log "postgres: schema $schema, vouchd pids ${vouchd_pids[*]} behind lbproxy 127.0.0.1:$p_lb"
    run_matrix postgres 2 "127.0.0.1:$p_lb" "$envdir"
    # Both replicas must have served VerifyPackages, or the proxy did not
    # spread the load and the PostgreSQL figures mean nothing.
    if [[ " $CALLS " == *" verify "* || " $CALLS " == *" attest "* ]]; then
      for i in 0 1; do
        n=$("$LOADTOOL" metric "${metrics_urls[$i]}" vouch_grpc_requests_total method=/vouch.v1.BuilderService/VerifyPackages 2>/dev/null || echo 0)
        log "postgres: replica $i served $n VerifyPackages calls"
        [[ $n != 0 ]] || die "replica $i served no VerifyPackages calls: the load did not spread over both replicas"
      done
    fi
  fi
  stop_all
  for f in "${vouchd_logs[@]}" "$envdir/lbproxy.log"; do
    if [[ -f $f ]]; then cp "$f" "$OUT/$store-$(basename "$f")"; fi
  done
done

{
  echo "$header"
  "$LOADTOOL" report "$results"
} | tee "$OUT/summary.md"
