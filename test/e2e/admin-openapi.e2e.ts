// The admin API against its own OpenAPI document: schemathesis (PyPI, installed into .venv by
// scripts/setup.sh) reads /openapi.json from the running control plane and sends generated requests, valid
// and invalid, to every route. Any 5xx, an answer that does not match its documented schema or status, an
// invalid request that is accepted, a route that works without the token, or an undeclared method that is
// not a 405 with Allow fails the test. A real Envoy is connected, so /v1/nodes and the per-node snapshot
// answer with real data (the document's links lead the fuzzer from /v1/nodes to the node snapshot).
//
// What the fuzzer may do is harmless by construction: the hosts are manual (a wake or a mark only flips
// what the filter does; nothing is started or stopped), the config reload re-reads the unchanged file, and
// the filter's wake route is rate limited (429 is documented).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT } from '../../envoy-bootstrap/envoy.ts';
import { ROUTES } from '../../xds-server/admin/openapi.ts';
import { startStack, type Stack } from '../support/stack.ts';

const SCHEMATHESIS = path.join(REPO_ROOT, '.venv', 'bin', 'schemathesis');
const TOKEN = 'fuzz-token-0123456789';

interface Run {
  code: number | null;
  output: string;
}

function schemathesis(args: string[], cwd: string, timeoutMs: number): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(SCHEMATHESIS, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let output = '';
    for (const s of [child.stdout, child.stderr]) s.on('data', (d: Buffer) => (output += d.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('admin API fuzzed against its own OpenAPI document (schemathesis)', function () {
  this.timeout(120_000);
  let stack: Stack;

  before(async function () {
    if (!existsSync(SCHEMATHESIS)) throw new Error(`${SCHEMATHESIS} is missing; run bash scripts/setup.sh`);
    stack = await startStack({
      config: (u) => ({
        hosts: [
          { name: 'web', domains: ['web.test'], endpoints: [{ address: '127.0.0.1', port: u.httpPort }] },
          { name: 'rpc', domains: ['rpc.test'], protocol: 'grpc', endpoints: [{ address: '127.0.0.1', port: u.grpcPort }] },
          { name: 'cold', domains: ['cold.test'], initialState: 'scaled_to_zero', endpoints: [{ address: '127.0.0.1', port: u.httpPort }] },
        ],
      }),
      controlPlane: { adminToken: TOKEN },
    });
  });
  after(async () => {
    await stack?.close();
  });

  it('finds no server error, schema mismatch, accepted invalid input or ignored auth in a bounded run', async () => {
    const run = await schemathesis(
      [
        'run',
        `${stack.cp.adminUrl}/openapi.json`,
        '--checks', 'all',
        '--header', `Authorization: Bearer ${TOKEN}`,
        // Bounded and reproducible: a fixed seed, a cap per operation, one worker (the machine is shared).
        '--max-examples', '100',
        '--seed', '20261130',
        '--workers', '1',
        '--request-timeout', '15',
        '--generation-database', 'none',
        '--max-failures', '20',
        // The status event stream never ends (a fuzzer would wait for its end); its events are checked against
        // their schema as they are sent (unit test "status page routes").
        '--exclude-operation-id', 'statusEvents',
        '--no-color',
        '--report', 'junit',
        '--report-dir', path.join(stack.dir, 'schemathesis-report'),
      ],
      stack.dir,
      100_000,
    );
    expect(run.code, `schemathesis failed (exit ${run.code}):\n${run.output}`).to.equal(0);
    // Proof it ran the document's operations (a run that tested nothing would also exit 0).
    // schemathesis leaves out the operation that serves the document it reads.
    const operations = ROUTES.filter((r) => r.path !== '/openapi.json' && r.id !== 'statusEvents').length;
    expect(run.output).to.match(new RegExp(`Tested:\\s+${operations}\\b`));
    const generated = Number(/(\d+) generated/.exec(run.output)?.[1] ?? 0);
    expect(generated, 'test cases generated').to.be.greaterThan(operations * 20);
  });
});
