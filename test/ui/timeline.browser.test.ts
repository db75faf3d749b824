import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { type Service, startService } from '../../src/main.js';
import { amPayload, designDeploy, fakeClock, TOKEN } from '../support/harness.js';

// The timeline page in a real browser: Debian's headless Chromium driven by playwright-core, against the
// whole service listening on loopback. Screenshots go to test/artifacts/ (not committed) for a person to look at.

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = new URL('../artifacts/', import.meta.url).pathname;
const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-quic',
  '--no-first-run',
  '--disable-sync',
];

// This project compiles against Node's types only (no DOM lib): the little that the functions evaluated in the
// page touch is declared here, for this file alone.
interface PageElement {
  getAttribute(name: string): string | null;
  getBBox(): { x: number; y: number; width: number; height: number };
  href?: string;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  documentElement: { scrollWidth: number };
};
declare const window: { innerWidth: number; __pwned?: unknown };
declare function getComputedStyle(el: unknown): { fill: string; stroke: string; strokeDasharray: string };

const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(
    `SKIPPED the timeline browser tests: ${CHROMIUM} is missing (apt-get install chromium; .ci/run installs it).`,
  );
}

// The documented example (docs/api.md): a canary deploy to one host, an alert from that host 7 minutes later (attributed to
// alice) and one from another host (not attributed: on-call).
const DEPLOY = designDeploy({ stage: 'canary', percent: 1, hosts: ['checkout-7f9c-abcde'] });
const ATTRIBUTED = { fingerprint: 'aaaa000000000001', startsAt: '2026-11-26T11:09:00Z' };
const UNATTRIBUTED = {
  fingerprint: 'aaaa000000000002',
  startsAt: '2026-11-26T11:12:00Z',
  labels: { instance: 'checkout-7f9c-zzzzz:8080' },
};
const RANGE = '/?range=PT1H&to=2026-11-26T11:30:00Z';

describe.skipIf(!hasChromium)('the timeline page in Chromium', () => {
  const clock = fakeClock('2026-11-26T11:20:00Z');
  let dir: string;
  let service: Service;
  let context: BrowserContext;
  let page: Page;
  const dialogs: string[] = [];
  /** Script errors and console errors (a CSP violation is one), bar the 401 the login page is served with. */
  const errors: string[] = [];

  const api = async (path: string, body: unknown) => {
    const res = await fetch(`${service.url}${path}`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${TOKEN}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(res.status, `${path}: ${await res.clone().text()}`).toBeLessThan(300);
    return res.json();
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'changepager-ui-'));
    mkdirSync(ARTIFACTS, { recursive: true });
    const yaml = `database: { path: ${JSON.stringify(join(dir, 'db.sqlite'))} }\nlisten: { host: 127.0.0.1, port: 0 }\n`;
    const config = parseConfig(yaml, { path: 'browser-test.yaml', env: { CHANGEPAGER_TOKEN: TOKEN } });
    service = await startService({ config, log: createLogger('silent'), now: clock.now });
    await api('/v1/deploys', DEPLOY);
    await api('/v1/alertmanager', amPayload([ATTRIBUTED, UNATTRIBUTED]));

    context = await chromium.launchPersistentContext(join(dir, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: LAUNCH_ARGS,
      viewport: { width: 1280, height: 800 },
      timezoneId: 'America/New_York',
      locale: 'en-US',
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && !/status of 401/.test(msg.text())) errors.push(`console: ${msg.text()}`);
    });
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
  });

  afterAll(async () => {
    await context?.close();
    await service?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('asks for the token first, and signs in with an HttpOnly, SameSite=Strict cookie that is not the token', async () => {
    const res = await page.goto(`${service.url}${RANGE}`);
    expect(res?.status()).toBe(401);
    await page.fill('#token', TOKEN);
    await Promise.all([page.waitForURL(`${service.url}${RANGE}`), page.click('button[type="submit"]')]);
    await expect(page.locator('#timeline')).toBeDefined();
    const [cookie] = await context.cookies(service.url);
    expect(cookie).toMatchObject({ name: 'changepager_session', httpOnly: true, sameSite: 'Strict' });
    expect(cookie?.value).not.toContain(TOKEN);
  });

  it('draws one deploy marker, two alert bars in their colours, and the line from the attributed one', async () => {
    const lane = page.locator('g.lane[data-service="checkout"]');
    await lane.waitFor();
    const deploys = lane.locator('a.deploy');
    expect(await deploys.count()).toBe(1);
    const deployLabel = await deploys.first().getAttribute('aria-label');
    expect(deployLabel).toContain('2026.11.26-3f2a9c1');
    expect(deployLabel).toContain('Alice');
    expect(deployLabel).toContain('canary');

    const bars = lane.locator('a.alert');
    expect(await bars.count()).toBe(2);
    const style = (paged: string) =>
      lane.locator(`a.alert[data-paged="${paged}"] rect.bar`).evaluate((el) => {
        const s = getComputedStyle(el);
        return { fill: s.fill, stroke: s.stroke, dash: s.strokeDasharray };
      });
    const author = await style('author');
    const oncall = await style('oncall');
    expect(author.fill).toBe('rgb(213, 94, 0)'); // Okabe-Ito vermillion
    expect(oncall.fill).toContain('#pattern-oncall'); // blue with white stripes
    expect(oncall.stroke).toBe('rgb(0, 114, 178)');
    expect(author.fill).not.toBe(oncall.fill);

    const key = await lane.locator('a.alert[data-paged="author"]').getAttribute('data-alert');
    const deployKey = await deploys.first().getAttribute('data-deploy');
    const lines = lane.locator('line.cause');
    expect(await lines.count()).toBe(1);
    expect(await lines.first().getAttribute('data-alert')).toBe(key);
    expect(await lines.first().getAttribute('data-deploy')).toBe(deployKey);
    // The line really joins the bar's start to the marker.
    const geometry = await page.evaluate(
      ({ alert }) => {
        const line = document.querySelector(`line.cause[data-alert="${alert}"]`);
        const bar = document.querySelector(`a.alert[data-alert="${alert}"] rect.bar`);
        const box = document.querySelector('a.deploy path.marker')?.getBBox();
        return {
          x1: Number(line?.getAttribute('x1')),
          barX: Number(bar?.getAttribute('x')),
          x2: Number(line?.getAttribute('x2')),
          markerX: box ? box.x + box.width / 2 : Number.NaN,
        };
      },
      { alert: key },
    );
    expect(geometry.x1).toBeCloseTo(geometry.barX, 0);
    expect(geometry.x2).toBeCloseTo(geometry.markerX, 0);
    await page.screenshot({ path: join(ARTIFACTS, 'timeline-1280.png'), fullPage: true });
  });

  it("opens an alert's details on click: the reason, the links and the verdict", async () => {
    await page.click('g.lane a.alert[data-paged="author"]');
    const detail = page.locator('.detail.is-open');
    await detail.waitFor({ state: 'visible' });
    const reason = await detail.locator('.reason').textContent();
    expect(reason).toContain('by alice@example.com at 11:02 UTC');
    expect(reason).toContain('7 min later, on canary host checkout-7f9c-abcde. Paging alice@example.com.');
    const links = await detail.locator('ul.links a').evaluateAll((as) => as.map((a) => (a as PageElement).href));
    expect(links).toEqual(
      expect.arrayContaining([
        'https://runbooks.example/checkout',
        'http://prometheus.local/graph?g0.expr=rate',
        'https://git.example.com/shop/pull/4812',
        'https://git.example.com/shop/commit/3f2a9c1e',
      ]),
    );
    // The canary gate's verdict for the deploy: an alert attributed to it fired, so it is failing.
    expect(await detail.locator('.verdict').textContent()).toContain('failing');
    // Times are in the viewer's timezone: 11:09 UTC is 06:09 in New York in November.
    expect(await detail.locator('dd time').first().textContent()).toContain('6:09');
    expect(await page.locator('[data-tz]').textContent()).toBe('America/New_York');
    await page.screenshot({ path: join(ARTIFACTS, 'timeline-detail-1280.png') });
  });

  it('refreshes by itself when a new alert arrives, keeping the range and the open details', async () => {
    // Fake timers in the page: the 10 s poll happens when the test says, not after a real wait.
    await page.clock.install();
    await page.reload();
    await page.locator('.detail.is-open').waitFor();
    const before = page.url();
    await api(
      '/v1/alertmanager',
      amPayload(
        [{ fingerprint: 'aaaa000000000003', startsAt: '2026-11-26T11:15:00Z', labels: { alertname: 'LatencyHigh' } }],
        '{}:{alertname="LatencyHigh"}',
      ),
    );
    await page.clock.fastForward(11_000);
    await page.locator('g.lane a.alert').nth(2).waitFor({ timeout: 5_000 });
    expect(await page.locator('g.lane a.alert').count()).toBe(3);
    expect(page.url()).toBe(before);
    expect(await page.locator('select[name="range"]').inputValue()).toBe('PT1H');
    expect(await page.locator('.detail.is-open .reason').textContent()).toContain('Paging alice@example.com.');
  });

  it('shows hostile labels, versions and names as text and runs none of them', async () => {
    const hostile = '<script>window.__pwned=1</script>';
    const attribute = '"><img src=x onerror="window.__pwned=2">';
    await api(
      '/v1/deploys',
      designDeploy({
        id: 'evil-1',
        service: attribute,
        version: '<img src=x onerror="window.__pwned=3">',
        at: '2026-11-26T11:05:00Z',
        changes: [{ author: { email: 'mallory@example.com', name: hostile } }],
      }),
    );
    await api(
      '/v1/alertmanager',
      amPayload(
        [
          {
            fingerprint: 'bbbb000000000001',
            startsAt: '2026-11-26T11:10:00Z',
            labels: { alertname: hostile, service: attribute, severity: attribute },
          },
        ],
        '{}:{alertname="evil"}',
      ),
    );
    await page.goto(`${service.url}${RANGE}`);
    const lane = page.locator('g.lane[data-service="\\"><img src=x onerror=\\"window.__pwned=2\\">"]');
    await lane.waitFor();
    // The lane name is cut to fit; its title holds all of it.
    expect(await lane.locator('text.lane-name title').textContent()).toBe(attribute);
    expect(await lane.locator('a.alert text.alert-label').textContent()).toContain(hostile);
    await lane.locator('a.alert').click();
    expect(await page.locator('.detail.is-open h3').textContent()).toContain(hostile);
    await page.screenshot({ path: join(ARTIFACTS, 'timeline-hostile-1280.png'), fullPage: true });

    expect(await page.evaluate(() => window.__pwned)).toBeUndefined();
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('script').count()).toBe(1); // the page's own, from /ui/
    expect(dialogs).toEqual([]);
  });

  it('fits a phone: the chart scrolls sideways and the table carries the same content', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${service.url}${RANGE}`);
    await page.locator('g.lane').first().waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0); // the page itself never scrolls sideways
    expect(await page.locator('.alerts-table tbody tr').count()).toBe(4);
    // Opened on a phone, the chart starts scrolled to where the latest alert is.
    expect(
      await page.locator('.chart-scroll').evaluate((el) => (el as { scrollLeft: number }).scrollLeft),
    ).toBeGreaterThan(0);
    await page.screenshot({ path: join(ARTIFACTS, 'timeline-390.png') });
    await page.screenshot({ path: join(ARTIFACTS, 'timeline-390-full.png'), fullPage: true });
    await page.setViewportSize({ width: 1280, height: 800 });
  });

  it('ran all of the above without a script error or a Content-Security-Policy violation', () => {
    expect(errors).toEqual([]);
  });
});
