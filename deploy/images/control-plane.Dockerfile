# syntax=docker/dockerfile:1
# The control plane image: Node 20 running the control plane bundled by scripts/build.ts (plain JavaScript,
# as `npm start` runs it: no TypeScript loader at run time, the node flags and environment of
# xds-server/node-flags.ts, which test/unit/build.test.ts compares with the ENTRYPOINT and ENV below). Build from the
# repository root:
#   docker build -f deploy/images/control-plane.Dockerfile -t <registry>/envoy-scale-to-zero/control-plane:0.1.0 .
# deploy/control-plane.yaml runs it as uid 1000 with a read-only root filesystem and an emptyDir on /tmp.
# (Checked by reading only: there is no Docker engine where this was written.)

# Stage 1: the bundle, built with the locked dev dependencies (esbuild, tsx).
FROM node:20-bookworm-slim AS build
WORKDIR /src
# No install scripts: the only ones in the tree are esbuild's binary check and protobufjs' version warning.
COPY package.json package-lock.json ./
RUN npm ci --include=dev --ignore-scripts --no-audit --no-fund
# What xds-server/main.ts imports (the filter config's rules, filter/assembly/config/rules.ts, are shared by
# the filter and the control plane), the benchmark driver the build also bundles, and the build script.
COPY tsconfig.json ./
COPY model ./model
COPY snapshots ./snapshots
COPY sources ./sources
COPY xds-server ./xds-server
COPY filter ./filter
COPY bench/peer ./bench/peer
COPY scripts/build.ts ./scripts/build.ts
RUN node --import tsx scripts/build.ts && test -s dist/xds-server/main.mjs

# Stage 2: the bundle and the production dependencies only (npm packages stay outside the bundle).
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /src/dist ./dist

ENV NODE_ENV=production
ENV MALLOC_ARENA_MAX=1
USER 1000:1000
EXPOSE 18000 9902
ENTRYPOINT ["node", "--max-semi-space-size=4", "--expose-gc", "--v8-pool-size=1", "dist/xds-server/main.mjs"]
CMD ["--kubernetes"]
