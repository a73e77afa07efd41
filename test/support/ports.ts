import { readFileSync } from 'node:fs';
import net from 'node:net';

// A port taken with listen(0) and closed again is drawn from the kernel's ephemeral range, the same range
// every later listen(0) and every outgoing connection draws from: between the pick and the moment our
// process binds it, a replica's own port-0 listener or a client socket could take it (CI saw a replica
// fail with EADDRINUSE that way). So ports are drawn below the ephemeral range, where the kernel hands
// out nothing by itself, and a port is never handed out twice in one process.
const FLOOR = 22_000; // above the fixed ports the test configs name (10000, 18001, 20000 + i)
const handedOut = new Set<number>();

function ephemeralStart(): number {
  try {
    const first = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > 0 ? first : 32_768;
  } catch {
    return 32_768; // Linux's default, for a machine without /proc
  }
}

const CEILING = ephemeralStart(); // exclusive

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

async function kernelPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** A port free on 127.0.0.1 right now, for a process we start that needs its port in the config up front. */
export async function freePort(): Promise<number> {
  // A machine whose ephemeral range leaves too little room below it: take the kernel's pick, as before.
  if (CEILING - FLOOR < 2_000) return kernelPort();
  return freePortBetween(FLOOR, CEILING);
}

/** A port in [floor, ceiling) that listens on 127.0.0.1 now and was not handed out before in this process. */
export async function freePortBetween(floor: number, ceiling: number): Promise<number> {
  for (let attempt = 0; attempt < 500; attempt++) {
    const port = floor + Math.floor(Math.random() * (ceiling - floor));
    if (handedOut.has(port)) continue;
    handedOut.add(port);
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port on 127.0.0.1 between ${floor} and ${ceiling - 1} after 500 tries`);
}
