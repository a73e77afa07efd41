#!/usr/bin/env bash
# The one test command: installs what is missing, type-checks, then runs every test (unit, golden,
# protocol, filter, end-to-end against the real Envoy, and Kubernetes mode against a real API server built
# from pinned Go modules by scripts/k8s-tools.sh: about 7 minutes the first time, cached after).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/k8s-tools.sh
npx tsc -p tsconfig.json --noEmit
npx mocha 'test/unit/**/*.test.ts' 'test/golden/**/*.test.ts' 'test/protocol/**/*.test.ts' 'test/filter/**/*.test.ts' 'test/e2e/**/*.e2e.ts' 'test/kube/**/*.kube.ts'
