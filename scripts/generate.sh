#!/usr/bin/env bash
# Regenerates the Go code of the gRPC API from proto/ with buf and the
# protoc-gen-go / protoc-gen-go-grpc versions pinned in go.mod.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/tools.sh buf
eval "$(scripts/tools.sh env)"
buf lint
buf generate
