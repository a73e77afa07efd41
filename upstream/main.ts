// Standalone entry point, used by the control plane's process scaler and by
// benchmarks:
//   tsx upstream/main.ts --http-port N --grpc-port M [--id X] [--startup-delay-ms D] [--host H] [--help]
// Env fallbacks: PORT, GRPC_PORT, UPSTREAM_ID, STARTUP_DELAY_MS, HOST.
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
  -h, --help             print this and exit

Prints one JSON line {"msg":"upstream ready",...} with the bound ports; SIGTERM or SIGINT stops it.
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
}

main().catch((err: unknown) => {
  process.stderr.write(`${JSON.stringify({ msg: 'upstream failed', error: err instanceof Error ? err.message : String(err) })}\n`);
  process.exit(1);
});
