# Shared by bench/throughput.sh and bench/soak.sh (sourced, not run).
#
# The caller sets `root` (the repository) before sourcing. This file builds
# vouchd and the helpers into a temporary directory, finds the pinned tools,
# starts and stops processes, and cleans everything up on exit.

export GOTOOLCHAIN=local

tools_bin=${VOUCH_TOOLS_DIR:-$HOME/.cache/vouch/tools}/bin

# tool NAME: the pinned tool from the tool cache, else from PATH.
tool() {
  if [[ -x $tools_bin/$1 ]]; then
    echo "$tools_bin/$1"
  elif command -v "$1" >/dev/null 2>&1; then
    command -v "$1"
  else
    echo "bench: $1 not found in $tools_bin or on PATH; run scripts/tools.sh $1" >&2
    return 1
  fi
}

die() {
  echo "bench: FAIL: $*" >&2
  exit 1
}

log() { echo "bench: $*" >&2; }

# Processes this script started (killed on exit) and PostgreSQL schemas it
# created (dropped on exit).
bench_pids=()
bench_schemas=()
bench_pg_dsn=
work=

bench_cleanup() {
  local rc=$?
  set +e
  stop_all
  local s
  for s in "${bench_schemas[@]}"; do
    if "$work/bin/loadtool" pg-drop "$bench_pg_dsn" "$s"; then
      log "dropped PostgreSQL schema $s"
    else
      log "could not drop PostgreSQL schema $s; drop it by hand"
    fi
  done
  bench_schemas=()
  if [[ -n $work && -d $work ]]; then
    if [[ ${KEEP_WORK:-0} == 1 ]]; then
      log "kept work directory $work"
    else
      rm -rf "$work"
    fi
  fi
  exit "$rc"
}

# bench_init: temporary directory, cleanup traps, tools, binaries.
bench_init() {
  work=$(mktemp -d -t vouch-bench.XXXXXX)
  trap bench_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  GHZ=${GHZ:-$(tool ghz)} || exit 1
  GRPCURL=${GRPCURL:-$(tool grpcurl)} || exit 1
  mkdir -p "$work/bin"
  log "building vouchd and the bench helpers into $work/bin"
  (cd "$root" && go build -o "$work/bin/vouchd" ./cmd/vouchd &&
    go build -o "$work/bin/loadtool" ./bench/load/loadtool &&
    go build -o "$work/bin/lbproxy" ./bench/lbproxy &&
    go build -o "$work/bin/setup" ./bench/load/setup) || die "build failed"
  LOADTOOL=$work/bin/loadtool
}

# print_header TITLE: what was measured where, as Markdown.
print_header() {
  local commit dirty=""
  commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [[ $commit != unknown && -n $(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    dirty=" (uncommitted changes)"
  fi
  echo "## $1"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "- commit: $commit$dirty"
  echo "- go: $(go version)"
  echo "- nproc: $(nproc)"
  echo "- cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || echo unknown)"
  echo "- ghz: $GHZ (ghz and vouchd share the machine's cores)"
}

# free_ports N: N free loopback ports, space-separated.
free_ports() {
  "$LOADTOOL" ports "$1" | tr '\n' ' '
}

# start_bg LOG CMD...: starts CMD in the background with output to LOG;
# its pid is in $last_pid and is killed on exit.
start_bg() {
  local logf=$1
  shift
  "$@" >"$logf" 2>&1 &
  last_pid=$!
  bench_pids+=("$last_pid")
}

# stop_all: stops every started process now (graceful first).
stop_all() {
  local pid
  for pid in "${bench_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${bench_pids[@]}"; do
    # vouchd drains for at most 30s; do not wait forever.
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.4
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  bench_pids=()
}

# wait_healthy ADDR PID LOG: polls grpc.health.v1.Health/Check at ADDR until
# it answers SERVING; fails loudly when PID dies or HEALTH_TIMEOUT (seconds,
# default 60) passes.
wait_healthy() {
  local addr=$1 pid=$2 logf=$3 deadline out
  deadline=$(($(date +%s) + ${HEALTH_TIMEOUT:-60}))
  while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 30 "$logf" >&2 || true
      die "process $pid for $addr exited before becoming healthy (log above)"
    fi
    out=$("$GRPCURL" -plaintext -max-time 2 "$addr" grpc.health.v1.Health/Check 2>&1 || true)
    if grep -q '"SERVING"' <<<"$out"; then
      return 0
    fi
    if (($(date +%s) >= deadline)); then
      tail -n 30 "$logf" >&2 || true
      die "$addr not SERVING after ${HEALTH_TIMEOUT:-60}s; last answer: $out"
    fi
    sleep 0.5
  done
}

# check_alive PID LOG NAME: fails loudly when PID is gone.
check_alive() {
  if ! kill -0 "$1" 2>/dev/null; then
    tail -n 30 "$2" >&2 || true
    die "$3 (pid $1) died during the run (log above)"
  fi
}

# rss_mb PID: resident set size in MB (VmRSS), one decimal.
rss_mb() {
  awk '/^VmRSS:/ {printf "%.1f\n", $2 / 1024}' "/proc/$1/status"
}

# ghz_call_args CALL BODY: ghz arguments selecting the RPC: the health check
# through server reflection, VerifyPackages from the proto files. The request
# is BODY's serialised twin (setup writes both) unless GHZ_DATA=json: from
# JSON, ghz renders the body as a template and converts it to a dynamic
# message on every call, which costs it more CPU than the call costs vouchd.
ghz_call_args() {
  if [[ $1 == health ]]; then
    ghz_args=(--call grpc.health.v1.Health.Check -d '{}')
    return
  fi
  ghz_args=(--proto "$root/proto/vouch/v1/builder.proto" --import-paths "$root/proto"
    --call vouch.v1.BuilderService.VerifyPackages)
  case ${GHZ_DATA:-binary} in
    binary) ghz_args+=(-B "${2%.json}.bin") ;;
    json) ghz_args+=(-D "$2") ;;
    *) die "GHZ_DATA: want binary or json, not $GHZ_DATA" ;;
  esac
}
