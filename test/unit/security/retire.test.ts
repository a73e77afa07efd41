// A long-lived xDS connection is closed near the end of its client certificate's life, so a renewed
// certificate reaches it (TLS checks certificates only at the handshake), and an expired one keeps nothing open.
import { expect } from 'chai';
import { retireAt } from '../../../xds-server/security/xds-tls.ts';

const DAY = 86_400_000;

describe('security/retireAt', () => {
  it('closes with a quarter of the life left, jittered by at most a twenty-fourth, after the renewal at a third', () => {
    const from = 0;
    const to = 30 * DAY;
    expect(retireAt(from, to, 0, () => 0)).to.equal(to - 7.5 * DAY);
    expect(retireAt(from, to, 0, () => 1)).to.equal(to - 7.5 * DAY - 1.25 * DAY);
    // Never before the renewal point (a third left).
    expect(retireAt(from, to, 0, () => 0.999)).to.be.greaterThan(to - 10 * DAY);
  });

  it('a connection made after that point (no newer certificate) is closed at expiry, not at once', () => {
    const to = 30 * DAY;
    expect(retireAt(0, to, 25 * DAY, () => 0)).to.equal(to);
    expect(retireAt(0, to, 29.9 * DAY, () => 0.5)).to.equal(to);
  });
});
