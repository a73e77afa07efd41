// The status page in a real headless browser: Debian's chromium (installed by scripts/setup.sh) driven by
// playwright-core (npm, pinned), against the real Envoy and our control plane with an admin token. The page
// asks for the token, shows a held request as held, wakes the host behind a confirmation (keyboard only)
// and lists the cold start, and shows a NACK on the Envoy's card. Screenshots (desktop and phone width) are
// kept in .cache/test-artifacts/ (gitignored).
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT } from '../../envoy-bootstrap/envoy.ts';
import { http1Request } from '../support/http-client.ts';
import { startStack, type Stack } from '../support/stack.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, '.cache', 'test-artifacts');
const TOKEN = 'status-page-token';

describe('status page in a headless browser (chromium + playwright-core)', function () {
  this.timeout(90_000);
  let stack: Stack;
  let browser: Browser;
  let page: Page;
  const hosts = (httpPort: number, listenerPort = 0): Record<string, unknown> => ({
    listener: { address: '127.0.0.1', port: listenerPort },
    hosts: [
      { name: 'held', domains: ['held.test'], initialState: 'scaled_to_zero', endpoints: [{ address: '127.0.0.1', port: httpPort }], buffer: { holdTimeoutMs: 60_000, maxHeld: 100, retryAfterSeconds: 1 } },
      { name: 'web', domains: ['web.test'], endpoints: [{ address: '127.0.0.1', port: httpPort }] },
    ],
  });

  before(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run "bash scripts/setup.sh" as root, or "sudo apt-get install -y chromium"`);
    await mkdir(ARTIFACTS, { recursive: true });
    stack = await startStack({ config: (u) => hosts(u.httpPort), controlPlane: { adminToken: TOKEN } });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (err) => console.error('page error:', err.message));
  });
  after(async () => {
    await browser?.close();
    await stack?.close();
  });

  const card = (name: string) => page.locator(`article.host[data-host="${name}"]`);

  it('loads, asks for the admin token and goes live', async () => {
    await page.goto(`${stack.cp.adminUrl}/status`);
    await page.getByLabel('Admin token').fill(TOKEN);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.locator('#connection[data-state="live"]').waitFor();
    await card('held').waitFor();
    expect(await card('held').getAttribute('data-phase')).to.equal('scaled_to_zero');
    expect(await card('web').getAttribute('data-phase')).to.equal('ready');
  });

  it('shows a held request as held, pushed by the server', async () => {
    const reply = http1Request({ port: stack.port, host: 'held.test', path: '/hello', timeoutMs: 60_000 });
    await card('held').locator('[data-field="held"]', { hasText: /^1\b/ }).waitFor({ timeout: 10_000 });
    (globalThis as { heldReply?: unknown }).heldReply = reply;
  });

  it('wakes the host behind a confirmation, by keyboard: the request completes and the cold start is listed', async () => {
    await page.locator('#act-wake-held').focus();
    await page.keyboard.press('Enter');
    const dialog = page.locator('dialog#confirm');
    await dialog.waitFor({ state: 'visible' });
    expect(await dialog.locator('#confirm-title').textContent()).to.equal('Wake: held?');
    expect(await page.evaluate(() => document.activeElement?.id)).to.equal('confirm-cancel');
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).to.equal('confirm-ok');
    await page.keyboard.press('Enter');
    const reply = await ((globalThis as { heldReply?: Promise<{ status: number }> }).heldReply as Promise<{ status: number }>);
    expect(reply.status).to.equal(200);
    await page.locator('article.host[data-host="held"][data-phase="ready"]').waitFor({ timeout: 10_000 });
    await card('held').locator('li.cold-start[data-outcome="ready"]').waitFor();
    const total = await card('held').locator('li.cold-start [data-field="total"]').first().textContent();
    expect(total).to.match(/^\d+ ms$|^\d+\.\d s$/);
    await card('held').locator('[data-field="result"]', { hasText: 'Wake: done' }).waitFor();
    expect(await card('held').locator('[data-field="held"]').textContent()).to.match(/^0\b/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'status-page.png'), fullPage: true });
  });

  it("shows a NACK on the Envoy's card, with Envoy's message", async () => {
    // A listener port another process holds: Envoy rejects the listener (the same NACK as control-plane.e2e.ts).
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    const blocked = (blocker.address() as net.AddressInfo).port;
    try {
      await stack.writeConfig(hosts(stack.upstream.httpPort, blocked));
      expect((await stack.adminFetch('/v1/config/reload', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status).to.equal(200);
      const nack = page.locator('article.node [data-field="nack"]');
      await nack.waitFor({ timeout: 15_000 });
      expect(await nack.textContent()).to.match(/NACK \(standing\).*listener/).and.match(/address already in use|bind/i);
      await page.setViewportSize({ width: 390, height: 844 });
      await page.screenshot({ path: path.join(ARTIFACTS, 'status-page-phone.png'), fullPage: true });
      // Phone width: nothing wider than the screen (cards stack; tables scroll inside their box).
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).to.be.at.most(390);
    } finally {
      await stack.writeConfig(hosts(stack.upstream.httpPort));
      await stack.adminFetch('/v1/config/reload', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
      blocker.close();
    }
  });
});
