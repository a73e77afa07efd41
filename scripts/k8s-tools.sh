#!/usr/bin/env bash
# Builds (once, then cached) the real Kubernetes control plane that the Kubernetes-mode tests and the local
# cluster run against: kube-apiserver, kube-controller-manager, kube-scheduler (k8s.io/kubernetes v1.34.10),
# etcd v3.6.4 and kwok v0.7.0, all pinned by tools/k8s/go.mod and tools/kwok/go.mod (with go.sum), built
# with the machine's Go from the Go module proxy. Also copies the Gateway API CRDs of the pinned
# sigs.k8s.io/gateway-api module. Cold: about 6-8 minutes on 2 cores; warm: a second.
set -euo pipefail
cd "$(dirname "$0")/.."

GATEWAY_API_VERSION="v1.4.0"
out=.cache/k8s
bin="$out/bin"
log() { printf '[k8s-tools] %s\n' "$*" >&2; }
mkdir -p "$bin"

# The stamp names the pins: a change to either go.sum rebuilds.
stamp="$(cat tools/k8s/go.sum tools/kwok/go.sum tools/k8s/go.mod tools/kwok/go.mod | sha256sum | cut -c1-16)-$GATEWAY_API_VERSION"
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ]; then
  for b in kube-apiserver kube-controller-manager kube-scheduler etcd kwok; do [ -x "$bin/$b" ] || rm -f "$out/stamp"; done
fi
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ]; then exit 0; fi

command -v go >/dev/null || { log "Go is needed to build the Kubernetes test binaries (go1.24 or later)"; exit 1; }
start=$(date +%s)
log "building kube-apiserver, kube-controller-manager, kube-scheduler and etcd (first time: several minutes)"
(cd tools/k8s && go build -trimpath -o "../../$bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler)
(cd tools/k8s && go build -trimpath -o "../../$bin/etcd" go.etcd.io/etcd/server/v3)
log "building kwok"
(cd tools/kwok && go build -trimpath -o "../../$bin/kwok" sigs.k8s.io/kwok/cmd/kwok)

log "copying the Gateway API $GATEWAY_API_VERSION CRDs"
dir=$(cd tools/k8s && GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
[ -d "$dir/config/crd/standard" ] || { log "gateway-api module has no config/crd/standard at $dir"; exit 1; }
rm -rf "$out/gateway-api-crds" && mkdir -p "$out/gateway-api-crds"
cp "$dir"/config/crd/standard/*.yaml "$out/gateway-api-crds/"
chmod -R u+w "$out/gateway-api-crds"

echo "$stamp" > "$out/stamp"
log "built in $(( $(date +%s) - start )) s: $(ls "$bin" | tr '\n' ' ')"
