#!/usr/bin/env bash
# Builds (once, then cached) the upstream Gateway API conformance suite as a Go test binary, pinned by
# tools/conformance/go.mod (sigs.k8s.io/gateway-api v1.4.0, the version of the CRDs we install). Needs the
# Kubernetes test binaries too (scripts/k8s-tools.sh). Cold: about 2 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/k8s-tools.sh
out=.cache/k8s
stamp="$(cat tools/conformance/go.mod tools/conformance/go.sum tools/conformance/*.go | sha256sum | cut -c1-16)"
if [ -x "$out/bin/gateway-conformance.test" ] && [ -f "$out/conformance.stamp" ] && [ "$(cat "$out/conformance.stamp")" = "$stamp" ]; then exit 0; fi
printf '[conformance-tools] building the Gateway API conformance suite\n' >&2
(cd tools/conformance && go test -c -trimpath -o "../../$out/bin/gateway-conformance.test" .)
echo "$stamp" > "$out/conformance.stamp"
