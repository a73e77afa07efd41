#!/usr/bin/env bash
# The one test command: installs what is missing, type-checks, then runs every test (unit, golden,
# protocol, filter, end-to-end against the real Envoy, Kubernetes mode against a real API server built from
# pinned Go modules by scripts/k8s-tools.sh: about 7 minutes the first time, cached after), and finally the
# upstream Gateway API conformance suite (core GATEWAY-HTTP and GATEWAY-GRPC plus the extended features we
# declare; about 2 minutes, plus 2 to build the suite the first time). Any failure fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/k8s-tools.sh
bash scripts/conformance-tools.sh
npx tsc -p tsconfig.json --noEmit
npx mocha 'test/unit/**/*.test.ts' 'test/golden/**/*.test.ts' 'test/protocol/**/*.test.ts' 'test/filter/**/*.test.ts' 'test/e2e/**/*.e2e.ts' 'test/kube/**/*.kube.ts'
# The committed report (conformance/report.yaml) is only rewritten by `npm run conformance`.
node --import tsx scripts/conformance.ts --report .cache/conformance/ci-report.yaml > .cache/conformance-ci.log 2>&1 || {
  echo "the Gateway API conformance suite failed; last lines of .cache/conformance-ci.log:" >&2
  tail -n 60 .cache/conformance-ci.log >&2
  exit 1
}
grep -E '^    --- (PASS|FAIL)' .cache/conformance/suite.log | awk '{print $2}' | sort | uniq -c | sed 's/^/[conformance] /'
echo "[conformance] passed; report: .cache/conformance/ci-report.yaml"
