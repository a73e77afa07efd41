#!/usr/bin/env bash
# Builds (once, then cached) the real Kubernetes control plane that the Kubernetes-mode tests and the local
# cluster run against: kube-apiserver, kube-controller-manager, kube-scheduler and kubectl (k8s.io/kubernetes v1.34.10),
# etcd v3.6.4 and kwok v0.7.0, all pinned by tools/k8s/go.mod and tools/kwok/go.mod (with go.sum), built
# with the machine's Go from the Go module proxy. Also copies the Gateway API CRDs of the pinned
# sigs.k8s.io/gateway-api module. Cold: about 6-8 minutes on 2 cores; warm: a second.
#
# One test-only patch: the API server refuses loopback addresses (127.0.0.0/8) in Endpoints and
# EndpointSlices (ValidateEndpointIP in k8s.io/kubernetes/pkg/apis/core/validation). Pods here get loopback
# IPs (kwok --cidr=127.x) so that local processes can serve them, so kube-apiserver is built through a
# `go build -overlay` of that one file with the loopback check turned off. Nothing else differs.
set -euo pipefail
cd "$(dirname "$0")/.."

GATEWAY_API_VERSION="v1.4.0"
PATCH_ID="loopback-endpoints-1"
out=.cache/k8s
bin="$out/bin"
log() { printf '[k8s-tools] %s\n' "$*" >&2; }
mkdir -p "$bin"

# The stamp names the pins: a change to either go.sum rebuilds.
stamp="$(cat tools/k8s/go.sum tools/kwok/go.sum tools/k8s/go.mod tools/kwok/go.mod | sha256sum | cut -c1-16)-$GATEWAY_API_VERSION-$PATCH_ID"
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ]; then
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok; do [ -x "$bin/$b" ] || rm -f "$out/stamp"; done
fi
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ]; then exit 0; fi

command -v go >/dev/null || { log "Go is needed to build the Kubernetes test binaries (go1.24 or later)"; exit 1; }
start=$(date +%s)
log "building kube-apiserver, kube-controller-manager, kube-scheduler and etcd (first time: several minutes)"
# The patched API server builds against a copy of the (checksum-verified) k8s.io/kubernetes module, through
# an alternate go.mod: the pinned one plus a replace of k8s.io/kubernetes by the copy. (`go build -overlay`
# refuses files in the module cache.)
k8s_dir=$(cd tools/k8s && GOFLAGS=-mod=mod go mod download -json k8s.io/kubernetes | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
[ -f "$k8s_dir/pkg/apis/core/validation/validation.go" ] || { log "no k8s.io/kubernetes module at '$k8s_dir'"; exit 1; }
src="$PWD/$out/src"
rm -rf "$src" && mkdir -p "$src"
cp -a "$k8s_dir" "$src/kubernetes" && chmod -R u+w "$src/kubernetes"
validation="$src/kubernetes/pkg/apis/core/validation/validation.go"
sed -i 's/^\tif ip\.IsLoopback() {$/\tif false \&\& ip.IsLoopback() { \/\/ stz test build: loopback pod IPs allowed/' "$validation"
[ "$(grep -c 'if false && ip.IsLoopback()' "$validation")" = 1 ] || { log "the loopback patch did not apply to $validation"; exit 1; }
cp tools/k8s/go.mod "$src/apiserver.go.mod"
cp tools/k8s/go.sum "$src/apiserver.go.sum"
printf '\nreplace k8s.io/kubernetes => %s\n' "$src/kubernetes" >> "$src/apiserver.go.mod"
(cd tools/k8s && go build -trimpath -modfile "$src/apiserver.go.mod" -o "../../$bin/" k8s.io/kubernetes/cmd/kube-apiserver)
(cd tools/k8s && go build -trimpath -o "../../$bin/" k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
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
