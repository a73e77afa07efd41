#!/usr/bin/env bash
# Builds the benchmark's go-control-plane peer into .cache/bench/go-control-plane-peer, from the Go modules
# named in bench/peer/go-control-plane/go.mod (fetched through the Go module proxy, never vendored).
# Rebuilds only when main.go, go.mod or go.sum changed. Needs Go >= 1.26 (the go line of go.mod).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
src="$here/go-control-plane"
out_dir="$root/.cache/bench"
out="$out_dir/go-control-plane-peer"
stamp="$out_dir/go-control-plane-peer.sha256"
if ! command -v go >/dev/null 2>&1; then
  echo "[bench:peer] go is not installed (needs Go >= 1.26): apt-get install golang-go, or see https://go.dev/doc/install" >&2
  exit 1
fi
mkdir -p "$out_dir"
sum="$(cat "$src/main.go" "$src/go.mod" "$src/go.sum" | sha256sum | cut -d' ' -f1)"
if [[ -x "$out" && -f "$stamp" && "$(cat "$stamp")" == "$sum" ]]; then
  echo "[bench:peer] $out is up to date"
  exit 0
fi
echo "[bench:peer] building $out (go-control-plane from the Go module proxy; takes a few minutes the first time)"
cd "$src"
# go.sum (committed) pins the modules' checksums; the build refuses a module that does not match it.
go build -mod=readonly -trimpath -o "$out" .
sum="$(cat "$src/main.go" "$src/go.mod" "$src/go.sum" | sha256sum | cut -d' ' -f1)"
echo "$sum" > "$stamp"
echo "[bench:peer] built $out"
