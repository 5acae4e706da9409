/**
 * Browser check of index.html: headless Chromium (Debian `chromium`, driven by playwright-core) loads the page from a
 * file:// URL and must log no console error, throw no page error, request nothing but the page itself, and draw every
 * figure (an <svg> with non-zero size). Skips, saying why, where /usr/bin/chromium is absent (`apt-get install -y chromium`).
 * Set MECHEVAL_REPORT_SCREENSHOT=<path.png> to also save a full-page screenshot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { renderHtml } from '../../src/report/index.ts';
import { FIXTURE_FIGURES, fixture } from './fixture.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

test('index.html renders in headless Chromium: no console or page errors, no requests, every figure drawn',
  { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent: install it with \`apt-get update && apt-get install -y chromium\`` },
  async () => {
    const { chromium } = await import('playwright-core');
    const dir = mkdtempSync(join(tmpdir(), 'mecheval-report-browser-'));
    const file = join(dir, 'index.html');
    writeFileSync(file, await renderHtml(fixture()));
    const url = pathToFileURL(file).href;
    const ctx = await chromium.launchPersistentContext(join(dir, 'profile'), { executablePath: CHROMIUM, headless: true, args: ARGS });
    try {
      const page = await ctx.newPage();
      const problems: string[] = [];
      const requests: string[] = [];
      page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`); });
      page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
      page.on('request', (r) => requests.push(r.url()));
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.goto(url, { waitUntil: 'load' });
      const drawn = await page.$$eval('svg', (els) => els.map((e) => {
        const r = e.getBoundingClientRect();
        return { id: e.closest('figure')?.id ?? '', w: r.width, h: r.height };
      }));
      const visible = drawn.filter((d) => d.w > 0 && d.h > 0);
      assert.deepEqual(problems, []);
      assert.deepEqual(requests, [url]);
      assert.ok(visible.length >= FIXTURE_FIGURES.length, `only ${visible.length} of ${FIXTURE_FIGURES.length} figures drawn: ${JSON.stringify(drawn)}`);
      assert.deepEqual(visible.map((d) => d.id).sort(), [...FIXTURE_FIGURES].sort());
      // Tables and findings are there as text.
      assert.equal(await page.locator('#findings .badge').count(), 9);
      if (process.env.MECHEVAL_REPORT_SCREENSHOT) await page.screenshot({ path: process.env.MECHEVAL_REPORT_SCREENSHOT, fullPage: true });
    } finally {
      await ctx.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
