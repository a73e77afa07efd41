// The node flags and environment the control plane runs with in production: `npm start` (scripts/stack.ts),
// the container image (deploy/images/control-plane.Dockerfile, whose ENTRYPOINT and ENV test/unit/build.test.ts
// compares with these) and the xDS benchmark's driver of our control plane (bench/lib/xds-peer.ts, and
// bench/memory-probe.ts), so what is measured is what runs.
//
// --max-semi-space-size=4: V8's young generation grows to 2 x 16 MiB under a burst of allocation (start-up,
// a large load, many Envoys at once) and keeps it, resident, for good; capped at 2 x 4 MiB the control plane
// keeps ~25 MiB less at idle and ~24 MiB less after a 5,000-host load (medians of 3, bench/memory-probe.ts),
// at no CPU cost for one Envoy's cold load. What it costs, with 500 simulated Envoys (bench:xds --only fleet,
// one run each on a shared machine): cold loads and one-host changes as without it, reconnect storms ~0-30 %
// more control-plane CPU (8 MiB: about the same costs, ~10 MiB less saved; 2 MiB with a 1.5x old-generation
// growth: twice the CPU in a storm). README, "Memory", has the numbers.
// --expose-gc: lets the control plane collect a large change's garbage once every Envoy has applied it
// (xds-server/memory-release.ts) instead of leaving it resident until V8 next wants the room.
// --v8-pool-size=1: one V8 helper thread instead of node's four. The helpers compile hot functions and help
// the garbage collector; the first changes after a large load make V8 compile the change path's functions
// (TurboFan, several ms of CPU each), and four helpers at once took both CPUs of a 2-CPU machine from the
// main thread and from the Envoy being sent the change: ours' first one-host change at 1,000 hosts took
// 36-48 ms to ACK, and 25-28 ms with one helper in four series of five (36 in the fifth; bench/xds-change-trace.ts;
// two helpers did as four). What it costs, measured: ~10 ms more before a 5,000-host load's first CDS byte
// (three traced pairs) and ~3-5 ms at 1,000 (four pairs: the load path's code is compiled later, so more of
// it runs interpreted), within those loads' noise but not nothing; reconnect storms of 500
// simulated Envoys 3.3-4.2 s against 3.3-3.7 before (three runs each, bench:xds), CPU per storm about the same.
export const CONTROL_PLANE_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4', '--expose-gc', '--v8-pool-size=1'];

/**
 * Environment the control plane's node process starts with, wherever it is started (as the flags above).
 * MALLOC_ARENA_MAX=1: one malloc arena instead of one per thread that allocates (V8's helper threads, libuv's
 * pool), each of which keeps what was freed in it: ~2-5 MiB less RSS, no CPU difference measured.
 */
export const CONTROL_PLANE_NODE_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '1' };

/** Where scripts/build.ts puts the bundled CLI (xds-server/main.ts), relative to the repository root. */
export const CONTROL_PLANE_BUNDLE = 'dist/xds-server/main.mjs';
