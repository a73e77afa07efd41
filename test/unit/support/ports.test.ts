import { readFileSync } from 'node:fs';
import net from 'node:net';
import { expect } from 'chai';
import { freePort, freePortBetween } from '../../support/ports.ts';

const listenOn = (port: number): Promise<net.Server | undefined> =>
  new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => resolve(server));
  });
const closeAll = (servers: (net.Server | undefined)[]): Promise<unknown> =>
  Promise.all(servers.map((s) => s && new Promise((r) => s.close(r))));

describe('test ports (freePort)', () => {
  it('hands out bindable ports below the kernel ephemeral range, never the same one twice', async () => {
    const ephemeralStart = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    const ports: number[] = [];
    for (let i = 0; i < 200; i++) ports.push(await freePort());
    expect(new Set(ports).size).to.equal(200);
    for (const p of ports) expect(p).to.be.below(ephemeralStart).and.at.least(22_000);
    const servers = await Promise.all(ports.slice(0, 20).map(listenOn));
    expect(servers.filter((s) => s === undefined)).to.have.length(0);
    await closeAll(servers);
  });

  it('skips ports something already listens on', async () => {
    // A 40-port range below the ephemeral one, 30 of them taken by listeners here: the picks are the rest.
    const floor = 31_000;
    const taken = await Promise.all(Array.from({ length: 30 }, (_, i) => listenOn(floor + i)));
    try {
      const free = Array.from({ length: 10 }, (_, i) => floor + 30 + i);
      // Six picks, not ten: one of the free ports may have been handed out earlier in this process (by another
      // test's freePort), and freePort never hands out a port twice.
      const picks: number[] = [];
      for (let i = 0; i < 6; i++) picks.push(await freePortBetween(floor, floor + 40));
      for (const p of picks) expect(free, `picked ${p}, one of the ports held here`).to.include(p);
      expect(new Set(picks).size).to.equal(6);
    } finally {
      await closeAll(taken);
    }
  });
});
