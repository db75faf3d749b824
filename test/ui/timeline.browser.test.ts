import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.js';
import { createLogger } from '../../src/log.js';
import { type Service, startService } from '../../src/main.js';
import { CHART_WIDTH, GUTTER } from '../../src/ui/layout.js';
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
  setAttribute(name: string, value: string): void;
  getBBox(): { x: number; y: number; width: number; height: number };
  href?: string;
  textContent: string | null;
  value?: string;
  classList: { contains(name: string): boolean };
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
  documentElement: { scrollWidth: number };
  body: { textContent: string | null };
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
    // Times are in UTC, on a 24-hour clock, also for a viewer in New York with an en-US browser.
    expect(await detail.locator('dd time').first().textContent()).toBe('2026-11-26 11:09 UTC');
    // How its page was delivered: the log channel (no PagerDuty configured here) took it.
    expect(await detail.locator('.deliveries li').first().textContent()).toMatch(
      /^delivered alice@example\.com: via log at \d\d:\d\d UTC$/,
    );
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

  it("writes every time in UTC on a 24-hour clock, whatever the viewer's timezone and locale", async () => {
    // The browser runs in America/New_York with en-US: 12-hour clocks and EST, were the page to follow it.
    await page.goto(`${service.url}${RANGE}`);
    await page.locator('g.lane').first().waitFor();
    const seen = await page.evaluate(() => ({
      text: document.body.textContent ?? '',
      times: [...document.querySelectorAll('time')].map((t) => t.textContent ?? ''),
      ticks: [...document.querySelectorAll('text.tick')].map((t) => t.textContent ?? ''),
      end: document.querySelector('input[name="end"]')?.value,
    }));
    expect(seen.text).not.toMatch(/\b(AM|PM|EST|EDT)\b/);
    expect(seen.text).toContain('Times are in UTC, on a 24-hour clock.');
    expect(seen.times.length).toBeGreaterThan(5);
    for (const t of seen.times) expect(t).toMatch(/^(\d{4}-\d{2}-\d{2} )?([01]\d|2[0-3]):[0-5]\d UTC$/);
    expect(seen.ticks).toEqual(['10:30', '10:40', '10:50', '11:00', '11:10', '11:20', '11:30']);
    expect(seen.end).toBe('2026-11-26 11:30');
    // The form sends the time as written, read as UTC.
    await page.fill('input[name="end"]', '2026-11-26 11:25');
    await Promise.all([page.waitForURL(/end=2026-11-26\+11%3A25/), page.click('form.controls button[type="submit"]')]);
    expect(await page.locator('#timeline-title').textContent()).toContain(
      '2026-11-26 10:25 UTC to 2026-11-26 11:25 UTC',
    );
  });

  describe('a crowded lane at the edge of the range', () => {
    // payments, an hour before the view above: a deploy, an alert 30 s after it, one 6 minutes after it (the
    // line from the deploy to it crosses the first one's label), and at the right edge a deploy and an alert
    // with names of the widest letters.
    const VIEW = '/services/payments?from=2026-11-26T08:40:00Z&to=2026-11-26T09:40:00Z';
    const WIDE = 'W'.repeat(40);

    beforeAll(async () => {
      await api('/v1/deploys', designDeploy({ id: 'pay-1', service: 'payments', at: '2026-11-26T09:00:00Z' }));
      await api(
        '/v1/deploys',
        designDeploy({
          id: 'pay-2',
          service: 'payments',
          version: `${WIDE.slice(0, 24)}-1`,
          at: '2026-11-26T09:25:00Z',
        }),
      );
      const labels = { service: 'payments', instance: 'payments-1:8080' };
      await api(
        '/v1/alertmanager',
        amPayload(
          [
            { fingerprint: 'cafe000000000001', startsAt: '2026-11-26T09:00:30Z', labels },
            { fingerprint: 'cafe000000000002', startsAt: '2026-11-26T09:06:00Z', labels },
            {
              fingerprint: 'cafe000000000003',
              startsAt: '2026-11-26T09:38:00Z',
              labels: { ...labels, alertname: WIDE },
            },
          ],
          '{}:{alertname="crowded"}',
        ),
      );
      await page.goto(`${service.url}${VIEW}`);
      await page.locator('g.lane[data-service="payments"]').waitFor();
      await page.screenshot({ path: join(ARTIFACTS, 'timeline-edges-1280.png'), fullPage: true });
    });

    it('keeps every label on the chart, and lane names beside it', async () => {
      const boxes = await page.evaluate(() =>
        [...document.querySelectorAll('svg.chart text')].map((t) => {
          const { x, width } = t.getBBox(); // an SVGRect: its fields are getters, not own properties
          return { text: t.textContent ?? '', laneName: t.classList.contains('lane-name'), x, width };
        }),
      );
      expect(boxes.filter((b) => b.text.includes('WWWWWWWWWW'))).toHaveLength(2);
      expect(boxes.every((b) => Number.isFinite(b.x) && b.width > 0)).toBe(true);
      const outside = boxes.filter(
        (b) => b.x < 0 || b.x + b.width > CHART_WIDTH || (b.laneName && b.x + b.width > GUTTER),
      );
      expect(outside).toEqual([]);
    });

    it('draws no attribution line through the text of a label', async () => {
      const first = page.locator('g.lane a.alert', { hasText: 'HighErrorRate' }).first();
      const key = await first.getAttribute('data-alert');
      const label = first.locator('text.alert-label');
      // The line to the second alert does cross the first one's label (as a geometry question).
      const crossing = await page.evaluate((k) => {
        const box = document.querySelector(`a.alert[data-alert="${k}"] text.alert-label`)?.getBBox();
        return [...document.querySelectorAll('line.cause')].some((l) => {
          const [x1, y1, x2, y2] = ['x1', 'y1', 'x2', 'y2'].map((a) => Number(l.getAttribute(a)));
          if (!box || x1 === undefined || y1 === undefined || x2 === undefined || y2 === undefined) return false;
          // Sample the segment: any point inside the label's box is a crossing.
          for (let i = 0; i <= 200; i++) {
            const x = x1 + ((x2 - x1) * i) / 200;
            const y = y1 + ((y2 - y1) * i) / 200;
            if (x > box.x && x < box.x + box.width && y > box.y && y < box.y + box.height) return true;
          }
          return false;
        });
      }, key);
      expect(crossing).toBe(true);
      // ...and yet the label looks exactly the same with the lines as without them.
      const box = await label.boundingBox();
      if (!box) throw new Error('the label is not drawn');
      const clip = { x: box.x + 1, y: box.y + 1, width: box.width - 2, height: box.height - 2 };
      await page.mouse.move(0, 0);
      const withLines = await page.screenshot({ clip });
      await page.evaluate(() => {
        for (const l of document.querySelectorAll('line.cause, line.deploy-guide'))
          l.setAttribute('visibility', 'hidden');
      });
      const withoutLines = await page.screenshot({ clip });
      await page.reload();
      expect(withLines.equals(withoutLines)).toBe(true);
    });
  });

  it('ran all of the above without a script error or a Content-Security-Policy violation', () => {
    expect(errors).toEqual([]);
  });
});
