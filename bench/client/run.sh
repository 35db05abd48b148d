#!/usr/bin/env bash
# Whole-process benchmarks of the client and deploy sides (see
# docs/PERFORMANCE.md, "client and deploy").
#
#   bench/client/run.sh [RUNS]
#
# 1. vouch check --bundle versus cosign verify-blob-attestation on the same
#    SPDX bundle (200 packages), RUNS runs each (default 20), medians.
#    Target: vouch at most half cosign's median.
# 2. vouch verify --apk (the claim-building path: every file streamed once,
#    Q1 and datahash; --print-claims stops before the RPC) versus sha256sum
#    on the same .apk files (8 x 64 MiB, incompressible, page-cached).
#    Target: vouch's throughput at least 80% of sha256sum's.
#
# Needs cosign in the tool cache or on PATH, and sha256sum.
set -euo pipefail
export GOTOOLCHAIN=local
runs=${1:-20}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cosign=${COSIGN:-}
if [[ -z $cosign ]]; then
  tools=${VOUCH_TOOLS_DIR:-$HOME/.cache/vouch/tools}/bin
  if [[ -x $tools/cosign ]]; then cosign=$tools/cosign; else cosign=$(command -v cosign); fi
fi

cd "$root"
go build -o "$work/vouch" ./cmd/vouch
go run ./bench/client -out "$work/fx" >/dev/null
digest=sha256:$(cat "$work/fx/digest")

# median_ms CMD...: runs CMD $runs times, prints the median wall time in ms.
median_ms() {
  local times=()
  for _ in $(seq "$runs"); do
    local s e
    s=$(date +%s%N)
    "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
    e=$(date +%s%N)
    times+=($(( (e - s) / 1000 )))
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f\n", m/1000}'
}

export HOME=$work/home TUF_ROOT=$work/home/tuf
mkdir -p "$HOME"
v=$(median_ms "$work/vouch" check --key "$work/fx/vouch.pub" --bundle "$work/fx/spdx.sigstore.json" --digest "$digest")
c=$(median_ms "$cosign" verify-blob-attestation --bundle "$work/fx/spdx.sigstore.json" --key "$work/fx/vouch.pub" \
  --type spdxjson --insecure-ignore-tlog --digest "${digest#sha256:}" --digestAlg sha256)
echo "check: vouch check --bundle median ${v} ms; cosign verify-blob-attestation median ${c} ms ($runs runs each)"
awk -v v="$v" -v c="$c" 'BEGIN { printf "check: ratio vouch/cosign = %.2f (target <= 0.50)\n", v / c }'

apks=("$work"/fx/apks/*.apk)
bytes=$(cat "${apks[@]}" | wc -c)
cat "${apks[@]}" >/dev/null # page cache
drun=$(( runs < 5 ? runs : 5 ))
runs=$drun
s=$(median_ms sha256sum "${apks[@]}")
d=$(median_ms "$work/vouch" verify --print-claims --no-control --repository https://r.example/os "${apks[@]}")
awk -v b="$bytes" -v s="$s" -v d="$d" -v n="$drun" 'BEGIN {
  printf "digest: %d files, %.0f MiB; sha256sum median %.0f ms (%.0f MiB/s); vouch verify --apk median %.0f ms (%.0f MiB/s); %d runs each\n", '"${#apks[@]}"', b/1048576, s, b/1048576/(s/1000), d, b/1048576/(d/1000), n
  printf "digest: ratio vouch/sha256sum throughput = %.2f (target >= 0.80)\n", s / d }'
