#!/usr/bin/env bash
# The Go benchmarks behind docs/PERFORMANCE.md, in one run, with the raw
# `go test -bench` output kept for benchstat.
#
#   bench/gobench.sh              every group, -count 5 (about 25 minutes)
#   COUNT=1 bench/gobench.sh apk  only the named groups: apk index store attest server
#
# PostgreSQL benchmarks use VOUCH_TEST_POSTGRES_DSN (default the local
# server); the index rotation heap test runs with VOUCH_INDEX_ROTATIONS
# (default 100). Run on an otherwise idle machine: the figures are wall
# time, and each benchmark also reports its process CPU time (cpu-ns/op or
# cpu-ms/op) so that a busy machine can be recognised.
set -euo pipefail
export GOTOOLCHAIN=local
cd "$(dirname "$0")/.."
: "${VOUCH_TEST_POSTGRES_DSN:=postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
export VOUCH_TEST_POSTGRES_DSN
count=${COUNT:-5}
out=${BENCH_OUT:-bench/results/tmp/gobench-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
groups=("$@")
((${#groups[@]})) || groups=(apk index store attest server)

echo "# go benchmarks: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(go version | cut -d' ' -f3), $(nproc) cores, -count $count"
echo "# raw output: $out"

run() { # name, then go test arguments
  local name=$1; shift
  echo "## $name" >&2
  go test -run '^$' -count "$count" "$@" | tee "$out/$name.txt" | grep -E '^(Benchmark|ok|FAIL|---)' || true
}

for g in "${groups[@]}"; do
  case $g in
    apk)
      run apk-load -bench 'IndexLoad|Gunzip|PackageDigest|SHA256Raw' -benchtime 10x ./apk
      run apk-lookup -bench 'IndexLookup' ./apk ;;
    index)
      # Lookups run 4 s each: the 186,000-entry setup leaves garbage whose
      # collection skews a 1 s run.
      run index -bench . -benchtime 4s ./index
      echo "## index rotation heap (TestRotationHeap)" >&2
      VOUCH_INDEX_ROTATIONS=${VOUCH_INDEX_ROTATIONS:-100} go test -count=1 -run '^TestRotationHeap$' -v -timeout 60m ./index |
        tee "$out/index-rotation.txt" | grep -E 'one snapshot|rotations|^(ok|FAIL|---)' ;;
    store)
      run store-sqlite -bench . -timeout 60m ./store/sqlite
      run store-postgres -bench . -timeout 60m ./store/postgres ;;
    attest)
      run attest -bench . ./attest ;;
    server)
      run server -bench . -benchtime 2s ./server ;;
    *)
      echo "unknown group $g (want apk index store attest server)" >&2; exit 2 ;;
  esac
done
