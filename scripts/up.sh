#!/usr/bin/env bash
# The one run command: installs what is missing, then runs the control plane, the demo upstream and Envoy.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node --import tsx scripts/stack.ts "$@"
