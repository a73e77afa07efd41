// Standalone entry point, used by the control plane's process scaler and by
// benchmarks:
//   tsx upstream/main.ts --http-port N --grpc-port M [--id X] [--startup-delay-ms D] [--host H] [--help]
// Env fallbacks: PORT, GRPC_PORT, UPSTREAM_ID, STARTUP_DELAY_MS, HOST.
import { writeSync } from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { startUpstream, type Upstream } from './server.ts';

function parsePort(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${name} must be a port number, got ${JSON.stringify(raw)}`);
  return n;
}

function parseMs(raw: string | undefined, name: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got ${JSON.stringify(raw)}`);
  return n;
}

function log(fields: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(fields)}\n`);
}

const USAGE = `Usage: tsx upstream/main.ts [options]

The demo upstream: an HTTP/1.1 + HTTP/2 (h2c) echo server and a gRPC server (stz.demo.v1.Echo with the
unary Echo, the server-streaming EchoStream and the bidirectional EchoChat, plus grpc.health.v1.Health).

Options (environment fallback in brackets):
  --http-port N          HTTP port, 0 = any free port [PORT] (default 0)
  --grpc-port N          gRPC port, 0 = any free port [GRPC_PORT] (default 0)
  --host H               address to bind [HOST] (default 127.0.0.1)
  --id X                 name reported in every answer [UPSTREAM_ID] (default upstream-<pid>)
  --startup-delay-ms D   wait this long before binding, to imitate a slow start [STARTUP_DELAY_MS]
  --no-ready-signal      do not signal readiness to the control plane (it then finds out by probing)
  -h, --help             print this and exit

Prints one JSON line {"msg":"upstream ready",...} with the bound ports; SIGTERM or SIGINT stops it.
Started by the control plane's process scaler, it then signals its readiness (writes READY=1 to the
descriptor STZ_READY_FD, or else POSTs STZ_READY_URL with STZ_READY_TOKEN), so the control plane releases
held requests without waiting for its next probe.
HTTP paths: /healthz, /status?code=N, /delay?ms=N; anything else is echoed back as JSON.
`;

function parseCli(): ReturnType<typeof parse> {
  try {
    return parse();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
}

function parse() {
  return parseArgs({
    options: {
      'http-port': { type: 'string' },
      'grpc-port': { type: 'string' },
      id: { type: 'string' },
      'startup-delay-ms': { type: 'string' },
      host: { type: 'string' },
      'no-ready-signal': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
}

async function main(): Promise<void> {
  const { values } = parseCli();
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const env = process.env;
  const httpPort = parsePort(values['http-port'] ?? env.PORT, '--http-port/PORT') ?? 0;
  const grpcPort = parsePort(values['grpc-port'] ?? env.GRPC_PORT, '--grpc-port/GRPC_PORT') ?? 0;
  const startupDelayMs = parseMs(values['startup-delay-ms'] ?? env.STARTUP_DELAY_MS, '--startup-delay-ms/STARTUP_DELAY_MS');
  const id = values.id ?? env.UPSTREAM_ID ?? `upstream-${process.pid}`;
  const host = values.host ?? env.HOST ?? '127.0.0.1';

  let upstream: Upstream | undefined;
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    log({ msg: 'upstream stopping', id, signal });
    // A signal during the startup delay arrives before there is anything to close.
    void (upstream?.close() ?? Promise.resolve()).then(
      () => process.exit(0),
      () => process.exit(0),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  const started = await startUpstream({ host, httpPort, grpcPort, id, startupDelayMs });
  upstream = started;
  log({
    msg: 'upstream ready',
    id: started.id,
    pid: process.pid,
    host,
    httpPort: started.httpPort,
    grpcPort: started.grpcPort,
    readyAt: started.readyAt,
  });
  if (values['no-ready-signal']) return;
  // The pipe is the cheapest way (one write); the URL is for processes that cannot keep the descriptor.
  const readyFd = Number(env.STZ_READY_FD);
  if (env.STZ_READY_FD && Number.isInteger(readyFd) && readyFd > 2) {
    try {
      writeSync(readyFd, 'READY=1\n');
      log({ msg: 'readiness signalled', via: `fd ${readyFd}` });
      return;
    } catch (err) {
      log({ msg: 'readiness pipe not writable; trying the URL', error: (err as Error).message });
    }
  }
  const readyUrl = env.STZ_READY_URL;
  const readyToken = env.STZ_READY_TOKEN;
  if (readyUrl && readyToken) await signalReady(readyUrl, readyToken);
}

/**
 * Tells the control plane that started us that we serve (xds-server/scaling/process-provider.ts). A failure
 * is logged, not fatal: the control plane's probe finds us anyway.
 */
function signalReady(url: string, token: string): Promise<void> {
  // node:http, not fetch: fetch loads undici on first use, which costs more than the probe it replaces.
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', headers: { 'x-scale-to-zero-ready-token': token, 'content-length': '0' }, timeout: 2_000, agent: false }, (res) => {
      res.resume();
      log({ msg: 'readiness signalled', status: res.statusCode });
      resolve();
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 2 s')));
    req.on('error', (err) => {
      log({ msg: 'readiness signal failed; the control plane will probe', error: err.message });
      resolve();
    });
    req.end();
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`${JSON.stringify({ msg: 'upstream failed', error: err instanceof Error ? err.message : String(err) })}\n`);
  process.exit(1);
});
