// The gateway configs the xDS benchmark loads: N READY hosts, one endpoint each, on loopback ports nobody
// listens on (no traffic flows; the benchmark measures configuration only). A "one-host change" moves host 0's
// endpoint to another port and back.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Host 0's endpoint port in the base config and in the changed one. */
export const CHANGE_PORTS = [20_000, 20_001] as const;

export function xdsGatewayConfig(hosts: number, host0Port: number = CHANGE_PORTS[0]): Record<string, unknown> {
  return {
    listener: { address: '127.0.0.1', port: 0 },
    hosts: Array.from({ length: hosts }, (_, i) => ({
      name: `h${i}`,
      domains: [`h${i}.bench.local`],
      protocol: 'http1',
      endpoints: [{ address: '127.0.0.1', port: i === 0 ? host0Port : 30_000 + (i % 30_000) }],
      initialState: 'ready',
      idleAfterMs: 0,
    })),
  };
}

/** Writes the config as JSON (a YAML reader reads it as is) and returns its path. */
export async function writeXdsConfig(dir: string, hosts: number, host0Port: number = CHANGE_PORTS[0]): Promise<string> {
  const file = path.join(dir, `gateway-${hosts}-${host0Port}.json`);
  await writeFile(file, JSON.stringify(xdsGatewayConfig(hosts, host0Port)));
  return file;
}
