// Our control plane (file mode) as a process of its own, driven like the go-control-plane peer
// (bench/peer/go-control-plane/main.go), so the xDS benchmark measures both the same way and reads each
// one's RSS and CPU from /proc without the benchmark's own work mixed in.
//
//   node dist/bench/ours.mjs --config FILE --state-dir DIR --filter WASM [--no-acks]
//   (bundled by scripts/build.ts and run with CONTROL_PLANE_NODE_FLAGS, as the product runs: bench/lib/xds-peer.ts;
//   `node --import tsx bench/peer/ours.ts ...` runs the same sources unbundled)
//
// stdin, one command a line:
//   load <file>   a gateway config (YAML or JSON); becomes the config in force the way a file reload does
//   dump <file>   writes the last loaded snapshot, encoded by our codec, as the go-control-plane peer's
//                 load file: both control planes then send Envoy the same bytes
//   mem [live] [file]  where the memory is (bench/memory-probe.ts): `mem <json>` with process.memoryUsage()
//                 and V8's heap spaces; `live`: after a full collection, the heap still in use (node
//                 --expose-gc, a production flag); with a file, also writes a heap snapshot there first
//   quit
// stdout, one event a line (times are epoch milliseconds, the same clock as the benchmark's):
//   listening <port>
//   set <json {kind: version}> <ms>              a load's final snapshot is in the cache (after every phase)
//   ack <stream> <type url> <version> <ms>
//   nack <stream> <type url> <ms> <message>
//   dumped <file>
//   error <message>
//
// How a load is applied: the file is copied over the config file and reloadConfig() runs: the product's own
// reload path (read, validate, diff against the config in force, rebuild what changed, publish). Up to
// MAX_HOSTS (10,000) hosts, the largest size the benchmark loads.
import { readFileSync } from 'node:fs';
import { copyFile, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import type { Snapshot } from '../../snapshots/build.ts';
import { TYPE_URLS, type ResourceKind } from '../../snapshots/type-urls.ts';
import { DEFAULT_GROUP } from '../../xds-server/cache/snapshot-cache.ts';
import { encodeResource } from '../../xds-server/protos/codec.ts';
import { startControlPlane } from '../../xds-server/control-plane.ts';
import type { GrpcBounds } from '../../xds-server/grpc-bounds.ts';
import { createLogger } from '../../xds-server/log.ts';

const { values } = parseArgs({
  options: {
    config: { type: 'string' },
    'state-dir': { type: 'string' },
    filter: { type: 'string' },
    'no-acks': { type: 'boolean', default: false },
  },
});
if (!values.config || !values['state-dir'] || !values.filter) {
  process.stderr.write('usage: ours.ts --config FILE --state-dir DIR --filter WASM [--no-acks]\n');
  process.exit(2);
}
const configPath = values.config;
const nowMs = (): string => (performance.timeOrigin + performance.now()).toFixed(3);
const out = (line: string): void => void process.stdout.write(`${line}\n`);

const cp = await startControlPlane({
  configPath,
  stateDir: values['state-dir'],
  filterWasmPath: values.filter,
  // Plaintext xDS, as the go-control-plane peer serves it: the two are compared on the same footing.
  xdsSecurity: 'plaintext',
  log: createLogger({ level: 'warn', module: 'control-plane', write: (line) => void process.stderr.write(`${line}\n`) }),
  // STZ_BENCH_GRPC_BOUNDS='{"initialSyncConcurrency":100000}': the xDS port's bounds changed for a comparison run.
  ...(process.env.STZ_BENCH_GRPC_BOUNDS ? { grpcBounds: JSON.parse(process.env.STZ_BENCH_GRPC_BOUNDS) as Partial<GrpcBounds> } : {}),
});
if (!values['no-acks']) {
  cp.events.on('ack', (e) => out(`ack ${e.streamId} ${TYPE_URLS[e.kind]} ${e.version} ${nowMs()}`));
  cp.events.on('nack', (e) => out(`nack ${e.streamId} ${TYPE_URLS[e.kind]} ${nowMs()} ${e.message.replaceAll('\n', ' ')}`));
}
// STZ_BENCH_TRACE=1: also every request and response on the ADS streams and every snapshot set, to trace
// a push (the benchmark ignores these lines; bench/xds-trace.ts reads them).
if (process.env.STZ_BENCH_TRACE === '1') {
  // cpu=: this process's CPU time (user + system, µs) when the line was written, to tell its own work from waiting.
  // main=: the main thread's alone (ticks of 10 ms, /proc), to tell it from V8's helper threads.
  const mainThreadStat = `/proc/self/task/${process.pid}/stat`;
  const mainCpu = (): number => {
    const stat = readFileSync(mainThreadStat, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * 10_000;
  };
  const cpu = (): string => { const u = process.cpuUsage(); return `cpu=${u.user + u.system} main=${mainCpu()}`; };
  cp.events.on('request', (e) => out(`trace request ${e.streamId} ${e.kind} ${e.verdict.kind} names=${e.names.length} ${cpu()} ${nowMs()}`));
  cp.events.on('response', (e) => out(`trace response ${e.streamId} ${e.kind} ${e.version} names=${e.names.length} ${cpu()} ${nowMs()}`));
  // Only the clusters' version: reading the others here would work them out (encode them) before their turn.
  cp.events.on('snapshot-set', (e) => out(`trace snapshot-set ${e.group} cluster=${e.versions.cluster} ${nowMs()}`));
}
out(`listening ${cp.xdsPort}`);

async function load(file: string): Promise<void> {
  // The monotonic clock in µs, as a --cpu-prof profile stamps its samples: where a load starts in a profile.
  if (process.env.STZ_BENCH_TRACE === '1') out(`trace load-start ${process.hrtime.bigint() / 1000n} cpu=${process.cpuUsage().user + process.cpuUsage().system} ${nowMs()}`);
  await copyFile(file, configPath);
  const reloaded = await cp.reloadConfig();
  if (!reloaded.ok) throw new Error(JSON.stringify(reloaded.errors.slice(0, 5)));
  // reloadConfig() returns once its publish is in the cache: that snapshot, not another publish of our own
  // (which would rebuild everything and cost CPU the product's reload path does not spend).
  const snapshot = cp.cache.getSnapshot(DEFAULT_GROUP);
  if (!snapshot) throw new Error('no snapshot after the reload');
  last = snapshot;
  out(`set ${JSON.stringify(snapshot.versions)} ${nowMs()}`);
}

let last: Snapshot | undefined;

async function dump(file: string): Promise<void> {
  if (!last) throw new Error('dump before any load');
  const versions: Record<string, string> = {};
  const resources: Record<string, string[]> = {};
  for (const kind of Object.keys(TYPE_URLS) as ResourceKind[]) {
    versions[TYPE_URLS[kind]] = last.versions[kind];
    resources[TYPE_URLS[kind]] = [...last.resources[kind].values()].map((r) => Buffer.from(encodeResource(kind, r)).toString('base64'));
  }
  await writeFile(file, JSON.stringify({ versions, resources }));
  out(`dumped ${file}`);
}

function mem(live: boolean, file: string | undefined): void {
  if (file) v8.writeHeapSnapshot(file);
  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map((s) => [s.space_name, { size: s.space_size, used: s.space_used_size }]));
  const usage = process.memoryUsage();
  // `mem live`, with --expose-gc (a production flag): also the heap still in use after a full collection.
  const gc = (globalThis as { gc?: () => void }).gc;
  let liveHeap: number | undefined;
  if (live && gc) {
    gc();
    liveHeap = v8.getHeapStatistics().used_heap_size;
  }
  out(`mem ${JSON.stringify({ usage, heap: v8.getHeapStatistics(), spaces, liveHeap })}`);
}

let queue = Promise.resolve();
const lines = createInterface({ input: process.stdin });
let closing = false;
async function quit(): Promise<void> {
  if (closing) return;
  closing = true;
  await queue;
  await cp.close();
  process.exit(0);
}
lines.on('line', (line) => {
  const [command, ...args] = line.trim().split(/\s+/);
  if (command === 'load' && args.length === 1) {
    queue = queue.then(() => load(args[0]!).catch((err: Error) => out(`error ${err.message.replaceAll('\n', ' ')}`)));
  } else if (command === 'dump' && args.length === 1) {
    queue = queue.then(() => dump(args[0]!).catch((err: Error) => out(`error ${err.message.replaceAll('\n', ' ')}`)));
  } else if (command === 'mem' && args.length <= 2) {
    const live = args[0] === 'live';
    queue = queue.then(() => mem(live, live ? args[1] : args[0]));
  } else if (command === 'quit') void quit();
  else if (command) out(`error unknown command ${command}`);
});
lines.on('close', () => void quit());
