// The node flags the control plane runs with in production: `npm start` (scripts/stack.ts), the container
// image (deploy/images/control-plane.Dockerfile, whose ENTRYPOINT test/unit/build.test.ts compares with this)
// and the xDS benchmark's driver of our control plane (bench/lib/xds-peer.ts), so what is measured is what runs.
//
// None today. --max-semi-space-size (capping V8's young generation, which grows to 2 x 16 MiB under a burst
// of allocation and stays) was measured: at 4 MiB it saved ~20 MiB of RSS idle and ~13 MiB after a
// 5,000-host load, at no CPU cost for one Envoy, but 500 simulated Envoys cost 10-50 % more control-plane CPU
// (cold load, one-host changes, the reconnect storm; 8 MiB: ~12 % more in delta cold load and storm). README,
// "Memory", has the numbers; an operator who prefers the memory can add it here (and to the image's ENTRYPOINT).
export const CONTROL_PLANE_NODE_FLAGS: readonly string[] = [];

/** Environment the control plane's node process starts with, wherever it is started (as the flags above). */
export const CONTROL_PLANE_NODE_ENV: Readonly<Record<string, string>> = {};

/** Where scripts/build.ts puts the bundled CLI (xds-server/main.ts), relative to the repository root. */
export const CONTROL_PLANE_BUNDLE = 'dist/xds-server/main.mjs';
