#!/usr/bin/env bash
# The one test command: installs what is missing, type-checks, then runs every test
# (unit, golden, protocol, filter, and end-to-end against the real Envoy).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npx tsc -p tsconfig.json --noEmit
npx mocha 'test/unit/**/*.test.ts' 'test/golden/**/*.test.ts' 'test/protocol/**/*.test.ts' 'test/filter/**/*.test.ts' 'test/e2e/**/*.e2e.ts'
