// `npm run bench:cold-start-phases` (issue 12): a cold start through the process scaler split into its phases,
// with the process signalling its readiness beside the same process found by probing only, interleaved in
// one run on one gateway (control plane + Envoy --concurrency 2). Both hosts run the demo upstream; the
// "probe" one is started with --no-ready-signal. The control plane probes every 2 ms (the product default).
//
// Per round and host: scale to zero, one request, and
//   - the upstream's own readyAt (printed when both its ports accept) → first response byte at the client;
//   - readyAt → the control plane's "ready" (the signal arrived, or a probe passed): how long readiness went
//     unnoticed;
//   - the control plane's phases from its cold-start record: start requested → spawned → ready → release
//     pushed → ACKed (ms resolution).
// Writes bench/results/<out>.json and .md (default cold-start-phases).
import http from 'node:http';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT } from '../envoy-bootstrap/envoy.ts';
import { freePort } from '../test/support/ports.ts';
import { coldStartPhases } from '../xds-server/status/status-view.ts';
import { startGateway, runBenchmark } from './lib/stack.ts';
import { distribution, round, roundDistribution, type Distribution } from './lib/stats.ts';
import { epochNowMs, runCommand, waitFor } from './lib/system.ts';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '10' }, out: { type: 'string', default: 'cold-start-phases' } } });
const HOSTS = ['signal', 'probe'] as const;
type Kind = (typeof HOSTS)[number];
const PHASES = ['spawned', 'ready', 'release_pushed', 'release_acked'] as const;

interface Round {
  round: number;
  host: Kind;
  readyBy: string | undefined;
  readyToFirstByteMs: number;
  readyToNoticedMs: number;
  requestToFirstByteMs: number;
  /** Control-plane phases: ms since the previous phase. */
  phases: Record<string, number>;
}

function firstByte(port: number, host: string): Promise<{ at: number; status: number }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/cold', headers: { host }, agent: false, timeout: 60_000 }, (res) => {
      let at = 0;
      res.on('data', () => (at ||= epochNowMs()));
      res.on('end', () => resolve({ at: at || epochNowMs(), status: res.statusCode ?? 0 }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 60 s')));
    req.on('error', reject);
  });
}

async function main(): Promise<void> {
  const rounds = Number(values.rounds);
  const ports: Record<Kind, number> = { signal: await freePort(), probe: await freePort() };
  const wasm = path.join(REPO_ROOT, 'filter', 'build', 'filter.wasm');
  const gw = await startGateway({
    filterWasmPath: wasm,
    concurrency: 2,
    nodeId: 'bench-cold-start-phases',
    config: {
      listener: { address: '127.0.0.1', port: 0 },
      hosts: HOSTS.map((h) => ({
        name: h,
        domains: [`${h}.bench`],
        endpoints: [{ address: '127.0.0.1', port: ports[h] }],
        scaler: {
          kind: 'process',
          command: [process.execPath, '--import', 'tsx', 'upstream/main.ts', '--http-port', String(ports[h]), '--grpc-port', '0', '--id', h, ...(h === 'probe' ? ['--no-ready-signal'] : [])],
          cwd: REPO_ROOT,
        },
        wakeTimeoutMs: 30_000,
        idleAfterMs: 0,
      })),
    },
  });
  const results: Round[] = [];
  try {
    await waitFor('the gateway listener to finish warming', async () => {
      const stats = await gw.envoy.stats('listener_manager.total_listeners');
      return stats.get('listener_manager.total_listeners_warming') === 0 && (stats.get('listener_manager.total_listeners_active') ?? 0) > 0 ? true : undefined;
    }, { timeoutMs: 20_000, intervalMs: 20 });
    const readyAt = new Map<string, number>();
    gw.cp.hostOutput.on('line', (host, line) => {
      if (line.includes('"upstream ready"')) readyAt.set(host, (JSON.parse(line) as { readyAt: number }).readyAt);
    });
    // One unmeasured start of each first (module caches warm).
    for (let r = 0; r <= rounds; r++) {
      const order = r % 2 === 0 ? HOSTS : ([...HOSTS].reverse() as Kind[]);
      for (const host of order) {
        await gw.cp.hosts.scaleToZero(host, 'bench round');
        readyAt.delete(host);
        const sentAt = epochNowMs();
        const reply = await firstByte(gw.port, `${host}.bench`);
        const up = readyAt.get(host);
        const record = gw.cp.coldStarts.recent(host)[0];
        if (reply.status !== 200 || up === undefined || !record || record.readyAt === undefined) throw new Error(`round ${r} ${host}: status ${reply.status}, ready line ${up === undefined ? 'missing' : 'seen'}`);
        if (r === 0) continue;
        const phases = Object.fromEntries(coldStartPhases(record).filter((p) => p.phase !== 'start_requested').map((p) => [p.phase, p.sincePreviousMs]));
        results.push({
          round: r,
          host,
          readyBy: record.readyBy,
          readyToFirstByteMs: round(reply.at - up, 2),
          readyToNoticedMs: round(record.readyAt - up, 2),
          requestToFirstByteMs: round(reply.at - sentAt, 1),
          phases,
        });
        const last = results[results.length - 1]!;
        process.stdout.write(`round ${r} ${host}: ready → first byte ${last.readyToFirstByteMs} ms (noticed after ${last.readyToNoticedMs} ms, by ${last.readyBy}) ${JSON.stringify(phases)}\n`);
      }
    }
  } finally {
    await gw.close();
  }
  const summary = (host: Kind, f: (r: Round) => number | undefined): Distribution => roundDistribution(distribution(results.filter((r) => r.host === host).map(f).filter((x): x is number => x !== undefined)), 2);
  const rows: [string, (r: Round) => number | undefined][] = [
    ['upstream ready → first byte at the client', (r) => r.readyToFirstByteMs],
    ['upstream ready → control plane knows (signal / probe)', (r) => r.readyToNoticedMs],
    ...PHASES.map((p): [string, (r: Round) => number | undefined] => [`phase: → ${p.replace(/_/g, ' ')} (from the one before)`, (r) => r.phases[p]]),
    ['request sent → first byte (process start-up included)', (r) => r.requestToFirstByteMs],
  ];
  const table = rows.map(([label, f]) => ({ label, signal: summary('signal', f), probe: summary('probe', f) }));
  const commit = (await runCommand('git', ['-C', REPO_ROOT, 'rev-parse', 'HEAD'])).stdout.trim();
  const out = path.join(REPO_ROOT, 'bench', 'results', values.out!);
  await writeFile(`${out}.json`, JSON.stringify({ date: new Date().toISOString(), gitCommit: commit, rounds, table, perRound: results }, null, 2) + '\n');
  const md = [
    '# Cold start split into phases: readiness signalled vs probed',
    '',
    `Run ${new Date().toISOString()} with \`npm run bench:cold-start-phases\` (bench/cold-start-phases.ts); git ${commit.slice(0, 12)}; 2 CPUs shared with other work. One gateway (control plane + Envoy \`--concurrency 2\`), two process hosts running the demo upstream, interleaved, ${rounds} rounds each after one unmeasured start: **signal** writes \`READY=1\` to its readiness pipe (STZ_READY_FD) once both its ports accept; **probe** is started with \`--no-ready-signal\` and is found by the control plane's health check (every 2 ms, the default).`,
    '',
    '*Upstream ready* is the upstream\'s own `readyAt` (both ports accept). The phases come from the control plane\'s cold-start record (the status page\'s `phases`; `Date.now()`, so whole ms): spawned = the process was started, ready = the signal arrived or a probe passed, release pushed = the releasing snapshot was written to the Envoys\' streams, ACKed = every Envoy applied it. *First byte* is not seen by the control plane (the answer passes Envoy only); here the client stamps it.',
    '',
    '| measure (ms) | signal p50 | signal p90 | signal max | probe p50 | probe p90 | probe max |',
    '|---|---|---|---|---|---|---|',
    ...table.map((t) => `| ${t.label} | ${t.signal.p50} | ${t.signal.p90} | ${t.signal.max} | ${t.probe.p50} | ${t.probe.p90} | ${t.probe.max} |`),
    '',
    'Every round:',
    '',
    '| round | host | ready by | ready → first byte | ready → known | → spawned | → ready | → pushed | → ACKed | request → first byte |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...results.map((r) => `| ${r.round} | ${r.host} | ${r.readyBy} | ${r.readyToFirstByteMs} | ${r.readyToNoticedMs} | ${r.phases.spawned ?? ''} | ${r.phases.ready ?? ''} | ${r.phases.release_pushed ?? ''} | ${r.phases.release_acked ?? ''} | ${r.requestToFirstByteMs} |`),
    '',
    'Nearest-rank percentiles. Timings depend on what else runs on the machine.',
    '',
  ].join('\n');
  await writeFile(`${out}.md`, md);
  process.stdout.write(`wrote ${out}.md\n`);
}

runBenchmark(main);
