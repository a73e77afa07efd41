// One wrk run against a gateway, optionally pinned to a CPU, with its numbers read from the JSON line
// bench/wrk-report.lua prints.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { track } from './stack.ts';

const REPORT_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'wrk-report.lua');

export interface WrkOptions {
  wrkBin: string;
  port: number;
  host: string;
  durationS: number;
  connections: number;
  threads: number;
  /** CPU to pin wrk to with taskset; undefined = not pinned. */
  cpu?: number;
}

export interface WrkResult {
  requests: number;
  durationS: number;
  requestsPerSecond: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  latencyUs: { min: number; mean: number; max: number; p50: number; p90: number; p99: number; p999: number };
}

interface WrkJson {
  requests: number;
  duration_us: number;
  errors: WrkResult['errors'];
  latency_us: WrkResult['latencyUs'];
}

export async function runWrk(o: WrkOptions): Promise<WrkResult> {
  const wrkArgs = [
    `-t${o.threads}`, `-c${o.connections}`, `-d${o.durationS}s`, '--latency',
    '-H', `Host: ${o.host}`,
    '-s', REPORT_SCRIPT,
    `http://127.0.0.1:${o.port}/`,
  ];
  const [file, args] = o.cpu === undefined ? [o.wrkBin, wrkArgs] : ['taskset', ['-c', String(o.cpu), o.wrkBin, ...wrkArgs]];
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    track(child.pid, new Promise((r) => child.once('exit', r)));
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
    // wrk stops by itself after -d; this only guards against a wedged process.
    const timer = setTimeout(() => child.kill('SIGKILL'), (o.durationS + 30) * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: null, stdout: out, stderr: err + e.message });
    });
    // 'close', not 'exit': only then is stdout read to the end.
    child.on('close', (c) => {
      clearTimeout(timer);
      resolve({ code: c, stdout: out, stderr: err });
    });
  });
  const line = stdout.split('\n').find((l) => l.startsWith('WRK_JSON '));
  if (code !== 0 || !line) throw new Error(`wrk failed (exit ${code}):\n${stdout}\n${stderr}`);
  const j = JSON.parse(line.slice('WRK_JSON '.length)) as WrkJson;
  const durationS = j.duration_us / 1e6;
  return { requests: j.requests, durationS, requestsPerSecond: j.requests / durationS, errors: j.errors, latencyUs: j.latency_us };
}
