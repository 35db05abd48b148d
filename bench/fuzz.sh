#!/usr/bin/env bash
# Fuzz campaign: runs every fuzz target of the module for a given time, one
# after the other, and reports executions, corpus sizes and any crash.
#
#   bench/fuzz.sh [TIME]            every target for TIME each (default 5m)
#   FUZZ_TARGETS='FuzzLock FuzzPkgInfo' bench/fuzz.sh 30s   only these
#   FUZZ_PARALLEL=2 bench/fuzz.sh   fuzzing workers per target (default nproc)
#
# Targets are found by scanning *_test.go files for `func FuzzX(`. A target
# that finds a crash fails its `go test -fuzz` run: the input is written to
# the package's testdata/fuzz/FuzzX/ by Go itself (commit it: it becomes a
# regression test) and this script exits 1 after finishing the others.
#
# The corpus Go keeps between runs lives in $(go env GOCACHE)/fuzz; its size
# is reported per target ("cached"), beside the seed corpus committed under
# testdata/fuzz ("committed").
set -euo pipefail
export GOTOOLCHAIN=local
cd "$(dirname "$0")/.."

fuzztime=${1:-5m}
parallel=${FUZZ_PARALLEL:-$(nproc)}
out=${FUZZ_OUT:-bench/results/tmp/fuzz-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
cache=$(go env GOCACHE)/fuzz
module=$(go list -m)

echo "# fuzz campaign"
echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(go version | cut -d' ' -f3), $(nproc) cores, $fuzztime per target, $parallel workers"
echo

# pkg<TAB>target for every fuzz target.
targets=$(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' . |
  sed -E 's|^\./(.*)/[^/]*_test\.go:func (Fuzz.*)$|\1\t\2|' | sort -u)
if [[ -n ${FUZZ_TARGETS:-} ]]; then
  targets=$(printf '%s\n' "$targets" | grep -wF -f <(tr ' ' '\n' <<<"$FUZZ_TARGETS"))
fi
[[ -n $targets ]] || { echo "no fuzz targets found" >&2; exit 2; }

count() { if [[ -d $1 ]]; then find "$1" -type f | wc -l; else echo 0; fi; }

failed=0
rows=()
while IFS=$'\t' read -r pkg target; do
  log="$out/$target.log"
  start=$(date +%s)
  if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -parallel "$parallel" "./$pkg" >"$log" 2>&1; then
    result=ok
  else
    result="FAILED (see $log)"
    failed=1
  fi
  secs=$(( $(date +%s) - start ))
  # The last progress line: "fuzz: elapsed: 5m0s, execs: 123 (41/sec), new interesting: 7 (total: 30)"
  last=$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -1 || true)
  fuzzed=$(sed -nE 's/^fuzz: elapsed: ([0-9hms.]+),.*/\1/p' <<<"$last")
  execs=$(sed -nE 's/.*execs: ([0-9]+) .*/\1/p' <<<"$last")
  # Go's own rate is that of the last 3 s; this is the whole run's.
  rate=$(awk -v e="${execs:-0}" -v d="${fuzzed:-0s}" 'BEGIN {
    s = 0; n = ""
    for (i = 1; i <= length(d); i++) {
      c = substr(d, i, 1)
      if (c == "h") { s += n * 3600; n = "" } else if (c == "m") { s += n * 60; n = "" } else if (c == "s") { s += n; n = "" } else n = n c
    }
    if (s > 0) printf "%d", e / s; else print "?" }')
  total=$(sed -nE 's/.*\(total: ([0-9]+)\).*/\1/p' <<<"$last")
  cached=$(count "$cache/$module/$pkg/$target")
  committed=$(count "$pkg/testdata/fuzz/$target")
  rows+=("| $pkg | $target | ${fuzzed:-?} | ${secs}s | ${execs:-?} | ${rate:-?} | ${total:-?} | $cached | $committed | $result |")
  echo "$pkg $target: $result, ${execs:-?} execs in ${secs}s" >&2
done <<<"$targets"

echo "| package | target | fuzzed | wall (with build) | execs | execs/s | corpus (in run) | cached | committed | result |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "logs: $out"
exit $failed
