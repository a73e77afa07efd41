// The file model lists virtual hosts in name order, whatever the file's order; a reload that keeps every
// name in place reuses the last order (no names compared), and any other reload sorts again.
import { expect } from 'chai';
import type { GatewayConfig } from '../../sources/file/config.ts';
import { validateGatewayConfig } from '../../sources/file/parse.ts';
import { fileConfigToModel } from '../../sources/file/to-model.ts';

function config(names: string[], port = 9000): GatewayConfig {
  const result = validateGatewayConfig({
    listener: { port: 10000 },
    hosts: names.map((name, i) => ({ name, domains: [`${name}.test`], endpoints: [{ address: '127.0.0.1', port: port + i }] })),
  });
  if (!result.ok) throw new Error(JSON.stringify(result.errors));
  return result.value;
}

function order(c: GatewayConfig): string[] {
  return fileConfigToModel(c).listeners[0]!.virtualHosts.map((vh) => vh.name);
}

describe('file config → model: virtual host order', () => {
  it('is name order, and stays right across reloads that keep, swap, rename, add and remove hosts', () => {
    expect(order(config(['c', 'a', 'b']))).to.deep.equal(['vh_a', 'vh_b', 'vh_c']);
    // Same names in the same places, new host objects (an endpoint moved): the reused order.
    const moved = config(['c', 'a', 'b'], 9100);
    const model = fileConfigToModel(moved);
    expect(model.listeners[0]!.virtualHosts.map((vh) => vh.name)).to.deep.equal(['vh_a', 'vh_b', 'vh_c']);
    // Each virtual host is the one made from that host (not from the host at the same index).
    expect(model.listeners[0]!.virtualHosts.map((vh) => vh.domains[0])).to.deep.equal(['a.test', 'b.test', 'c.test']);
    // Two hosts trade places in the file: same names, other positions.
    expect(order(config(['a', 'c', 'b']))).to.deep.equal(['vh_a', 'vh_b', 'vh_c']);
    // A host renamed in place: same length, one name differs.
    expect(order(config(['a', 'c', '0']))).to.deep.equal(['vh_0', 'vh_a', 'vh_c']);
    expect(order(config(['a', 'c', '0', 'b']))).to.deep.equal(['vh_0', 'vh_a', 'vh_b', 'vh_c']);
    expect(order(config(['c', '0']))).to.deep.equal(['vh_0', 'vh_c']);
    expect(order(config([]))).to.deep.equal([]);
  });
});
