// The node flags the control plane runs with in production: `npm start` (scripts/stack.ts), the container
// image (deploy/images/control-plane.Dockerfile, whose ENTRYPOINT test/unit/build.test.ts compares with this)
// and the xDS benchmark's driver of our control plane (bench/lib/xds-peer.ts), so what is measured is what runs.
//
// --max-semi-space-size=4 (MiB): V8 grows the young generation up to 2 x 16 MiB under a burst of allocation
// (a large config load) and keeps it. Capped at 2 x 4 MiB the control plane's RSS is ~20 MiB lower, idle and
// loaded, at no measured CPU cost (a 5,000-host cold load took no more CPU: README, "Memory").
export const CONTROL_PLANE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];

/** Where scripts/build.ts puts the bundled CLI (xds-server/main.ts), relative to the repository root. */
export const CONTROL_PLANE_BUNDLE = 'dist/xds-server/main.mjs';
