#!/usr/bin/env bash
# Installs the pinned tools that vouch's tests and code generation need into a
# reusable cache (default: $HOME/.cache/vouch/tools), once per version.
#
#   scripts/tools.sh            install every tool
#   scripts/tools.sh buf cosign install only the named tools
#   eval "$(scripts/tools.sh env)"  put the cache on PATH
#
# Each tool is built with `go install` from the Go module proxy; a stamp file
# records the installed version so a second run is a no-op.
set -euo pipefail

TOOLS_DIR="${VOUCH_TOOLS_DIR:-$HOME/.cache/vouch/tools}"
BIN="$TOOLS_DIR/bin"

# name|module path@version
TOOLS=(
  "buf|github.com/bufbuild/buf/cmd/buf@v1.75.0"
  "golangci-lint|github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0"
  "grpcurl|github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4"
  "ghz|github.com/bojand/ghz/cmd/ghz@v0.93.0"
  "cosign|github.com/sigstore/cosign/v3/cmd/cosign@v3.1.3"
)

if [[ "${1:-}" == "env" ]]; then
  echo "export PATH=\"$BIN:\$PATH\""
  exit 0
fi

mkdir -p "$BIN" "$TOOLS_DIR/stamps"
want=("$@")

for entry in "${TOOLS[@]}"; do
  name="${entry%%|*}"
  mod="${entry#*|}"
  if ((${#want[@]})); then
    skip=1
    for w in "${want[@]}"; do [[ "$w" == "$name" ]] && skip=0; done
    ((skip)) && continue
  fi
  stamp="$TOOLS_DIR/stamps/$name"
  if [[ -x "$BIN/$name" && -f "$stamp" && "$(cat "$stamp")" == "$mod" ]]; then
    continue
  fi
  echo "tools: installing $mod (once; cached in $TOOLS_DIR)" >&2
  start=$(date +%s)
  GOBIN="$BIN" GOFLAGS=-buildvcs=false CGO_ENABLED=0 go install "$mod"
  echo "$mod" >"$stamp"
  echo "tools: $name ready in $(( $(date +%s) - start ))s" >&2
done
