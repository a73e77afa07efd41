// "The pods" of a kwok cluster: kwok only writes pod status, so this watches Pods and, for each one that is
// Running and Ready with a podIP in 127.0.0.0/8, serves HTTP/1.1 and h2c on podIP:containerPort (every TCP
// port of the first container) in this process. A server stops when its pod goes away, stops being Ready
// or starts terminating. It never binds or dials anything outside 127.0.0.0/8.
//
// Each server answers every request with 200 and JSON {pod, namespace, podIP, port, path, method, host,
// protocol}; a WebSocket upgrade (HTTP/1.1) to any path echoes every message back. A pod annotated
// `stz.test/pod-server: "off"` gets no server (Ready but refusing connections); one annotated
// `stz.test/pod-server: "grpc"` gets the demo upstream's gRPC echo and health services instead
// (upstream/server.ts), whose echo replies name the pod as `upstream: "<namespace>/<pod>"`.
//
// A pod with a container whose image contains `echo-basic` (the Gateway API conformance suite's backend) is
// served as that image would serve it instead, whatever its containerPorts (echo-basic.ts): on HTTP_PORT
// (3000) and H2C_PORT (3001), or gRPC on HTTP_PORT when GRPC_ECHO_SERVER is set, with POD_NAME, NAMESPACE and
// the other env taken from the pod spec (downward-API fieldRefs resolved from the pod). Its echo log lines
// ("Echoing back request made to <path> to client (<addr>)") are emitted as 'echo-log' events.
import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { WebSocketServer } from 'ws';
import { routeByPreface } from '../../../upstream/protocol-sniff.ts';
import { startUpstream, type Upstream } from '../../../upstream/server.ts';
import {
  EchoBasicGrpcServer,
  EchoBasicHttpServer,
  echoBasicConfig,
  type EchoBasicListenerKind,
  type EchoContext,
} from './echo-basic.ts';

export const POD_SERVER_ANNOTATION = 'stz.test/pod-server';
/** Milliseconds after the pod turned Ready before its server listens (a slow-starting app). */
export const LISTEN_DELAY_ANNOTATION = 'stz.test/listen-delay-ms';

/**
 * http: the JSON pod reply over HTTP/1.1 and h2c; grpc: the demo upstream's gRPC services; echo-http,
 * echo-h2c, echo-grpc: the echo-basic stand-in's HTTP_PORT, H2C_PORT and gRPC listeners.
 */
export type PodServerKind = 'http' | 'grpc' | EchoBasicListenerKind;

export interface PodServerInfo {
  namespace: string;
  pod: string;
  uid: string;
  ip: string;
  port: number;
  kind: PodServerKind;
  /** http://ip:port, or grpc://ip:port for the gRPC kinds. */
  url: string;
  /** Requests answered so far. */
  requests: number;
}

export interface PodReply {
  pod: string;
  namespace: string;
  podIP: string;
  port: number;
  path: string;
  method: string;
  host: string;
  protocol: 'HTTP/1.1' | 'HTTP/2';
}

export interface PodServersOptions {
  kubeConfig: k8s.KubeConfig;
  /** Namespaces to watch; default all. */
  namespaces?: string[];
  log?: (line: string) => void;
}

export interface EchoLogLine {
  namespace: string;
  pod: string;
  line: string;
}

export interface PodServers {
  /**
   * 'listening' and 'closed' with a PodServerInfo; 'error' with an Error (bind failures, watch errors);
   * 'echo-log' with an EchoLogLine for each request an echo-basic pod echoes.
   */
  readonly events: EventEmitter;
  /** Resolves once every watch has listed (and the servers for already-ready pods are up). */
  readonly synced: Promise<void>;
  list(namespace?: string): PodServerInfo[];
  /** Resolves with the (first) server of pod namespace/name once it listens. */
  waitForListening(namespace: string, pod: string, timeoutMs?: number): Promise<PodServerInfo>;
  /** Resolves once pod namespace/name has no server. */
  waitForClosed(namespace: string, pod: string, timeoutMs?: number): Promise<void>;
  /** Resolves once predicate(list()) holds (checked on every change). */
  waitFor(predicate: (servers: PodServerInfo[]) => boolean, timeoutMs?: number, what?: string): Promise<PodServerInfo[]>;
  stop(): Promise<void>;
}

export function isLoopbackIPv4(ip: string | undefined): ip is string {
  return typeof ip === 'string' && net.isIPv4(ip) && ip.startsWith('127.');
}

interface Desired {
  namespace: string;
  pod: string;
  uid: string;
  ip: string;
  /** One server per entry, in order. */
  servers: { kind: PodServerKind; port: number }[];
  /** For echo-basic pods: what the echo reports. */
  echo?: EchoContext;
  /** For echo-basic pods: env it could not resolve, ports it could not use, listeners it does not serve. */
  problems?: string[];
  /** Epoch ms before which it must not listen (LISTEN_DELAY_ANNOTATION). */
  listenAt?: number;
}

interface Served {
  readonly info: PodServerInfo;
  listen(): Promise<void>;
  close(): Promise<void>;
}

function serverInfo(d: Desired, kind: PodServerKind, port: number): PodServerInfo {
  const scheme = kind === 'grpc' || kind === 'echo-grpc' ? 'grpc' : 'http';
  return { namespace: d.namespace, pod: d.pod, uid: d.uid, ip: d.ip, port, kind, url: `${scheme}://${d.ip}:${port}`, requests: 0 };
}

class PodServer implements Served {
  readonly info: PodServerInfo;
  private readonly front: net.Server;
  private readonly h1: http.Server;
  private readonly h2: http2.Http2Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly ws = new WebSocketServer({ noServer: true });

  constructor(d: Desired, port: number) {
    this.info = serverInfo(d, 'http', port);
    const onRequest = (req: http.IncomingMessage | http2.Http2ServerRequest, res: http.ServerResponse | http2.Http2ServerResponse): void => {
      req.resume();
      req.on('error', () => {});
      req.once('end', () => {
        this.info.requests++;
        const isH2 = req.httpVersion === '2.0';
        const host = isH2 ? (req as http2.Http2ServerRequest).authority : (req.headers.host ?? '');
        const reply: PodReply = {
          pod: d.pod,
          namespace: d.namespace,
          podIP: d.ip,
          port,
          path: req.url ?? '/',
          method: req.method ?? 'GET',
          host,
          protocol: isH2 ? 'HTTP/2' : 'HTTP/1.1',
        };
        const body = Buffer.from(JSON.stringify(reply));
        const headers = { 'content-type': 'application/json', 'content-length': String(body.length) };
        if (res instanceof http.ServerResponse) res.writeHead(200, headers);
        else res.writeHead(200, headers);
        res.end(body);
      });
    };
    this.h1 = http.createServer(onRequest);
    this.h1.keepAliveTimeout = 75_000;
    this.h1.on('upgrade', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return void socket.destroy();
      this.info.requests++;
      this.ws.handleUpgrade(req, socket, head, (client) => {
        client.on('error', () => {});
        client.on('message', (data, binary) => client.send(data, { binary }));
      });
    });
    this.h2 = http2.createServer(onRequest);
    this.h2.on('session', (s: http2.ServerHttp2Session) => {
      this.sessions.add(s);
      s.once('close', () => this.sessions.delete(s));
    });
    this.h2.on('sessionError', () => {});
    this.front = net.createServer({ noDelay: true }, (socket) => this.route(socket));
  }

  /** HTTP/2 prior knowledge or HTTP/1.1, by the connection's first bytes. */
  private route(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    routeByPreface(socket, this.h1, this.h2);
  }

  listen(): Promise<void> {
    if (!isLoopbackIPv4(this.info.ip)) return Promise.reject(new Error(`refusing to bind non-loopback ${this.info.ip}`));
    return new Promise((resolve, reject) => {
      this.front.once('error', reject);
      this.front.listen({ host: this.info.ip, port: this.info.port, exclusive: true }, () => {
        this.front.off('error', reject);
        resolve();
      });
    });
  }

  close(): Promise<void> {
    const closed = new Promise<void>((resolve) => (this.front.listening ? this.front.close(() => resolve()) : resolve()));
    for (const s of this.sessions) s.destroy();
    for (const c of this.ws.clients) c.terminate();
    for (const s of this.sockets) s.destroy();
    return closed;
  }
}

function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** What a pod should be serving right now, or undefined. */
function desiredFor(pod: k8s.V1Pod): Desired | undefined {
  const meta = pod.metadata;
  if (!meta?.name || !meta.namespace || !meta.uid) return undefined;
  if (meta.deletionTimestamp) return undefined;
  if (meta.annotations?.[POD_SERVER_ANNOTATION] === 'off') return undefined;
  if (pod.status?.phase !== 'Running') return undefined;
  if (!pod.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) return undefined;
  const ip = pod.status.podIP;
  if (!isLoopbackIPv4(ip)) return undefined;
  const delay = Number(meta.annotations?.[LISTEN_DELAY_ANNOTATION] ?? 0);
  const readySince = pod.status.conditions.find((c) => c.type === 'Ready')?.lastTransitionTime;
  const listenAt = delay > 0 ? (readySince ? new Date(readySince).getTime() : Date.now()) + delay : undefined;
  const base = { namespace: meta.namespace, pod: meta.name, uid: meta.uid, ip, ...(listenAt !== undefined ? { listenAt } : {}) };
  const echo = echoBasicConfig(pod);
  if (echo) return { ...base, servers: echo.listeners, echo: echo.context, problems: echo.problems };
  const ports = (pod.spec?.containers[0]?.ports ?? []).filter((p) => (p.protocol ?? 'TCP') === 'TCP').map((p) => p.containerPort);
  if (ports.length === 0) return undefined;
  const kind: PodServerKind = meta.annotations?.[POD_SERVER_ANNOTATION] === 'grpc' ? 'grpc' : 'http';
  return { ...base, servers: ports.map((port) => ({ kind, port })) };
}

/** The demo upstream's gRPC services on the pod's IP and port (its HTTP side on a free port of the same IP). */
class GrpcPodServer implements Served {
  readonly info: PodServerInfo;
  private upstream: Upstream | undefined;

  constructor(d: Desired, port: number) {
    this.info = serverInfo(d, 'grpc', port);
  }

  async listen(): Promise<void> {
    if (!isLoopbackIPv4(this.info.ip)) throw new Error(`refusing to bind non-loopback ${this.info.ip}`);
    this.upstream = await startUpstream({ host: this.info.ip, grpcPort: this.info.port, httpPort: 0, id: `${this.info.namespace}/${this.info.pod}` });
  }

  async close(): Promise<void> {
    await this.upstream?.close();
  }
}

/** One listener of the echo-basic stand-in (echo-basic.ts). */
class EchoBasicPodServer implements Served {
  readonly info: PodServerInfo;
  private readonly server: EchoBasicHttpServer | EchoBasicGrpcServer;

  constructor(d: Desired, kind: EchoBasicListenerKind, port: number, events: EventEmitter) {
    this.info = serverInfo(d, kind, port);
    const context = d.echo ?? { namespace: d.namespace, ingress: '', service: '', pod: d.pod };
    const onRequest = (): void => void this.info.requests++;
    if (kind === 'echo-grpc') {
      this.server = new EchoBasicGrpcServer({ host: d.ip, port, context, onRequest });
    } else {
      const onEchoLog = (line: string): void => void events.emit('echo-log', { namespace: d.namespace, pod: d.pod, line } satisfies EchoLogLine);
      this.server = new EchoBasicHttpServer({ host: d.ip, port, kind, context, onRequest, onEchoLog });
    }
  }

  async listen(): Promise<void> {
    if (!isLoopbackIPv4(this.info.ip)) throw new Error(`refusing to bind non-loopback ${this.info.ip}`);
    await this.server.listen();
  }

  close(): Promise<void> {
    return this.server.close();
  }
}

class PodServersImpl implements PodServers {
  readonly events = new EventEmitter();
  synced: Promise<void> = Promise.resolve();
  /** Pods by namespace/name, as last seen by each watch. */
  private readonly pods = new Map<string, k8s.V1Pod>();
  /** Running servers by pod uid. */
  private readonly running = new Map<string, Served[]>();
  /** Pods whose echo-basic problems were logged. */
  private readonly reported = new Set<string>();
  private readonly aborts = new Set<AbortController>();
  private stopped = false;
  private reconciling: Promise<void> | undefined;
  private again = false;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly kc: k8s.KubeConfig,
    private readonly log: (line: string) => void,
  ) {
    this.events.on('error', () => {}); // errors are reported, never fatal
  }

  list(namespace?: string): PodServerInfo[] {
    const out: PodServerInfo[] = [];
    for (const servers of this.running.values()) {
      for (const s of servers) if (namespace === undefined || s.info.namespace === namespace) out.push({ ...s.info });
    }
    return out;
  }

  waitFor(predicate: (servers: PodServerInfo[]) => boolean, timeoutMs = 30_000, what = 'pod servers'): Promise<PodServerInfo[]> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const servers = this.list();
        if (!predicate(servers)) return false;
        cleanup();
        resolve(servers);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`${what} not reached within ${timeoutMs} ms; serving: ${JSON.stringify(this.list().map((s) => `${s.namespace}/${s.pod}@${s.ip}:${s.port}`))}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.events.off('listening', check);
        this.events.off('closed', check);
      };
      this.events.on('listening', check);
      this.events.on('closed', check);
      check();
    });
  }

  async waitForListening(namespace: string, pod: string, timeoutMs = 30_000): Promise<PodServerInfo> {
    const servers = await this.waitFor((all) => all.some((s) => s.namespace === namespace && s.pod === pod), timeoutMs, `server of pod ${namespace}/${pod}`);
    return servers.find((s) => s.namespace === namespace && s.pod === pod)!;
  }

  async waitForClosed(namespace: string, pod: string, timeoutMs = 30_000): Promise<void> {
    await this.waitFor((all) => !all.some((s) => s.namespace === namespace && s.pod === pod), timeoutMs, `no server for pod ${namespace}/${pod}`);
  }

  start(namespaces: string[] | undefined): void {
    const scopes = namespaces ?? [undefined];
    this.synced = Promise.all(scopes.map((ns) => new Promise<void>((resolve) => void this.watchLoop(ns, resolve)))).then(() => this.reconcileNow());
  }

  /** List, then watch from the list's resourceVersion; resume after a cut, re-list after 410 Gone. */
  private async watchLoop(namespace: string | undefined, onSynced: () => void): Promise<void> {
    const core = this.kc.makeApiClient(k8s.CoreV1Api);
    const watch = new k8s.Watch(this.kc);
    const apiPath = namespace ? `/api/v1/namespaces/${namespace}/pods` : '/api/v1/pods';
    const inScope = (key: string): boolean => namespace === undefined || key.startsWith(`${namespace}/`);
    let resourceVersion: string | undefined;
    let failures = 0;
    while (!this.stopped) {
      try {
        if (resourceVersion === undefined) {
          const list = namespace ? await core.listNamespacedPod({ namespace }) : await core.listPodForAllNamespaces();
          for (const key of [...this.pods.keys()]) if (inScope(key)) this.pods.delete(key);
          for (const pod of list.items) {
            if (pod.metadata?.namespace && pod.metadata.name) this.pods.set(podKey(pod.metadata.namespace, pod.metadata.name), pod);
          }
          resourceVersion = list.metadata?.resourceVersion;
          this.schedule();
          onSynced();
        }
        const began = Date.now();
        const outcome = await this.watchOnce(watch, apiPath, resourceVersion, (rv) => (resourceVersion = rv), () => (failures = 0));
        if (outcome instanceof Error) throw outcome;
        if (outcome === 'relist') resourceVersion = undefined;
        // A watch that ends at once, again and again, must not spin.
        if (Date.now() - began < 1000 && !this.stopped) await new Promise((r) => setTimeout(r, 200));
      } catch (err) {
        if (this.stopped) break;
        failures++;
        this.events.emit('error', err instanceof Error ? err : new Error(String(err)));
        this.log(`[pod-servers] watch ${apiPath} failed (${(err as Error).message}); retrying`);
        resourceVersion = undefined;
        await new Promise((r) => setTimeout(r, Math.min(5000, 100 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random())));
      }
    }
  }

  /** One watch request; resolves 'resume' when it ends (cut, inactivity timeout, stop), 'relist' on 410 Gone, or the error. */
  private watchOnce(
    watch: k8s.Watch,
    apiPath: string,
    resourceVersion: string | undefined,
    setVersion: (rv: string) => void,
    onEvent: () => void,
  ): Promise<'resume' | 'relist' | Error> {
    return new Promise((resolve) => {
      let gone = false;
      let controller: AbortController | undefined;
      let settled = false;
      const finish = (result: 'resume' | 'relist' | Error): void => {
        if (settled) return;
        settled = true;
        if (controller) this.aborts.delete(controller);
        resolve(result);
      };
      watch
        .watch(
          apiPath,
          { resourceVersion, allowWatchBookmarks: true },
          (type: string, obj: k8s.V1Pod & { code?: number }) => {
            if (type === 'ERROR') {
              if (obj.code === 410) gone = true;
              return;
            }
            const rv = obj.metadata?.resourceVersion;
            if (rv) setVersion(rv);
            if (type === 'BOOKMARK') return;
            const ns = obj.metadata?.namespace;
            const name = obj.metadata?.name;
            if (!ns || !name) return;
            if (type === 'DELETED') this.pods.delete(podKey(ns, name));
            else this.pods.set(podKey(ns, name), obj);
            onEvent();
            this.schedule();
          },
          (err: unknown) => {
            if (gone || (err as { statusCode?: number } | null)?.statusCode === 410) return finish('relist');
            // No error, our own abort, or the client's 30 s inactivity timeout on a quiet watch: resume.
            if (!err || this.stopped || (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError'))) return finish('resume');
            finish(err instanceof Error ? err : new Error(String(err)));
          },
        )
        .then(
          (c) => {
            controller = c;
            if (settled) return;
            if (this.stopped) c.abort();
            else this.aborts.add(c);
          },
          (err: unknown) => finish(err instanceof Error ? err : new Error(String(err))),
        );
    });
  }

  private schedule(): void {
    if (this.stopped) return;
    if (this.reconciling) {
      this.again = true;
      return;
    }
    this.reconciling = this.reconcileLoop();
  }

  private reconcileNow(): Promise<void> {
    this.schedule();
    return this.reconciling ?? Promise.resolve();
  }

  private async reconcileLoop(): Promise<void> {
    try {
      do {
        this.again = false;
        await this.reconcile();
      } while (this.again && !this.stopped);
    } finally {
      this.reconciling = undefined;
    }
  }

  /** Stops what should not run, then starts what should: a recycled pod IP is free before its new owner binds. */
  private async reconcile(): Promise<void> {
    const desired = new Map<string, Desired>();
    for (const pod of this.pods.values()) {
      const d = desiredFor(pod);
      if (d) desired.set(d.uid, d);
    }
    for (const [uid, servers] of [...this.running]) {
      const d = desired.get(uid);
      const same =
        d &&
        servers.length === d.servers.length &&
        servers.every((s, i) => s.info.ip === d.ip && s.info.port === d.servers[i]!.port && s.info.kind === d.servers[i]!.kind);
      if (same) continue;
      this.running.delete(uid);
      await Promise.all(servers.map((s) => s.close()));
      for (const s of servers) {
        this.log(`[pod-servers] closed ${s.info.namespace}/${s.info.pod} ${s.info.ip}:${s.info.port}`);
        this.events.emit('closed', { ...s.info });
      }
    }
    for (const uid of [...this.reported]) if (!desired.has(uid)) this.reported.delete(uid);
    let failed = false;
    for (const [uid, d] of desired) {
      if (this.running.has(uid) || this.stopped) continue;
      if (d.listenAt !== undefined && Date.now() < d.listenAt) {
        // A slow-starting app: look again when it is due.
        setTimeout(() => this.schedule(), d.listenAt - Date.now() + 5).unref();
        continue;
      }
      if (d.problems?.length && !this.reported.has(uid)) {
        this.reported.add(uid);
        this.log(`[pod-servers] echo-basic pod ${d.namespace}/${d.pod}: ${d.problems.join('; ')}`);
      }
      const servers: Served[] = [];
      try {
        for (const { kind, port } of d.servers) {
          const s =
            kind === 'http' ? new PodServer(d, port) : kind === 'grpc' ? new GrpcPodServer(d, port) : new EchoBasicPodServer(d, kind, port, this.events);
          await s.listen();
          servers.push(s);
        }
      } catch (err) {
        await Promise.all(servers.map((s) => s.close()));
        failed = true;
        const ports = d.servers.map((s) => s.port).join(',');
        this.events.emit('error', new Error(`pod ${d.namespace}/${d.pod}: cannot listen on ${d.ip} ports ${ports}: ${(err as Error).message}`));
        continue;
      }
      this.running.set(uid, servers);
      for (const s of servers) {
        this.log(`[pod-servers] listening ${d.namespace}/${d.pod} ${s.info.url}`);
        this.events.emit('listening', { ...s.info });
      }
    }
    if (failed && !this.retryTimer && !this.stopped) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.schedule();
      }, 500);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const c of this.aborts) c.abort();
    this.aborts.clear();
    await this.reconciling?.catch(() => {});
    const all = [...this.running.values()].flat();
    this.running.clear();
    await Promise.all(all.map((s) => s.close()));
    for (const s of all) this.events.emit('closed', { ...s.info });
  }
}

/** Starts watching and serving; await `synced` to know pods that were already Ready are served. */
export function startPodServers(options: PodServersOptions): PodServers {
  const servers = new PodServersImpl(options.kubeConfig, options.log ?? (() => {}));
  servers.start(options.namespaces);
  return servers;
}
