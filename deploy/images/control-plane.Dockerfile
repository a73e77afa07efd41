# syntax=docker/dockerfile:1
# The control plane image: Node 20 running the TypeScript sources with tsx, as `npm start` does (no compile
# step to keep in sync). Build from the repository root:
#   docker build -f deploy/images/control-plane.Dockerfile -t <registry>/envoy-scale-to-zero/control-plane:0.1.0 .
# deploy/control-plane.yaml runs it as uid 1000 with a read-only root filesystem and an emptyDir on /tmp.
# (Checked by reading only: there is no Docker engine where this was written.)
FROM node:20-bookworm-slim

WORKDIR /app
# Exactly the locked dependencies. tsx is a devDependency, so dev dependencies are installed too (the
# TypeScript compiler and the test tools come along: simple over small). No install scripts: the only ones
# in the tree are esbuild's binary check and protobufjs' version warning.
COPY package.json package-lock.json ./
RUN npm ci --include=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# Only what xds-server/main.ts imports at run time (it never reads filter.wasm: it only tells Envoy the path).
COPY tsconfig.json ./
COPY model ./model
COPY snapshots ./snapshots
COPY sources ./sources
COPY xds-server ./xds-server
# The filter config's rules (filter/assembly/config/rules.ts) are shared by the filter and the control plane.
COPY filter ./filter

ENV NODE_ENV=production \
    TSX_DISABLE_CACHE=1
USER 1000:1000
EXPOSE 18000 9902
ENTRYPOINT ["node", "--import", "tsx", "xds-server/main.ts"]
CMD ["--kubernetes"]
