// `npm run bench:failover`: how long the gateway goes without a control plane when one replica dies (SIGKILL).
//  1. Config: two file-mode control planes (the CLI, real processes) and a real Envoy whose bootstrap names
//     both. Kill the replica the Envoy streams from; a sample is the time until the other replica sees the
//     Envoy ACK its listener and filter config. The killed replica is started again for the next round.
//  2. Decisions: two leader-election candidates (real processes, the control plane's LeaderElector with its
//     default timing) on a real API server (test/support/kube). Kill the leader; a sample is the time until
//     the other one leads. Wakes need no leader (any replica makes them, guarded), so this is the time until
//     idle scale-downs and status writes resume.
// Writes bench/results/failover.{json,md}. Every process it starts is stopped by its pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { REPO_ROOT, startEnvoy } from '../envoy-bootstrap/envoy.ts';
import { renderBootstrap } from '../envoy-bootstrap/render.ts';
import { DEFAULT_LEADER_ELECTION } from '../xds-server/kubernetes/leader-election.ts';
import { assertKubeBinaries, startKubeCluster } from '../test/support/kube/cluster.ts';
import { freePort } from '../test/support/ports.ts';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '10' },
    only: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write('Usage: npm run bench:failover -- [--rounds N (default 10)] [--only config|decisions]\n');
  process.exit(0);
}
const rounds = Number(values.rounds);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 100) throw new Error('--rounds must be 1..100');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const FILTER = path.join(REPO_ROOT, 'filter', 'build', 'filter.wasm');

async function until<T>(what: string, limitMs: number, check: () => Promise<T | undefined>, everyMs = 10): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${limitMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

function stats(samples: number[]): { n: number; p50: number; p99: number; max: number } {
  const s = [...samples].sort((a, b) => a - b);
  const q = (p: number): number => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)]!;
  return { n: s.length, p50: q(0.5), p99: q(0.99), max: s[s.length - 1]! };
}

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

function startProcess(args: string[]): { child: ChildProcess; exited: Promise<void>; lines: string[] } {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const lines: string[] = [];
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  child.stderr!.on('data', () => {});
  const exited = new Promise<void>((resolve) => child.once('exit', () => (children.delete(child), resolve())));
  return { child, exited, lines };
}

async function configFailover(): Promise<number[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'stz-bench-failover-'));
  await writeFile(path.join(dir, 'gateway.yaml'), stringify({ listener: { address: '127.0.0.1', port: 0 }, hosts: [{ name: 'web', domains: ['web.test'], endpoints: [{ address: '127.0.0.1', port: 9 }] }] }));
  const ports = [
    { xds: await freePort(), admin: await freePort() },
    { xds: await freePort(), admin: await freePort() },
  ];
  const replicas: ({ child: ChildProcess; exited: Promise<void> } | undefined)[] = [undefined, undefined];
  const start = async (i: number): Promise<void> => {
    const p = ports[i]!;
    replicas[i] = startProcess(['xds-server/main.ts', '--config', path.join(dir, 'gateway.yaml'), '--state-dir', path.join(dir, `state-${i}`), '--filter', FILTER, '--xds-port', String(p.xds), '--admin-port', String(p.admin), '--log-level', 'error', '--insecure-xds-plaintext']);
    await until(`replica ${i}`, 30_000, async () => ((await fetch(`http://127.0.0.1:${p.admin}/healthz`)).ok ? true : undefined));
  };
  const acked = async (i: number): Promise<boolean> => {
    const body = (await (await fetch(`http://127.0.0.1:${ports[i]!.admin}/v1/nodes`)).json()) as { nodes: { nodeId: string; types: Record<string, { ackedVersion?: string; sentVersion?: string }> }[] };
    const n = body.nodes.find((x) => x.nodeId === 'bench-failover');
    return !!n && ['listener', 'extensionConfig'].every((k) => n.types[k]?.ackedVersion !== undefined && n.types[k]?.ackedVersion === n.types[k]?.sentVersion);
  };
  await start(0);
  await start(1);
  const envoy = await startEnvoy({
    bootstrap: renderBootstrap({ nodeId: 'bench-failover', xdsAddress: '127.0.0.1', xdsPort: ports[0]!.xds, moreXdsEndpoints: [{ address: '127.0.0.1', port: ports[1]!.xds }] }),
    logLevel: 'critical',
  });
  const samples: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      const from = await until('the Envoy on one replica', 30_000, async () => ((await acked(0).catch(() => false)) ? 0 : (await acked(1).catch(() => false)) ? 1 : undefined));
      const to = 1 - from;
      const killedAt = Date.now();
      replicas[from]!.child.kill('SIGKILL');
      await until('the Envoy ACKing the other replica', 30_000, async () => ((await acked(to).catch(() => false)) ? true : undefined));
      samples.push(Date.now() - killedAt);
      process.stderr.write(`[failover] config round ${round + 1}/${rounds}: ${samples.at(-1)} ms\n`);
      await replicas[from]!.exited;
      await start(from);
      await sleep(500);
    }
  } finally {
    await envoy.stop();
    for (const r of replicas) {
      r?.child.kill('SIGKILL');
      await r?.exited;
    }
    await rm(dir, { recursive: true, force: true });
  }
  return samples;
}

async function decisionFailover(): Promise<number[]> {
  assertKubeBinaries();
  const cluster = await startKubeCluster();
  const candidates: ({ child: ChildProcess; exited: Promise<void>; lines: string[] } | undefined)[] = [undefined, undefined];
  const start = (i: number): void => {
    candidates[i] = startProcess(['bench/lib/lease-candidate.ts', cluster.kubeconfigPath, `candidate-${i}`]);
  };
  const leadingSince = (i: number): number | undefined => {
    const lines = candidates[i]?.lines ?? [];
    const last = lines.at(-1);
    return last?.startsWith('LEADING ') ? Number(last.slice(8)) : undefined;
  };
  const samples: number[] = [];
  try {
    start(0);
    await until('a first leader', 60_000, async () => (leadingSince(0) !== undefined ? true : undefined), 50);
    start(1);
    await sleep(3_000);
    for (let round = 0; round < rounds; round++) {
      const from = leadingSince(0) !== undefined ? 0 : leadingSince(1) !== undefined ? 1 : undefined;
      if (from === undefined) throw new Error('no leader before the kill');
      const to = 1 - from;
      const killedAt = Date.now();
      candidates[from]!.child.kill('SIGKILL');
      const at = await until('the other candidate leading', 60_000, async () => leadingSince(to), 20);
      samples.push(at - killedAt);
      process.stderr.write(`[failover] decisions round ${round + 1}/${rounds}: ${samples.at(-1)} ms\n`);
      await candidates[from]!.exited;
      start(from);
      await sleep(3_000);
    }
  } finally {
    for (const c of candidates) {
      c?.child.kill('SIGKILL');
      await c?.exited;
    }
    await cluster.stop();
  }
  return samples;
}

const only = values.only;
const config = only === undefined || only === 'config' ? await configFailover() : [];
const decisions = only === undefined || only === 'decisions' ? await decisionFailover() : [];
const t = DEFAULT_LEADER_ELECTION;
const json = { when: new Date().toISOString(), rounds, leaderElection: t, config, decisions, summary: { config: config.length ? stats(config) : null, decisions: decisions.length ? stats(decisions) : null } };
const row = (what: string, samples: number[], target: string, targetMs: number): string => {
  if (samples.length === 0) return `| ${what} | not run | | | | ${target} | |`;
  const s = stats(samples);
  return `| ${what} | ${s.n} | ${s.p50} | ${s.p99} | ${s.max} | ${target} | ${s.p99 <= targetMs ? 'pass' : 'FAIL'} |`;
};
const md = [
  '# Failover of a control-plane replica (SIGKILL)',
  '',
  `Written by \`npm run bench:failover\` (bench/failover.ts) on ${json.when}, ${rounds} rounds each.`,
  '',
  '| what | samples | p50 ms | p99 ms | max ms | target | |',
  '|---|---|---|---|---|---|---|',
  row("kill -9 of the replica an Envoy streams from → that Envoy has ACKed another replica's listener and filter config", config, '≤ 2 s', 2_000),
  row(`kill -9 of the leader → the other replica leads (Lease ${t.leaseDurationMs / 1000} s, renew deadline ${t.renewDeadlineMs / 1000} s, retry ${t.retryPeriodMs / 1000} s)`, decisions, '≤ 15 s', 15_000),
  '',
  'Wakes do not wait for a leader: any replica makes them (a write guarded by the resourceVersion it was decided',
  'on), so held requests are released by whichever replica their Envoy calls. The leader takes only idle',
  'scale-downs and status writes. A dead leader is replaced once its Lease, as the other replica last saw it',
  'change, has run out: between the lease duration minus one retry period after its last renewal and the',
  'lease duration plus one jittered retry period (up to 2.2 x the retry period) after it.',
  '',
].join('\n');
await writeFile(path.join(REPO_ROOT, 'bench', 'results', 'failover.json'), JSON.stringify(json, null, 2) + '\n');
await writeFile(path.join(REPO_ROOT, 'bench', 'results', 'failover.md'), md);
process.stdout.write(md);
