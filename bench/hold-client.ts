// Holds requests open against the gateway from its own process, so the process that measures (control
// plane + upstream) does not also juggle thousands of client sockets on its event loop.
//
// Each request is HTTP/1.1 on its own connection ("Connection: close"), written by hand on a raw socket:
// the client needs only the status line and the time the answer arrived, and a raw socket costs far less
// than node:http per connection at 10,000 of them.
//
// Driven over stdin/stdout, one JSON object per line:
//   in:  {"cmd":"hold","id":"r1","port":10000,"host":"sleepy.local","path":"/r1/","count":1000,"timeoutMs":180000}
//   out: {"event":"sent","id":"r1","count":1000,"at":<epoch ms>}           once every request is written
//   out: {"event":"done","id":"r1","statuses":{"200":1000},"errors":{},"answeredAt":[...]}  once all ended
//   in:  {"cmd":"exit"}
// A burst instead of a hold ("deferWrite": true): every connection is opened first, then
//   out: {"event":"connected","id":"b1","count":1000,"failed":0,"at":<epoch ms>}
//   in:  {"cmd":"go","id":"b1"}     writes every request in one loop; "sent" then carries goAt
// Or once from a shell: tsx bench/hold-client.ts --port 10000 --host sleepy.local --count 100
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import readline from 'node:readline';
import { parseArgs } from 'node:util';

export interface HoldCommand {
  cmd: 'hold';
  id: string;
  port: number;
  host: string;
  /** Each request's path is this prefix plus its index, so the upstream can tell rounds apart. */
  path: string;
  count: number;
  timeoutMs: number;
  /** Connections being opened at once; more would overflow the listener's accept backlog. */
  connectConcurrency?: number;
  /** Open every connection, report "connected", and write the requests only on {"cmd":"go"}: a burst. */
  deferWrite?: boolean;
}

export interface ConnectedEvent {
  event: 'connected';
  id: string;
  count: number;
  /** Connections that failed to open (their requests are never sent). */
  failed: number;
  at: number;
}

export interface SentEvent {
  event: 'sent';
  id: string;
  count: number;
  /** Requests whose connection failed before the request was written (they count towards `count`). */
  failed: number;
  at: number;
  /** Burst only: epoch ms just before the first request was written. */
  goAt?: number;
}

export interface DoneEvent {
  event: 'done';
  id: string;
  count: number;
  statuses: Record<string, number>;
  errors: Record<string, number>;
  /** Epoch ms (performance.timeOrigin + now) at which each answer's first byte arrived; answered requests only. */
  answeredAt: number[];
  /** Epoch ms from each answer's x-bench-upstream-start header (set by the bench's Envoy upstream), where present. */
  upstreamStartAt: number[];
  /** Non-200 answers by what they said: status, x-scale-to-zero header, start of the body. */
  failures: Record<string, number>;
  /** Per request that carried x-bench-upstream-start: that start − the moment its request was written, ms. */
  writeToUpstreamMs: number[];
}

interface Outcome {
  status: number;
  error?: string;
  answeredAt?: number;
  upstreamStartAt?: number;
  /** Epoch ms just before the request was handed to the socket. */
  writeAt?: number;
  /** For a non-200 answer: why, in a few words. */
  failure?: string;
}

const UPSTREAM_START = /\r\nx-bench-upstream-start:\s*([0-9.]+)/i;

const epochNowMs = (): number => performance.timeOrigin + performance.now();

export type ClientEvent = SentEvent | ConnectedEvent | DoneEvent | { event: 'error'; message: string };

function send(event: ClientEvent): void {
  process.stdout.write(JSON.stringify(event) + '\n');
}

/**
 * Opens one connection, writes one request, and resolves when the answer has ended (or failed). With
 * `gate`, the request is written only once the gate opens (after onConnected).
 */
function request(c: HoldCommand, index: number, onWritten: (ok: boolean) => void, gate?: { onConnected: (ok: boolean) => void; opened: Promise<void> }): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port: c.port, noDelay: true });
    let head = '';
    let headDone = false;
    let status = 0;
    let answeredAt: number | undefined;
    let upstreamStartAt: number | undefined;
    let writeAt: number | undefined;
    let scaleToZeroHeader: string | undefined;
    let body = '';
    let written = false;
    let settled = false;
    const finish = (error?: string): void => {
      if (settled) return;
      settled = true;
      if (!written) {
        written = true;
        onWritten(false);
      }
      socket.destroy();
      const failure = status !== 0 && status !== 200 ? `${status}${scaleToZeroHeader ? ` x-scale-to-zero: ${scaleToZeroHeader}` : ''} ${body.replace(/\s+/g, ' ').trim().slice(0, 120)}` : undefined;
      resolve({
        status,
        ...(failure !== undefined ? { failure } : {}),
        ...(error && status === 0 ? { error } : {}),
        ...(answeredAt !== undefined ? { answeredAt } : {}),
        ...(upstreamStartAt !== undefined ? { upstreamStartAt } : {}),
        ...(writeAt !== undefined ? { writeAt } : {}),
      });
    };
    socket.setTimeout(c.timeoutMs, () => finish('ETIMEDOUT'));
    const write = (): void => {
      if (settled) return;
      writeAt = epochNowMs();
      socket.write(`GET ${c.path}${index} HTTP/1.1\r\nHost: ${c.host}\r\nConnection: close\r\n\r\n`, () => {
        written = true;
        onWritten(true);
      });
    };
    let connected = false;
    socket.once('connect', () => {
      connected = true;
      if (!gate) return write();
      gate.onConnected(true);
      void gate.opened.then(write);
    });
    if (gate) socket.once('close', () => { if (!connected) gate.onConnected(false); });
    socket.on('data', (chunk: Buffer) => {
      answeredAt ??= epochNowMs();
      // Only the response head matters (status line, one header); the body is read and dropped.
      if (!headDone) {
        head += chunk.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end >= 0 || head.length > 8192) {
          headDone = true;
          const h = end >= 0 ? head.slice(0, end) : head;
          status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(h)?.[1] ?? 0);
          const stamp = UPSTREAM_START.exec(h)?.[1];
          if (stamp !== undefined) upstreamStartAt = Number(stamp) * 1000;
          scaleToZeroHeader = /\r\nx-scale-to-zero:\s*([^\r]*)/i.exec(h)?.[1];
          // Keep the start of a failure's body: Envoy's local replies say there why they failed.
          if (status !== 200 && end >= 0) body = head.slice(end + 4, end + 4 + 160);
          head = '';
        }
      } else if (status !== 200 && body.length < 160) {
        body += chunk.toString('latin1', 0, Math.min(chunk.length, 160));
      }
    });
    socket.on('end', () => finish());
    socket.on('close', () => finish('closed before an answer'));
    socket.on('error', (err: NodeJS.ErrnoException) => finish(err.code ?? err.message));
  });
}

async function hold(c: HoldCommand): Promise<void> {
  const limit = Math.max(1, c.connectConcurrency ?? 256);
  let writtenCount = 0;
  let failed = 0;
  let opening = 0;
  let next = 0;
  const outcomes: Promise<Outcome>[] = [];
  let wake: (() => void) | undefined;
  const onWritten = (ok: boolean): void => {
    writtenCount += 1;
    if (!ok) failed += 1;
    opening -= 1;
    wake?.();
    if (writtenCount === c.count) send({ event: 'sent', id: c.id, count: c.count, failed, at: epochNowMs() });
  };
  // A bounded number of connects in flight: a burst of 10,000 SYNs would overflow the accept backlog and
  // cost one-second SYN retransmits, which only slows the setup (nothing here is timed).
  let gate: { onConnected: (ok: boolean) => void; opened: Promise<void> } | undefined;
  if (c.deferWrite) {
    let connectedCount = 0;
    let connectFailed = 0;
    let open!: () => void;
    const opened = new Promise<void>((r) => (open = r));
    gate = {
      opened,
      onConnected: (ok) => {
        connectedCount += 1;
        if (!ok) connectFailed += 1;
        opening -= 1;
        wake?.();
        if (connectedCount === c.count) {
          send({ event: 'connected', id: c.id, count: c.count, failed: connectFailed, at: epochNowMs() });
          goWaiters.set(c.id, () => {
            goAt = epochNowMs();
            open();
          });
        }
      },
    };
  }
  let goAt: number | undefined;
  const onWrittenBurst = (ok: boolean): void => {
    writtenCount += 1;
    if (!ok) failed += 1;
    if (writtenCount === c.count) send({ event: 'sent', id: c.id, count: c.count, failed, at: epochNowMs(), ...(goAt !== undefined ? { goAt } : {}) });
  };
  while (next < c.count) {
    while (opening >= limit) await new Promise<void>((r) => (wake = r));
    opening += 1;
    outcomes.push(request(c, next, gate ? onWrittenBurst : onWritten, gate));
    next += 1;
  }
  const results = await Promise.all(outcomes);
  const statuses: Record<string, number> = {};
  const errors: Record<string, number> = {};
  const answeredAt: number[] = [];
  const upstreamStartAt: number[] = [];
  const failures: Record<string, number> = {};
  const writeToUpstreamMs: number[] = [];
  for (const r of results) {
    if (r.upstreamStartAt !== undefined && r.writeAt !== undefined) writeToUpstreamMs.push(r.upstreamStartAt - r.writeAt);
    if (r.failure !== undefined) failures[r.failure] = (failures[r.failure] ?? 0) + 1;
    if (r.upstreamStartAt !== undefined) upstreamStartAt.push(r.upstreamStartAt);
    if (r.status !== 0) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
    if (r.error) errors[r.error] = (errors[r.error] ?? 0) + 1;
    if (r.answeredAt !== undefined) answeredAt.push(r.answeredAt);
  }
  send({ event: 'done', id: c.id, count: c.count, statuses, errors, answeredAt, upstreamStartAt, failures, writeToUpstreamMs });
}

/** Bursts waiting for their "go", by id. */
const goWaiters = new Map<string, () => void>();

function parseCommand(line: string): HoldCommand | 'exit' | { cmd: 'go'; id: string } {
  const raw = JSON.parse(line) as Record<string, unknown>;
  if (raw.cmd === 'exit') return 'exit';
  if (raw.cmd === 'go' && typeof raw.id === 'string') return { cmd: 'go', id: raw.id };
  if (raw.cmd !== 'hold' || typeof raw.id !== 'string' || typeof raw.port !== 'number' || typeof raw.host !== 'string' || typeof raw.path !== 'string' || typeof raw.count !== 'number' || typeof raw.timeoutMs !== 'number') {
    throw new Error(`not a hold command: ${line}`);
  }
  return raw as unknown as HoldCommand;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string', default: 'sleepy.local' },
      count: { type: 'string' },
      path: { type: 'string', default: '/held/' },
      'timeout-ms': { type: 'string', default: '180000' },
    },
  });
  if (values.count !== undefined) {
    // One-shot mode for trying things by hand.
    if (values.port === undefined) throw new Error('--port is required');
    await hold({ cmd: 'hold', id: 'cli', port: Number(values.port), host: values.host, path: values.path, count: Number(values.count), timeoutMs: Number(values['timeout-ms']) });
    return;
  }
  const lines = readline.createInterface({ input: process.stdin });
  const running: Promise<void>[] = [];
  for await (const line of lines) {
    if (line.trim() === '') continue;
    let command: HoldCommand | 'exit' | { cmd: 'go'; id: string };
    try {
      command = parseCommand(line);
    } catch (err) {
      send({ event: 'error', message: (err as Error).message });
      continue;
    }
    if (command === 'exit') {
      await Promise.all(running);
      return;
    }
    if (command.cmd === 'go') {
      const go = goWaiters.get(command.id);
      goWaiters.delete(command.id);
      if (go) go();
      else send({ event: 'error', message: `go for ${command.id}: no burst of that id is connected` });
      continue;
    }
    running.push(hold(command));
  }
  // stdin closed without "exit": the driver is gone, so nobody will read the results; stop at once.
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`hold-client: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
