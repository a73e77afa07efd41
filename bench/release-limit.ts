// Bounded experiments for the filter's per-callback bound (issue 12): how many resumes or local replies can
// one Wasm callback start before Envoy 1.40 aborts? Builds the filter with a given bound into .cache/, runs
// one Envoy (--concurrency 1, so every request is on the one worker) and answers K held requests in one
// callback, in one of two ways:
//   --mode fail     the host's wake fails (its process exits after --fail-after-ms): every held request gets
//                   the filter's local reply. Each reply runs the stream through the filter again
//                   (on_response_headers, on_log, on_done) inside Envoy's drain of the previous callback's
//                   deferred actions, so the work nests: the worst case.
//   --mode release  the host becomes ready and the held requests are resumed into a live upstream (an Envoy
//                   direct_response): the resumed requests wait for an upstream connection, nothing nests.
//   --mode dead     as release, but every snapshot the control plane publishes is rewritten to give the host's
//                   cluster no endpoints: Envoy's router answers each resumed request at once (503 no healthy
//                   upstream), and that answer passes back through the filter, nested as in fail.
// Prints one JSON line: whether Envoy survived, its exit signal and the last log lines if not.
//   npx tsx bench/release-limit.ts --bound 100000 --held 300 --mode fail
import { parseArgs } from 'node:util';
import { buildFilterWithBound } from './lib/filter-variants.ts';
import { directResponseBootstrap, UPSTREAM_LISTENER } from './lib/configs.ts';
import { HoldClient } from './lib/hold-client-driver.ts';
import { startGateway, startStaticEnvoy, runBenchmark } from './lib/stack.ts';
import { sleep, waitFor, withTimeout } from './lib/system.ts';

const { values } = parseArgs({
  options: {
    bound: { type: 'string', default: '50' },
    held: { type: 'string', default: '300' },
    mode: { type: 'string', default: 'fail' },
    concurrency: { type: 'string', default: '1' },
    'fail-after-ms': { type: 'string', default: '6000' },
  },
});
const bound = Number(values.bound);
const held = Number(values.held);
const mode = values.mode as 'fail' | 'release' | 'dead';
const concurrency = Number(values.concurrency);

async function main(): Promise<void> {
  const wasm = buildFilterWithBound(bound);
  const upstream = await startStaticEnvoy(directResponseBootstrap({ stampStart: false }), UPSTREAM_LISTENER, 1);
  const host = {
    name: 'limit',
    domains: ['limit.local'],
    protocol: 'http1',
    endpoints: [{ address: '127.0.0.1', port: upstream.port }],
    initialState: mode === 'fail' ? 'scaled_to_zero' : 'ready',
    buffer: { holdTimeoutMs: 120_000, maxHeld: 100_000, retryAfterSeconds: 1 },
    idleAfterMs: 0,
    ...(mode === 'fail'
      ? { scaler: { kind: 'process', command: ['sh', '-c', `sleep ${Number(values['fail-after-ms']) / 1000}; exit 3`] }, health: { path: '/never', timeoutMs: 200 }, wakeTimeoutMs: 60_000 }
      : {}),
  };
  // The fail mode's endpoint must not answer its health check: a port nothing listens on.
  if (mode === 'fail') host.endpoints = [{ address: '127.0.0.1', port: 1 }];
  const gateway = await startGateway({ config: { listener: { address: '127.0.0.1', port: 0 }, hosts: [host] }, filterWasmPath: wasm, concurrency, nodeId: `release-limit-${process.pid}` });
  const client = HoldClient.start();
  const result: Record<string, unknown> = { bound, held, mode, concurrency };
  try {
    if (mode === 'dead') {
      // Experiment only: the cache is wrapped so no published snapshot gives the host an endpoint.
      const cache = gateway.cp.cache;
      const set = cache.setSnapshot.bind(cache);
      cache.setSnapshot = (group, snapshot) => {
        const endpoint = new Map(snapshot.resources.endpoint);
        for (const [name, cla] of endpoint) endpoint.set(name, { ...cla, endpoints: [] });
        set(group, { resources: { ...snapshot.resources, endpoint }, versions: { ...snapshot.versions, endpoint: `${snapshot.versions.endpoint}-empty` } });
      };
    }
    if (mode !== 'fail') {
      const change = await gateway.cp.hosts.scaleToZero('limit', 'experiment');
      if (change.snapshot) await gateway.cp.cache.waitUntilSettled('default', { extensionConfig: change.snapshot.versions.extensionConfig }, 10_000);
      await sleep(100);
    }
    const handle = client.hold({ id: 'x', port: gateway.port, host: 'limit.local', path: '/x/', count: held, timeoutMs: 30_000 });
    await withTimeout(handle.sent, 60_000, 'requests not sent');
    const heldNow = async (): Promise<number> => (await gateway.envoy.stats('scale_to_zero')).get('wasmcustom.scale_to_zero.held') ?? 0;
    await waitFor(`held = ${held}`, async () => ((await heldNow()) === held ? true : undefined), { timeoutMs: 30_000, intervalMs: 20 });
    result.heldBeforeAnswer = true;
    if (mode !== 'fail') void gateway.cp.hosts.wake('limit', 'experiment');
    const done = await Promise.race([
      handle.done.then((d) => ({ count: d.count, answered: d.answeredAt.length, statuses: d.statuses, errors: d.errors, failures: d.failures })),
      gateway.envoy.exited.then((code) => ({ envoyExited: code })),
    ]);
    result.outcome = done;
    await sleep(500);
    result.envoyRunning = gateway.envoy.isRunning();
    const log = gateway.envoy.logTail(400).split('\n');
    result.logLines = log.filter((l) => /Check failed|critical|error|Caught|#\d+|signal|stack|wasm/i.test(l)).slice(0, 8).map((l) => l.slice(0, 300));
    // What a new request gets afterwards: the VM may have failed without Envoy exiting.
    if (gateway.envoy.isRunning()) {
      const { getStatus } = await import('./lib/stack.ts');
      result.afterwards = await getStatus(gateway.port, 'limit.local', '/afterwards').catch((e: Error) => e.message);
      const stats = await gateway.envoy.stats('wasm');
      result.wasmStats = Object.fromEntries([...stats].filter(([k, v]) => v !== 0 && /fail|crash|error|created|active/i.test(k)));
    }
  } catch (err) {
    result.error = (err as Error).message;
    result.envoyRunning = gateway.envoy.isRunning();
    if (!gateway.envoy.isRunning()) result.logTail = gateway.envoy.logTail(40).split('\n').slice(0, 12);
  } finally {
    await client.close().catch(() => {});
    await gateway.close().catch(() => {});
    await upstream.envoy.stop();
  }
  process.stdout.write(JSON.stringify(result) + '\n');
}

runBenchmark(main);
