// File mode: config file → store → (core: publisher → cache → ADS streams, admin API, scaling), with local
// processes as the provider. Library form, so tests and the stack runner start it in-process; main.ts is the
// CLI around it.
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import type { FieldError } from '../snapshots/errors.ts';
import type { GatewayConfig } from '../sources/file/config.ts';
import { IncrementalConfigParser } from '../sources/file/incremental-parse.ts';
import { parseGatewayConfigText } from '../sources/file/parse.ts';
import { startCore, type Core, type CoreOptions } from './core.ts';
import { createLogger, type Logger } from './log.ts';
import type { SnapshotCache } from './cache/snapshot-cache.ts';
import { MemoryRelease, RELEASE_SETTLE_MS, ReleaseAfterPush } from './memory-release.ts';
import type { Published, Publisher } from './publisher.ts';
import { ProcessProvider } from './scaling/process-provider.ts';
import { ManualProvider } from './scaling/provider.ts';
import { FILE_GATEWAY, FilePki } from './security/file-pki.ts';
import { MemoryCertificateProvider, createXdsTls, type XdsTls } from './security/xds-tls.ts';
import { loadState } from './state/persistence.ts';
import { GatewayStore } from './state/store.ts';

export { WAKE_LEASE_MS } from './core.ts';

export interface ControlPlaneOptions extends CoreOptions {
  configPath: string;
  stateDir: string;
  filterWasmPath: string;
  /**
   * The xDS/LRS port's transport: mutual TLS with certificates kept in <stateDir>/pki (the default), or
   * plaintext (--insecure-xds-plaintext: any local process may then read the config and send load reports).
   */
  xdsSecurity?: 'mtls' | 'plaintext';
  /** The mTLS wake port (default: any free port; a restart in tests keeps it). */
  wakePort?: number;
  /** Lifetime of the issued leaf certificates (default 30 days; tests shorten it). */
  certificateLifetimeMs?: number;
  /** How often a waking process host is probed (default 2 ms: it bounds the cold-start delay). */
  probeIntervalMs?: number;
  log?: Logger;
}

export interface ControlPlane extends Core {
  store: GatewayStore;
  processes: ProcessProvider;
  /** The certificates of mutual TLS on xDS (absent in plaintext mode). */
  pki: FilePki | undefined;
  /** Every line a process host writes: ('line', host, line). */
  hostOutput: EventEmitter<{ line: [string, string] }>;
  reloadConfig(): Promise<{ ok: true } | { ok: false; errors: FieldError[] }>;
}

export class ConfigFileError extends Error {
  constructor(
    readonly file: string,
    readonly errors: FieldError[],
  ) {
    super(`${file} is not a valid gateway config:\n${errors.map((e) => `  ${e.path || '/'}: ${e.message}`).join('\n')}`);
  }
}

/** Reads the config file; with a parser, at the cost of what changed since that parser's last read. */
export async function readGatewayConfig(file: string, parser?: IncrementalConfigParser): Promise<{ ok: true; value: GatewayConfig } | { ok: false; errors: FieldError[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return { ok: false, errors: [{ path: '', message: `cannot read ${file}: ${(err as Error).message}` }] };
  }
  return parser ? parser.parse(text) : parseGatewayConfigText(text);
}

/** A reload that adds, changes or removes at least this many hosts is large enough to collect after. */
const MEMORY_RELEASE_MIN_HOSTS = 500;

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const log = options.log ?? createLogger({ module: 'control-plane' });
  // One reader for the life of the control plane: a reload re-reads only the host entries whose text changed.
  const configParser = new IncrementalConfigParser();
  const initial = await readGatewayConfig(options.configPath, configParser);
  if (!initial.ok) throw new ConfigFileError(options.configPath, initial.errors);
  const persisted = await loadState(options.stateDir);
  const hostOutput = new EventEmitter<{ line: [string, string] }>();
  const processes = new ProcessProvider(log.child('process'), (host, line) => hostOutput.emit('line', host, line), {
    probeIntervalMs: options.probeIntervalMs ?? 2,
    stateDir: options.stateDir,
  });
  // Before anything can wake a host: a copy a killed control plane left running would hold its port.
  await processes.stopOrphans();
  let store!: GatewayStore;
  let publisher!: Publisher;
  let cache!: SnapshotCache;
  const release = new ReleaseAfterPush(new MemoryRelease(), { waitUntilSettled: (targets, ms) => cache.waitUntilSettled(targets, ms) }, RELEASE_SETTLE_MS);
  // A process host whose process is not running (none is at start-up; a reload may add one) is held, so
  // its first request wakes it instead of meeting a closed port.
  const holdStoppedProcessHosts = async (why: string): Promise<void> => {
    // Only process hosts can be stopped: the others are not looked at (a view per host cost ~5 ms at 5,000 hosts).
    for (const config of store.hostConfigs()) {
      if (config.scaler.kind !== 'process' || processes.isRunning(config.name) || store.host(config.name)?.scaledToZero !== false) continue;
      await store.setScaledToZero(config.name, true, why);
    }
  };
  const reloadConfig = async (): Promise<{ ok: true } | { ok: false; errors: FieldError[] }> => {
    const next = await readGatewayConfig(options.configPath, configParser);
    if (!next.ok) {
      log.error('config reload refused; the previous config stays in force', { file: options.configPath, errors: next.errors });
      return next;
    }
    const kept = new Set(next.value.hosts.map((h) => h.name));
    const removed = store.hostConfigs().filter((h) => !kept.has(h.name));
    // The store takes the new config at once; its state file is written (and fsynced) once the publish is
    // applied, so the write (at 5,000 hosts ~20-40 ms of CPU) does not compete with Envoy taking in the new
    // clusters. A crash before it lands loses nothing a restart does not rebuild: the reload's hosts get their
    // marks from the config file again (kept hosts' marks were written before), and the generation rule
    // covers the generation. The reload returns only once the state is written.
    let pushed!: () => void;
    const persistAfter = new Promise<void>((resolve) => (pushed = resolve));
    const replaced = store.replaceConfig(next.value, { persistAfter });
    // Awaited below; a failed publish must not leave it an unhandled rejection meanwhile.
    replaced.catch(() => {});
    let snapshots: Published;
    try {
      await holdStoppedProcessHosts('added by a config reload; the process is not running');
      // A reload is already a whole batch of changes: it is pushed on the next turn of the event loop instead
      // of waiting the quiet time for more (changes made meanwhile still join it).
      snapshots = await publisher.schedule({ urgent: true });
    } finally {
      pushed();
    }
    const diff = await replaced;
    // What the next reload needs of this one's read (its host entries), once this config is pushed.
    setTimeout(() => configParser.remember(), 100).unref();
    // A large reload's garbage goes back once every Envoy has applied it (memory-release.ts). Only a reload of
    // many hosts: waiting for every Envoy to settle costs a check per ACK, which with hundreds of Envoys made
    // each one-host change cost ~50 % more CPU, and a small reload leaves little garbage anyway.
    if (diff.added.length + diff.changed.length + diff.removed.length >= MEMORY_RELEASE_MIN_HOSTS) void release.pushed(snapshots.groups);
    for (const h of removed) await processes.stop(h);
    log.info('config reloaded', { file: options.configPath, hosts: next.value.hosts.length, added: diff.added.length, changed: diff.changed.length, removed: diff.removed.length, ...(diff.added.length + diff.changed.length + diff.removed.length <= 10 ? { names: { ...diff } } : {}) });
    return { ok: true };
  };

  let pki: FilePki | undefined;
  let xdsTls: XdsTls | undefined;
  if ((options.xdsSecurity ?? 'mtls') === 'mtls') {
    pki = await FilePki.open({ stateDir: options.stateDir, log: log.child('pki'), ...(options.certificateLifetimeMs ? { leafLifetimeMs: options.certificateLifetimeMs } : {}) });
    const provider = new MemoryCertificateProvider();
    provider.set(pki.serverIdentity);
    pki.onServerIdentity((identity) => provider.set(identity));
    pki.startRenewal();
    xdsTls = createXdsTls(provider, log.child('xds-tls'), { wholeModelGateway: `${FILE_GATEWAY.namespace}/${FILE_GATEWAY.name}` });
  } else {
    log.warn('xDS and load reports are served in PLAINTEXT (--insecure-xds-plaintext): any process that can reach the xDS port gets the whole config and can send load reports that change scaling decisions');
  }
  const core = await startCore({ ...options, ...(xdsTls && pki ? { xdsTls, wakeTls: { files: pki.envoyFiles, ...(options.wakePort !== undefined ? { port: options.wakePort } : {}) } } : {}) }, log, async (wake, admin) => {
    // Started processes signal readiness to the admin API (POST /v1/ready/{name}).
    processes.setReadyUrlBase(admin.callableUrl);
    store = new GatewayStore(initial.value, persisted, { stateDir: options.stateDir, filterWasmPath: options.filterWasmPath, ...(wake ? { wake } : {}) });
    await holdStoppedProcessHosts('control plane started; the process is not running');
    return {
      state: store,
      providers: { manual: new ManualProvider(), process: processes },
      reloadConfig,
      readySignal: (host, token) => processes.signalReady(host, token),
      started: (c) => {
        publisher = c.publisher;
        cache = c.cache;
      },
      close: async () => {
        pki?.stop();
        await processes.close();
        // A reload's write that waits for its push is not lost with the process.
        await store.flush();
      },
    };
  });
  return { ...core, store, processes, pki, hostOutput, reloadConfig };
}
