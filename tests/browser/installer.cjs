// Drives the installer page in Debian's headless Chromium for tests/api.rs:
//   node installer.cjs URL TOKEN SCREENSHOT.png
// Enters the token, waits for the live snapshot, camera table and events, draws a zone by clicking
// on the snapshot, checks it with the agent, takes a screenshot and prints a JSON result line.
'use strict';
const path = require('path');

const npmDir = process.env.EDGE_AGENT_NPM_DIR || path.join(__dirname, '..', '..', '.cache', 'npm');
const { chromium } = require(path.join(npmDir, 'node_modules', 'playwright-core'));

const [url, token, shot] = process.argv.slice(2);
if (!url || !token || !shot) {
  console.error('usage: node installer.cjs URL TOKEN SCREENSHOT.png');
  process.exit(2);
}

// Fractions of the snapshot where the zone's corners are clicked.
const CLICKS = [[0.2, 0.3], [0.8, 0.3], [0.85, 0.85], [0.15, 0.85]];

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // This machine's closed network: no background connections, no QUIC, no GPU, no sandbox (root).
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.on('console', (m) => console.error('page console:', m.type(), m.text()));
    page.on('pageerror', (e) => console.error('page error:', e.message));
    await page.goto(url);
    await page.waitForSelector('#login:not([hidden])', { timeout: 15000 });
    await page.fill('#token', token);
    await page.click('#login-go');

    await page.waitForFunction(() => {
      const img = document.getElementById('snapshot');
      return img && img.complete && img.naturalWidth > 0;
    }, null, { timeout: 60000 });
    await page.waitForFunction(() => {
      const row = document.querySelector('#cameras tbody tr');
      return row && row.textContent.includes('up');
    }, null, { timeout: 30000 });
    await page.waitForFunction(() => document.querySelectorAll('#events li .kind').length > 0,
      null, { timeout: 60000 });

    const editor = page.locator('#editor');
    const box = await editor.boundingBox();
    for (const [fx, fy] of CLICKS) {
      // Relative to the canvas, which playwright scrolls into view first.
      await editor.click({ position: { x: fx * box.width, y: fy * box.height } });
    }
    await page.click('#finish');
    await page.click('#validate');
    await page.waitForFunction(() => {
      const t = document.getElementById('validate-result').textContent;
      return t && t !== 'checking…';
    }, null, { timeout: 15000 });
    // One more snapshot refresh so the screenshot shows a live frame under the drawn zone.
    await page.waitForTimeout(1500);
    await page.evaluate(() => window.scrollTo(0, 0));

    const result = await page.evaluate(() => ({
      natural: [document.getElementById('snapshot').naturalWidth,
        document.getElementById('snapshot').naturalHeight],
      cameraRow: document.querySelector('#cameras tbody tr').textContent,
      events: document.querySelectorAll('#events li .kind').length,
      toml: document.getElementById('toml').value,
      validate: document.getElementById('validate-result').textContent,
    }));
    result.clicked = CLICKS;
    await page.screenshot({ path: shot });
    console.log(JSON.stringify(result));
  } finally {
    await browser.close();
  }
})().catch((e) => {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
