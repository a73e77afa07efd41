// A stand-in for the Gateway API conformance suite's backend image (`gcr.io/k8s-staging-gateway-api/echo-basic`),
// written from what the suite checks (sigs.k8s.io/gateway-api/conformance/utils/{roundtripper,http,grpc}), for pods
// that kwok fakes: pod-servers.ts runs one of these for every Ready pod whose container image names echo-basic.
//
// HTTP mode (the default), per echo-basic's environment:
//   - HTTP_PORT (default 3000): HTTP/1.x only. `/health` answers 200 `OK`; `/status/NNN` answers status NNN
//     with no body (400 if the request target is not exactly that); `/ws` is the WebSocket echo, which this
//     stand-in does not implement (400 for a plain request, 501 for an upgrade); every other path gets the echo.
//     Paths are routed as Go's ServeMux does after echo-basic folds "//" into "/": an unclean path ("/a/./b")
//     is redirected 301 to its clean form, and `/status` to `/status/`.
//   - H2C_PORT (default 3001): h2c with prior knowledge, every path gets the echo. An HTTP/1.x request there
//     gets 400 `Expected h2c request` unless it carries `Upgrade: h2c`; such a request is answered over
//     HTTP/1.1 (this stand-in ignores the upgrade, which HTTP allows a server to do).
//   - The echo: 200, `Content-Type: application/json` (exactly: the suite's round tripper only parses a body
//     whose Content-Type is exactly that), `X-Content-Type-Options: nosniff` and the JSON
//       {path, host, method, proto, headers, namespace, ingress, service, pod}
//     where path is the request target as received (with the query), host the Host header (HTTP/1) or
//     :authority (HTTP/2), proto `HTTP/1.1` / `HTTP/2.0`, headers the request's header fields as Go's
//     http.Request.Header holds them (canonical names like `X-Header-Add`, one array entry per field line,
//     no Host or Transfer-Encoding on HTTP/1) and namespace/ingress/service/pod come from NAMESPACE,
//     INGRESS_NAME, SERVICE_NAME and POD_NAME. Written as Go's encoder writes it (one-space indent, sorted
//     header names, `&` as \u0026).
//   - `X-Echo-Set-Header: Name:value,Other:value` on the request sets those headers on the echo's response
//     (the suite sends it on every request, empty unless a test wants backend-set response headers).
//   - `?delay=<Go duration>` (e.g. 1s, 500ms) waits that long before answering the echo; a bad duration
//     answers 500 with JSON {message}.
//   - HTTPS (HTTPS_PORT with TLS_SERVER_CERT / TLS_SERVER_PRIVKEY files) is not served: kwok mounts no volumes.
// gRPC mode (GRPC_ECHO_SERVER non-empty): plaintext gRPC on HTTP_PORT (default 3000) serving
// gateway_api_conformance.echo_basic.grpcecho.GrpcEcho: Echo and EchoTwo answer EchoResponse{assertions:
// {fully_qualified_method, headers (:authority and the request metadata as grpc-js exposes it, which leaves out
// content-type), authority, context {namespace, ingress, service_name, pod}}}; EchoThree is deliberately
// unimplemented (UNIMPLEMENTED), as the suite expects. No reflection service, no TLS port.
// The message types are built in code with protobufjs' reflection API (grpcEchoTypes()), from the field
// names and numbers the suite's generated client uses.
//
// Nothing here binds or dials outside 127.0.0.0/8.
import * as http from 'node:http';
import * as http2 from 'node:http2';
import * as net from 'node:net';
import * as grpc from '@grpc/grpc-js';
import type * as k8s from '@kubernetes/client-node';
import protobuf from 'protobufjs';
import { routeByPreface } from '../../../upstream/protocol-sniff.ts';

/** A container whose image contains this is served as echo-basic. */
export const ECHO_BASIC_IMAGE_MARKER = 'echo-basic';
export const ECHO_BASIC_DEFAULT_HTTP_PORT = 3000;
export const ECHO_BASIC_DEFAULT_H2C_PORT = 3001;
export const ECHO_BASIC_DEFAULT_HTTPS_PORT = 8443;

export const GRPC_ECHO_PACKAGE = 'gateway_api_conformance.echo_basic.grpcecho';
export const GRPC_ECHO_SERVICE = `${GRPC_ECHO_PACKAGE}.GrpcEcho`;
export type GrpcEchoMethod = 'Echo' | 'EchoTwo' | 'EchoThree';
export const GRPC_ECHO_METHODS: readonly GrpcEchoMethod[] = ['Echo', 'EchoTwo', 'EchoThree'];

export function grpcEchoMethodPath(method: GrpcEchoMethod): string {
  return `/${GRPC_ECHO_SERVICE}/${method}`;
}

/** Where the echo says it runs (echo-basic's Context). */
export interface EchoContext {
  namespace: string;
  ingress: string;
  service: string;
  pod: string;
}

/** The JSON body of the HTTP echo, in echo-basic's field order. */
export interface EchoAssertions {
  path: string;
  host: string;
  method: string;
  proto: string;
  headers: Record<string, string[]>;
  namespace: string;
  ingress: string;
  service: string;
  pod: string;
}

export type EchoBasicListenerKind = 'echo-http' | 'echo-h2c' | 'echo-grpc';

export interface EchoBasicPodConfig {
  /** The container that runs echo-basic. */
  container: string;
  mode: 'http' | 'grpc';
  context: EchoContext;
  /** What the real image would listen on, minus what this stand-in does not serve (HTTPS). */
  listeners: { kind: EchoBasicListenerKind; port: number }[];
  /** The container's environment as resolved from the pod (downward API fieldRefs and plain values). */
  env: Record<string, string>;
  /** Env entries that could not be resolved, bad ports, listeners not served: for logs. */
  problems: string[];
}

function isLoopback(ip: string): boolean {
  return net.isIPv4(ip) && ip.startsWith('127.');
}

// ---------------------------------------------------------------------------------------------------------
// The pod side: which pods are echo-basic and what their environment says.

/** The first container whose image contains `echo-basic`, or undefined. */
export function echoBasicContainer(pod: k8s.V1Pod): k8s.V1Container | undefined {
  return pod.spec?.containers.find((c) => (c.image ?? '').includes(ECHO_BASIC_IMAGE_MARKER));
}

/** The value of a downward-API fieldRef, as the kubelet would fill it; undefined if not resolvable. */
export function downwardField(pod: k8s.V1Pod, fieldPath: string): string | undefined {
  const meta = pod.metadata ?? {};
  const labelOrAnnotation = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(fieldPath);
  if (labelOrAnnotation) {
    const map = labelOrAnnotation[1] === 'labels' ? meta.labels : meta.annotations;
    return map?.[labelOrAnnotation[2]!] ?? '';
  }
  switch (fieldPath) {
    case 'metadata.name':
      return meta.name;
    case 'metadata.namespace':
      return meta.namespace;
    case 'metadata.uid':
      return meta.uid;
    case 'spec.nodeName':
      return pod.spec?.nodeName;
    case 'spec.serviceAccountName':
      return pod.spec?.serviceAccountName;
    case 'status.podIP':
      return pod.status?.podIP;
    case 'status.podIPs':
      return pod.status?.podIPs?.map((p) => p.ip).join(',');
    case 'status.hostIP':
      return pod.status?.hostIP;
    case 'status.hostIPs':
      return pod.status?.hostIPs?.map((p) => p.ip).join(',');
    default:
      return undefined;
  }
}

/** Kubernetes' $(VAR) expansion of env values: references to variables defined earlier; `$$` escapes `$`. */
function expandEnvRefs(value: string, env: Record<string, string>): string {
  return value.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g, (whole, name: string | undefined) => {
    if (whole === '$$') return '$';
    return name !== undefined && Object.hasOwn(env, name) ? env[name]! : whole;
  });
}

/**
 * The container's env as the process would see it: plain `value`s (with $(VAR) expansion) and downward-API
 * `fieldRef`s from the pod. ConfigMap/Secret/resource refs and envFrom are not looked up; they are reported.
 */
export function resolveContainerEnv(pod: k8s.V1Pod, container: k8s.V1Container): { env: Record<string, string>; unresolved: string[] } {
  const env: Record<string, string> = {};
  const unresolved: string[] = [];
  if ((container.envFrom ?? []).length > 0) unresolved.push('envFrom');
  for (const e of container.env ?? []) {
    if (e.valueFrom) {
      const fieldPath = e.valueFrom.fieldRef?.fieldPath;
      const v = fieldPath !== undefined ? downwardField(pod, fieldPath) : undefined;
      if (v === undefined) unresolved.push(e.name);
      else env[e.name] = v;
    } else {
      env[e.name] = expandEnvRefs(e.value ?? '', env);
    }
  }
  return { env, unresolved };
}

function portFrom(env: Record<string, string>, name: string, fallback: number, problems: string[]): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    problems.push(`${name}=${JSON.stringify(raw)} is not a port`);
    return undefined;
  }
  return n;
}

/** What echo-basic would serve for this pod, or undefined if it is not an echo-basic pod. */
export function echoBasicConfig(pod: k8s.V1Pod): EchoBasicPodConfig | undefined {
  const container = echoBasicContainer(pod);
  if (!container) return undefined;
  const { env, unresolved } = resolveContainerEnv(pod, container);
  const problems = unresolved.map((name) => `env ${name} not resolved (only values and downward-API fieldRefs are)`);
  const context: EchoContext = {
    namespace: env.NAMESPACE ?? '',
    ingress: env.INGRESS_NAME ?? '',
    service: env.SERVICE_NAME ?? '',
    pod: env.POD_NAME ?? '',
  };
  const listeners: EchoBasicPodConfig['listeners'] = [];
  const grpcMode = (env.GRPC_ECHO_SERVER ?? '') !== '';
  const httpPort = portFrom(env, 'HTTP_PORT', ECHO_BASIC_DEFAULT_HTTP_PORT, problems);
  if (grpcMode) {
    if (httpPort !== undefined) listeners.push({ kind: 'echo-grpc', port: httpPort });
    if (env.TLS_SERVER_CERT && env.TLS_SERVER_PRIV_KEY) problems.push('gRPC over TLS (HTTPS_PORT) is not served');
  } else {
    const h2cPort = portFrom(env, 'H2C_PORT', ECHO_BASIC_DEFAULT_H2C_PORT, problems);
    if (httpPort !== undefined) listeners.push({ kind: 'echo-http', port: httpPort });
    if (h2cPort !== undefined && h2cPort !== httpPort) listeners.push({ kind: 'echo-h2c', port: h2cPort });
    if (env.TLS_SERVER_CERT && env.TLS_SERVER_PRIVKEY) problems.push(`HTTPS on ${env.HTTPS_PORT || ECHO_BASIC_DEFAULT_HTTPS_PORT} is not served`);
  }
  return { container: container.name, mode: grpcMode ? 'grpc' : 'http', context, listeners, env, problems };
}

// ---------------------------------------------------------------------------------------------------------
// HTTP echo: the pieces, exported for tests.

const TOKEN_CHAR = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** Go's textproto.CanonicalMIMEHeaderKey: `x-header-add` -> `X-Header-Add`; names with non-token bytes unchanged. */
export function canonicalHeaderKey(name: string): string {
  if (!TOKEN_CHAR.test(name)) return name;
  let out = '';
  let upper = true;
  for (const c of name) {
    out += upper ? c.toUpperCase() : c.toLowerCase();
    upper = c === '-';
  }
  return out;
}

/**
 * The request's headers as echo-basic reports them (Go's http.Request.Header): canonical names, one entry per
 * header field line, no pseudo-headers; HTTP/1 drops Host, Transfer-Encoding (and Content-Length when chunked),
 * HTTP/2 joins cookie fields with "; ". Keys sorted, as Go's JSON encoder writes a map.
 */
export function echoHeaders(rawHeaders: readonly string[], http2Request: boolean): Record<string, string[]> {
  const collected = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    if (name.startsWith(':')) continue;
    const key = canonicalHeaderKey(name);
    // Go moves an HTTP/1 Host header to Request.Host; an HTTP/2 host field stays a header.
    if (key === 'Host' && !http2Request) continue;
    const values = collected.get(key);
    if (values) values.push(rawHeaders[i + 1]!);
    else collected.set(key, [rawHeaders[i + 1]!]);
  }
  if (!http2Request && collected.has('Transfer-Encoding')) {
    if (collected.get('Transfer-Encoding')!.some((v) => /chunked/i.test(v))) collected.delete('Content-Length');
    collected.delete('Transfer-Encoding');
  }
  if (http2Request && (collected.get('Cookie')?.length ?? 0) > 1) collected.set('Cookie', [collected.get('Cookie')!.join('; ')]);
  const out: Record<string, string[]> = {};
  for (const key of [...collected.keys()].sort()) out[key] = collected.get(key)!;
  return out;
}

/**
 * The response headers asked for by `X-Echo-Set-Header` values ("Name:value,Other:value", one or more header
 * lines): in order, a repeated name (case-insensitively) appends `,value` to the first. Names or values a
 * response may not carry are dropped.
 */
export function echoSetHeaders(values: readonly string[]): [name: string, value: string][] {
  const byKey = new Map<string, [string, string]>();
  for (const line of values) {
    for (const item of line.split(',')) {
      const trimmed = item.trim();
      const colon = trimmed.indexOf(':');
      const name = colon < 0 ? trimmed : trimmed.slice(0, colon);
      const value = (colon < 0 ? '' : trimmed.slice(colon + 1)).trim();
      if (!TOKEN_CHAR.test(name)) continue;
      try {
        http.validateHeaderValue(name, value);
      } catch {
        continue;
      }
      const key = name.toLowerCase();
      const seen = byKey.get(key);
      if (seen) seen[1] += `,${value}`;
      else byKey.set(key, [name, value]);
    }
  }
  return [...byKey.values()];
}

const DURATION_UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  'µs': 1e-3, // U+00B5
  'μs': 1e-3, // U+03BC
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/** Go's time.ParseDuration, in milliseconds ("1s", "1.5h", "300ms", "-2m3s", "0"); throws on a bad one. */
export function parseGoDuration(text: string): number {
  const bad = (why: string): Error => new Error(`time: ${why} ${JSON.stringify(text)}`);
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw bad('invalid duration');
  let total = 0;
  const part = /^(\d*)(?:\.(\d*))?([^\d.]+)/;
  while (s !== '') {
    const m = part.exec(s);
    if (!m) throw bad(/^[\d.]+$/.test(s) ? 'missing unit in duration' : 'invalid duration');
    const [whole, int = '', frac = '', unit = ''] = m;
    if (int === '' && frac === '') throw bad('invalid duration');
    const perUnit = DURATION_UNIT_MS[unit];
    if (perUnit === undefined) throw bad(`unknown unit ${JSON.stringify(unit)} in duration`);
    total += Number(`${int || '0'}.${frac || '0'}`) * perUnit;
    s = s.slice(whole.length);
  }
  return sign * total;
}

/** JSON as Go's encoding/json writes it: MarshalIndent(v, "", " ") or Marshal, with its HTML-safe escapes. */
export function goJson(value: unknown, indent = true): string {
  return JSON.stringify(value, null, indent ? 1 : undefined).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Go's ServeMux path cleaning: path.Clean, keeping a trailing slash. */
export function cleanPath(p: string): string {
  if (p === '') return '/';
  if (!p.startsWith('/')) p = `/${p}`;
  const out: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  let np = `/${out.join('/')}`;
  if (p.endsWith('/') && np !== '/') np += '/';
  return np;
}

/** The request target's path and query (the path of an absolute-form target; "*" as is). */
function splitTarget(target: string): { path: string; query: string | undefined; host: string | undefined } {
  let rest = target;
  let host: string | undefined;
  const absolute = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(rest);
  if (absolute) {
    host = absolute[1]!.replace(/^.*@/, '');
    rest = rest.slice(absolute[0].length) || '/';
  }
  const q = rest.indexOf('?');
  return q < 0 ? { path: rest, query: undefined, host } : { path: rest.slice(0, q), query: rest.slice(q + 1), host };
}

type AnyRequest = http.IncomingMessage | http2.Http2ServerRequest;
type AnyResponse = http.ServerResponse | http2.Http2ServerResponse;

/** Connection-specific fields, which an HTTP/2 response may not carry. */
const HTTP1_ONLY_FIELDS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);

function send(res: AnyResponse, status: number, headers: [string, string][], body: string | Buffer): void {
  const buf = typeof body === 'string' ? Buffer.from(body) : body;
  const isH2 = res instanceof http2.Http2ServerResponse;
  for (const [name, value] of headers) {
    if (isH2 && HTTP1_ONLY_FIELDS.has(name.toLowerCase())) continue;
    try {
      res.setHeader(name, value);
    } catch {
      // Not a valid field for this response: dropped, as Go drops invalid header names.
    }
  }
  if (status !== 204 && status !== 304) res.setHeader('Content-Length', String(buf.length));
  res.statusCode = status;
  if (status === 204 || status === 304) res.end();
  else res.end(buf);
}

export interface EchoBasicHttpServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** echo-http: echo-basic's HTTP_PORT server (HTTP/1.x); echo-h2c: its H2C_PORT server. */
  kind: 'echo-http' | 'echo-h2c';
  context: EchoContext;
  /** Called as each request arrives. */
  onRequest?: () => void;
  /** Called with echo-basic's log line for each echo ("Echoing back request made to <path> to client (<addr>)"). */
  onEchoLog?: (line: string) => void;
}

/** One of echo-basic's HTTP listeners. */
export class EchoBasicHttpServer {
  private readonly h1: http.Server;
  private readonly h2: http2.Http2Server | undefined;
  private readonly front: net.Server;
  private readonly sockets = new Set<net.Socket>();
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private boundPort = 0;

  constructor(private readonly options: EchoBasicHttpServerOptions) {
    const h2cPort = options.kind === 'echo-h2c';
    this.h1 = http.createServer((req, res) => {
      this.options.onRequest?.();
      if (h2cPort) this.handleH2cPortHttp1(req, res);
      else this.handleMux(req, res);
    });
    this.h1.keepAliveTimeout = 75_000;
    this.h1.on('clientError', (_err, socket: net.Socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      else socket.destroy();
    });
    if (h2cPort) {
      const h2 = http2.createServer((req, res) => {
        this.options.onRequest?.();
        this.echo(req, res);
      });
      h2.on('session', (s: http2.ServerHttp2Session) => {
        this.sessions.add(s);
        s.once('close', () => this.sessions.delete(s));
      });
      h2.on('sessionError', () => {});
      this.h2 = h2;
    }
    this.front = net.createServer({ noDelay: true }, (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
      if (this.h2) routeByPreface(socket, this.h1, this.h2);
      else {
        socket.on('error', () => {});
        this.h1.emit('connection', socket);
      }
    });
  }

  get port(): number {
    return this.boundPort;
  }

  listen(): Promise<number> {
    const { host, port } = this.options;
    if (!isLoopback(host)) return Promise.reject(new Error(`refusing to bind non-loopback ${host}`));
    return new Promise((resolve, reject) => {
      this.front.once('error', reject);
      this.front.listen({ host, port, exclusive: true }, () => {
        this.front.off('error', reject);
        this.boundPort = (this.front.address() as net.AddressInfo).port;
        resolve(this.boundPort);
      });
    });
  }

  close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const closed = new Promise<void>((resolve) => (this.front.listening ? this.front.close(() => resolve()) : resolve()));
    for (const s of this.sessions) s.destroy();
    for (const s of this.sockets) s.destroy();
    return closed;
  }

  /** echo-basic's HTTP_PORT handler: Go's ServeMux with /health, /status/, /ws and / (echo). */
  private handleMux(req: http.IncomingMessage, res: http.ServerResponse): void {
    const target = req.url ?? '/';
    if (target === '*') {
      send(res, 400, [['Connection', 'close']], '');
      return;
    }
    const { path: rawPath, query } = splitTarget(target);
    // echo-basic folds "//" into "/" before its mux sees the path; the mux redirects anything else unclean.
    const path = rawPath.replaceAll('//', '/');
    let clean = cleanPath(path);
    const redirect = (to: string): void => {
      const location = query !== undefined ? `${to}?${query}` : to;
      send(res, 301, [['Location', location], ['Content-Type', 'text/html; charset=utf-8']], req.method === 'GET' || req.method === 'HEAD' ? `<a href="${location}">Moved Permanently</a>.\n\n` : '');
    };
    if (req.method !== 'CONNECT') {
      if (clean === '/status') return redirect('/status/');
      if (clean !== path) return redirect(clean);
    } else {
      clean = path;
    }
    if (clean === '/health') {
      send(res, 200, [['Content-Type', 'text/plain; charset=utf-8']], 'OK');
      return;
    }
    if (clean.startsWith('/status/')) {
      // The status code is read from the raw request target, query included.
      const m = /^\/status\/(\d\d\d)$/.exec(target);
      const code = m ? Number(m[1]) : 400;
      if (code < 100) {
        req.socket.destroy();
        return;
      }
      send(res, code < 200 ? 200 : code, [], '');
      return;
    }
    if (clean === '/ws') {
      const upgrade = (req.headers.upgrade ?? '').toLowerCase() === 'websocket';
      send(res, upgrade ? 501 : 400, [['Content-Type', 'text/plain; charset=utf-8']], upgrade ? 'WebSocket echo not implemented by the echo-basic stand-in\n' : 'not websocket protocol');
      return;
    }
    this.echo(req, res);
  }

  /** echo-basic's H2C_PORT handler for an HTTP/1.x request. */
  private handleH2cPortHttp1(req: http.IncomingMessage, res: http.ServerResponse): void {
    const upgrade = req.rawHeaders.find((_v, i, all) => i % 2 === 1 && all[i - 1]!.toLowerCase() === 'upgrade');
    if (upgrade !== 'h2c') {
      send(res, 400, [['Content-Type', 'text/plain; charset=utf-8']], 'Expected h2c request');
      return;
    }
    this.echo(req, res);
  }

  private echo(req: AnyRequest, res: AnyResponse): void {
    req.on('error', () => {});
    const bodyDone = new Promise<void>((resolve) => {
      req.once('end', resolve);
      req.once('close', resolve);
      req.once('error', () => resolve());
    });
    req.resume();
    const target = req.url ?? '/';
    this.options.onEchoLog?.(`Echoing back request made to ${target} to client (${req.socket?.remoteAddress ?? ''}:${req.socket?.remotePort ?? ''})`);
    const isH2 = req.httpVersion === '2.0';
    const { query, host: targetHost } = splitTarget(target);
    const delay = new URLSearchParams(query ?? '').get('delay') ?? '';
    let delayMs = 0;
    if (delay !== '') {
      try {
        delayMs = parseGoDuration(delay);
      } catch (err) {
        send(res, 500, [['Content-Type', 'application/json'], ['X-Content-Type-Options', 'nosniff']], goJson({ message: (err as Error).message }, false));
        return;
      }
    }
    const host = isH2 ? ((req as http2.Http2ServerRequest).authority ?? '') : (targetHost ?? req.headers.host ?? '');
    const assertions: EchoAssertions = {
      path: target,
      host,
      method: req.method ?? 'GET',
      proto: `HTTP/${req.httpVersion}`,
      headers: echoHeaders(req.rawHeaders, isH2),
      ...this.options.context,
    };
    // echo-basic sets the asked-for headers first, then its own two over them.
    const ownHeaders = new Set(['content-type', 'x-content-type-options']);
    const headers: [string, string][] = [
      ...echoSetHeaders(assertions.headers['X-Echo-Set-Header'] ?? []).filter(([name]) => !ownHeaders.has(name.toLowerCase())),
      ['Content-Type', 'application/json'],
      ['X-Content-Type-Options', 'nosniff'],
    ];
    const body = goJson(assertions);
    const waited = delayMs > 0 ? this.sleep(delayMs) : Promise.resolve();
    void Promise.all([bodyDone, waited]).then(() => {
      if (res.writableEnded || res.destroyed) return;
      send(res, 200, headers, body);
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(
        () => {
          this.timers.delete(t);
          resolve();
        },
        Math.min(ms, 2 ** 31 - 1),
      );
      this.timers.add(t);
    });
  }
}

// ---------------------------------------------------------------------------------------------------------
// gRPC echo.

export interface GrpcEchoHeader {
  key: string;
  value: string;
}

export interface GrpcEchoContext {
  namespace: string;
  ingress: string;
  service_name: string;
  pod: string;
}

export interface GrpcEchoAssertions {
  fully_qualified_method: string;
  headers: GrpcEchoHeader[];
  authority: string;
  context?: GrpcEchoContext | null;
  tls_assertions?: {
    version: string;
    negotiated_protocol: string;
    server_name: string;
    cipher_suite: string;
    peer_certificates: string[];
  } | null;
}

export interface GrpcEchoResponse {
  assertions?: GrpcEchoAssertions | null;
  request?: Record<string, never> | null;
}

export type GrpcEchoRequest = Record<string, never>;

export interface GrpcEchoTypes {
  root: protobuf.Root;
  EchoRequest: protobuf.Type;
  EchoResponse: protobuf.Type;
}

let echoTypes: GrpcEchoTypes | undefined;

/**
 * The GrpcEcho messages, built with protobufjs' reflection API. Field names and numbers are the wire contract
 * the suite's generated Go client decodes: EchoResponse{1: Assertions assertions, 2: EchoRequest request},
 * Assertions{1: fully_qualified_method, 2: repeated Header headers, 3: authority, 4: Context context,
 * 5: TLSAssertions tls_assertions}, Header{1: key, 2: value}, Context{1: namespace, 2: ingress,
 * 3: service_name, 4: pod}, TLSAssertions{1: version, 2: negotiated_protocol, 3: server_name, 4: cipher_suite,
 * 5: repeated peer_certificates}; EchoRequest has no fields.
 */
export function grpcEchoTypes(): GrpcEchoTypes {
  if (echoTypes) return echoTypes;
  const { Root, Type, Field } = protobuf;
  const message = (name: string, fields: [name: string, id: number, type: string, repeated?: boolean][]): protobuf.Type => {
    const t = new Type(name);
    for (const [fieldName, id, type, repeated] of fields) t.add(new Field(fieldName, id, type, repeated ? 'repeated' : undefined));
    return t;
  };
  const root = new Root();
  root
    .define(GRPC_ECHO_PACKAGE)
    .add(message('Header', [['key', 1, 'string'], ['value', 2, 'string']]))
    .add(message('Context', [['namespace', 1, 'string'], ['ingress', 2, 'string'], ['service_name', 3, 'string'], ['pod', 4, 'string']]))
    .add(
      message('TLSAssertions', [
        ['version', 1, 'string'],
        ['negotiated_protocol', 2, 'string'],
        ['server_name', 3, 'string'],
        ['cipher_suite', 4, 'string'],
        ['peer_certificates', 5, 'string', true],
      ]),
    )
    .add(
      message('Assertions', [
        ['fully_qualified_method', 1, 'string'],
        ['headers', 2, 'Header', true],
        ['authority', 3, 'string'],
        ['context', 4, 'Context'],
        ['tls_assertions', 5, 'TLSAssertions'],
      ]),
    )
    .add(message('EchoRequest', []))
    .add(message('EchoResponse', [['assertions', 1, 'Assertions'], ['request', 2, 'EchoRequest']]));
  root.resolveAll();
  echoTypes = {
    root,
    EchoRequest: root.lookupType(`${GRPC_ECHO_PACKAGE}.EchoRequest`),
    EchoResponse: root.lookupType(`${GRPC_ECHO_PACKAGE}.EchoResponse`),
  };
  return echoTypes;
}

const TO_OBJECT: protobuf.IConversionOptions = { defaults: true, arrays: true };

/** The GrpcEcho service for @grpc/grpc-js (server and client), with the three methods the suite calls. */
export function grpcEchoServiceDefinition(): grpc.ServiceDefinition {
  const { EchoRequest, EchoResponse } = grpcEchoTypes();
  const codec = (type: protobuf.Type) => ({
    serialize: (value: object): Buffer => Buffer.from(type.encode(type.fromObject(value)).finish()),
    deserialize: (bytes: Buffer): object => type.toObject(type.decode(bytes), TO_OBJECT),
  });
  const req = codec(EchoRequest);
  const res = codec(EchoResponse);
  const def: Record<string, grpc.MethodDefinition<object, object>> = {};
  for (const method of GRPC_ECHO_METHODS) {
    def[method] = {
      path: grpcEchoMethodPath(method),
      requestStream: false,
      responseStream: false,
      requestSerialize: req.serialize,
      requestDeserialize: req.deserialize,
      responseSerialize: res.serialize,
      responseDeserialize: res.deserialize,
      originalName: method,
    };
  }
  return def;
}

/** The request metadata as echo-basic lists it: `:authority` and every metadata entry (binary ones base64). */
export function grpcEchoHeaders(authority: string, metadata: grpc.Metadata): GrpcEchoHeader[] {
  const headers: GrpcEchoHeader[] = [];
  if (authority !== '') headers.push({ key: ':authority', value: authority });
  for (const [key, values] of Object.entries(metadata.toJSON())) {
    for (const v of values) headers.push({ key, value: Buffer.isBuffer(v) ? v.toString('base64') : String(v) });
  }
  return headers;
}

export interface EchoBasicGrpcServerOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  context: EchoContext;
  onRequest?: () => void;
}

/** echo-basic's plaintext gRPC server (GRPC_ECHO_SERVER mode). */
export class EchoBasicGrpcServer {
  private readonly server = new grpc.Server();
  private boundPort = 0;

  constructor(private readonly options: EchoBasicGrpcServerOptions) {
    const handler =
      (method: GrpcEchoMethod) =>
      (call: grpc.ServerUnaryCall<GrpcEchoRequest, GrpcEchoResponse>, callback: grpc.sendUnaryData<GrpcEchoResponse>): void => {
        this.options.onRequest?.();
        const authority = call.getHost();
        const { namespace, ingress, service, pod } = this.options.context;
        callback(null, {
          assertions: {
            fully_qualified_method: grpcEchoMethodPath(method),
            headers: grpcEchoHeaders(authority, call.metadata),
            authority,
            context: { namespace, ingress, service_name: service, pod },
          },
        });
      };
    // EchoThree has no implementation: grpc-js answers it UNIMPLEMENTED, as echo-basic does.
    this.server.addService(grpcEchoServiceDefinition(), { Echo: handler('Echo'), EchoTwo: handler('EchoTwo') });
  }

  get port(): number {
    return this.boundPort;
  }

  listen(): Promise<number> {
    const { host, port } = this.options;
    if (!isLoopback(host)) return Promise.reject(new Error(`refusing to bind non-loopback ${host}`));
    return new Promise((resolve, reject) => {
      this.server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
        if (err) return reject(err);
        this.boundPort = bound;
        resolve(bound);
      });
    });
  }

  async close(): Promise<void> {
    // Cancels in-flight calls; the listening socket closes on the next turn of the event loop.
    this.server.forceShutdown();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

// ---------------------------------------------------------------------------------------------------------
// A client shaped like the suite's (utils/grpc DefaultClient): one channel, optional :authority override,
// outgoing metadata per call, the status code as the outcome.

export interface GrpcEchoResult {
  code: grpc.status;
  details: string;
  response: GrpcEchoResponse | undefined;
  headers: grpc.Metadata | undefined;
  trailers: grpc.Metadata | undefined;
}

export interface GrpcEchoClient {
  call(method: GrpcEchoMethod, metadata?: Record<string, string>, timeoutMs?: number): Promise<GrpcEchoResult>;
  close(): void;
}

/** A GrpcEcho client for `address` (host:port; loopback only), like the suite's grpc.NewClient + WithAuthority. */
export function grpcEchoClient(address: string, authority?: string): GrpcEchoClient {
  const host = address.replace(/:\d+$/, '');
  if (!isLoopback(host)) throw new Error(`refusing to dial non-loopback ${address}`);
  const Client = grpc.makeGenericClientConstructor(grpcEchoServiceDefinition(), 'GrpcEcho');
  const client = new Client(address, grpc.credentials.createInsecure(), authority ? { 'grpc.default_authority': authority } : {});
  return {
    call(method, metadata = {}, timeoutMs = 10_000) {
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(metadata)) md.set(k, v);
      return new Promise((resolve) => {
        let headers: grpc.Metadata | undefined;
        let trailers: grpc.Metadata | undefined;
        const fn = client[method] as unknown as (
          req: GrpcEchoRequest,
          md: grpc.Metadata,
          opts: grpc.CallOptions,
          cb: (err: grpc.ServiceError | null, res?: GrpcEchoResponse) => void,
        ) => grpc.ClientUnaryCall;
        const call = fn.call(client, {}, md, { deadline: Date.now() + timeoutMs }, (err, res) => {
          const outcome = { headers, trailers };
          if (err) resolve({ code: err.code, details: err.details, response: undefined, ...outcome, trailers: err.metadata ?? trailers });
          else resolve({ code: grpc.status.OK, details: '', response: res, ...outcome });
        });
        call.on('metadata', (m: grpc.Metadata) => (headers = m));
        call.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
      });
    },
    close() {
      client.close();
    },
  };
}
