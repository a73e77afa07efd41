// Cold start through the process scaler: the demo upstream is stopped; one request arrives; the control
// plane starts the process, health-checks it, pushes the release. Measured per round:
//   ready → first byte: the upstream's own readyAt (it prints it when both its ports accept) to the first
//   response byte at the client — what our gateway adds on top of the backend's start-up;
//   ready → at upstream: readyAt to the held request's arrival at the upstream (its receivedAt, stamped when
//   the request head is parsed and returned in the reply body; both stamps are the upstream process's);
//   request → first byte: everything the caller waits, including the backend's own start-up.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ColdStartResult, ColdStartRound } from '../lib/model.ts';
import { startGateway } from '../lib/stack.ts';
import { waitFor } from '../lib/system.ts';
import { distribution } from '../lib/stats.ts';
import { freePort } from '../../test/support/ports.ts';

const REPO_ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const epochMs = (): number => performance.timeOrigin + performance.now();

/** Sends one request; resolves with its first response byte's time (epoch ms), the status and the body. */
function firstByte(port: number, host: string): Promise<{ at: number; status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/cold', headers: { host }, agent: false, timeout: 60_000 }, (res) => {
      let at = 0;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        at ||= epochMs();
        chunks.push(c);
      });
      res.on('end', () => resolve({ at: at || epochMs(), status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 60 s')));
    req.on('error', reject);
  });
}

export async function runColdStart(o: { filterWasmPath: string; rounds: number; log: (line: string) => void }): Promise<ColdStartResult> {
  const port = await freePort();
  const gw = await startGateway({
    filterWasmPath: o.filterWasmPath,
    concurrency: 2,
    nodeId: 'bench-cold-start',
    config: {
      listener: { address: '127.0.0.1', port: 0 },
      hosts: [
        {
          name: 'cold',
          domains: ['cold.bench'],
          endpoints: [{ address: '127.0.0.1', port }],
          scaler: { kind: 'process', command: [process.execPath, '--import', 'tsx', 'upstream/main.ts', '--http-port', String(port), '--grpc-port', '0', '--id', 'cold'], cwd: REPO_ROOT },
          wakeTimeoutMs: 30_000,
          idleAfterMs: 0,
        },
      ],
    },
  });
  const rounds: ColdStartRound[] = [];
  try {
    // The listener is bound (its port shows in the admin API) before it listens: while it warms, waiting for
    // its routes and the filter's ECDS config, a connection is refused. A request would wake the host, so
    // wait on Envoy's own count of warming listeners instead of on an answer.
    await waitFor(
      'the gateway listener to finish warming',
      async () => {
        const stats = await gw.envoy.stats('listener_manager.total_listeners');
        return stats.get('listener_manager.total_listeners_warming') === 0 && (stats.get('listener_manager.total_listeners_active') ?? 0) > 0 ? true : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 20 },
    );
    let readyAt = 0;
    gw.cp.hostOutput.on('line', (_host, line) => {
      if (!line.includes('"upstream ready"')) return;
      readyAt = (JSON.parse(line) as { readyAt: number }).readyAt;
    });
    let releasedAt = 0;
    for (let i = 0; i < o.rounds; i++) {
      await gw.cp.hosts.scaleToZero('cold', 'bench round');
      readyAt = 0;
      releasedAt = 0;
      const onSnapshot = (): void => {
        if (readyAt > 0 && releasedAt === 0) releasedAt = epochMs();
      };
      gw.cp.events.on('snapshot-set', onSnapshot);
      const sentAt = epochMs();
      const reply = await firstByte(gw.port, 'cold.bench');
      gw.cp.events.off('snapshot-set', onSnapshot);
      if (reply.status !== 200 || readyAt === 0) throw new Error(`cold-start round ${i + 1}: status ${reply.status}, upstream ready line ${readyAt ? 'seen' : 'not seen'}`);
      let receivedAt: number | undefined;
      try {
        receivedAt = (JSON.parse(reply.body) as { receivedAt?: number }).receivedAt;
      } catch {
        // Not the demo upstream's JSON: no arrival stamp for this round.
      }
      rounds.push({
        requestToFirstByteMs: reply.at - sentAt,
        readyToFirstByteMs: reply.at - readyAt,
        readyToAtUpstreamMs: typeof receivedAt === 'number' ? receivedAt - readyAt : null,
        readyToReleaseMs: releasedAt > 0 ? releasedAt - readyAt : null,
        status: reply.status,
      });
      o.log(`   round ${i + 1}: ready → at upstream ${typeof receivedAt === 'number' ? (receivedAt - readyAt).toFixed(1) : '–'} ms, ready → first byte ${(reply.at - readyAt).toFixed(1)} ms, request → first byte ${(reply.at - sentAt).toFixed(0)} ms`);
    }
  } finally {
    await gw.close();
  }
  const atUpstream = rounds.map((r) => r.readyToAtUpstreamMs).filter((x): x is number => typeof x === 'number');
  return {
    rounds,
    readyToFirstByteMs: distribution(rounds.map((r) => r.readyToFirstByteMs)),
    requestToFirstByteMs: distribution(rounds.map((r) => r.requestToFirstByteMs)),
    readyToAtUpstreamMs: atUpstream.length > 0 ? distribution(atUpstream) : null,
  };
}
