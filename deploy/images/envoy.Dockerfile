# syntax=docker/dockerfile:1
# The gateway's Envoy: the pinned upstream Envoy (v1.40.0, the version the tests run, with the V8 Wasm
# runtime) plus the scale-to-zero Wasm filter at /etc/envoy/filter.wasm. The control plane does not ship the
# filter over xDS: its ECDS config names a local file (`--filter`, deploy/control-plane.yaml passes
# /etc/envoy/filter.wasm), so the filter must be at that path in every Envoy pod. Baking it into the image
# keeps the Envoy binary and the filter build one versioned, immutable unit (no init container, no shared
# volume, nothing to fetch at start). Rebuild and roll both Deployments together when the filter changes.
# Build from the repository root:
#   docker build -f deploy/images/envoy.Dockerfile -t <registry>/envoy-scale-to-zero/envoy:0.1.0 .
# (Checked by reading only: there is no Docker engine where this was written.)

# Stage 1: the filter, built with the locked AssemblyScript compiler (npm run build:filter).
FROM node:20-bookworm-slim AS filter
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --include=dev --ignore-scripts --no-audit --no-fund
COPY filter ./filter
RUN npm run build:filter && test -s filter/build/filter.wasm

# Stage 2: Envoy + the filter. The image's "envoy" user is uid 101; deploy/gateway.yaml runs it as that uid
# with a read-only root filesystem (the file only needs to be readable).
FROM envoyproxy/envoy:v1.40.0
COPY --from=filter /src/filter/build/filter.wasm /etc/envoy/filter.wasm
USER 101:101
