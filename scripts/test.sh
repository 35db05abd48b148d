#!/usr/bin/env bash
# vouch's test command: the README's second quick-start command and what CI runs.
#
# It installs the pinned tools into the reusable cache (scripts/tools.sh), then
# checks formatting, vet, lint, the generated API code, and runs every test.
# Tests that need a tool or PostgreSQL skip locally with a message and fail
# under CI=true when it is missing.
#
#   scripts/test.sh                 everything
#   VOUCH_TEST_FLAGS=-short scripts/test.sh   pass extra flags to go test
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
: "${VOUCH_TEST_POSTGRES_DSN:=postgres://postgres@127.0.0.1:5432/test?sslmode=disable}"
export VOUCH_TEST_POSTGRES_DSN

step() { printf '\n=== %s\n' "$*"; }

step "tools"
scripts/tools.sh
eval "$(scripts/tools.sh env)"

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [[ -n "$unformatted" ]]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "buf lint and generated code"
buf lint
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
sed "s|out: proto|out: $tmp|" buf.gen.yaml >"$tmp/buf.gen.yaml"
buf generate --template "$tmp/buf.gen.yaml"
for f in proto/vouch/v1/*.pb.go; do
  if ! cmp -s "$f" "$tmp/vouch/v1/$(basename "$f")"; then
    echo "$f is out of date: run scripts/generate.sh"; exit 1
  fi
done
if [[ $(ls "$tmp"/vouch/v1/*.pb.go | wc -l) != $(ls proto/vouch/v1/*.pb.go | wc -l) ]]; then
  echo "generated files differ in number: run scripts/generate.sh"; exit 1
fi

step "golangci-lint"
golangci-lint run ./...

step "go test"
# shellcheck disable=SC2086
go test -count=1 ${VOUCH_TEST_FLAGS:-} ./...
