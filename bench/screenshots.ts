/**
 * `npm run screenshots`: the web console's pages as PNGs under docs/images/, for
 * docs/console.md and the README. Starts a demo: a throw-away PostgreSQL database on
 * the local server (127.0.0.1:5432, as the tests use), a receiver that refuses rows
 * marked "poison" (422), the daemon with the console, some orders written (one of
 * them a dead letter with a hostile note), then headless Chromium (/usr/bin/chromium)
 * visits each page.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startDaemon } from '../src/app.js';
import { parseConfig } from '../src/config/index.js';
import { launchBrowser } from '../test/support/browser.js';
import { createTestDatabase } from '../test/support/pg.js';
import { startReceiver } from '../test/support/receiver.js';
import { waitUntil } from '../test/support/wait.js';

const out = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'docs', 'images');
const TOKEN = 'demo-console-token';

async function main(): Promise<void> {
  mkdirSync(out, { recursive: true });
  const db = await createTestDatabase('screenshots');
  const rx = await startReceiver({
    mode: (req, res) => {
      const bad = req.body.includes('poison');
      res.statusCode = bad ? 422 : 200;
      res.setHeader('content-type', 'application/json');
      res.end(bad ? '{"error":"note rejected by the billing rules"}' : '{"ok":true}');
    },
  });
  await db.query('CREATE TABLE orders (id bigint PRIMARY KEY, customer text, total numeric(10,2), note text)');
  const yaml = [
    'database:',
    '  type: "postgres"',
    `  url: ${JSON.stringify(db.url)}`,
    '  tables: ["public.orders"]',
    'listener:',
    '  poll_interval: 0.2',
    'webhook:',
    `  url: ${JSON.stringify(rx.url.replace('/webhook', '/hooks/orders'))}`,
    '  timeout: 5',
    '  retry_count: 3',
    '  retry_delay: 0.1',
    `  secret: "whsec_${Buffer.from('demo-signing-secret-32-bytes-long').toString('base64')}"`,
    '  headers:',
    '    Authorization: "Bearer billing-api-key"',
    'http:',
    '  listen: "127.0.0.1:0"',
    '  token: "${ADMIN_TOKEN}"',
    '',
  ].join('\n');
  const daemon = await startDaemon(parseConfig(yaml, { ADMIN_TOKEN: TOKEN }, 'screenshots').config, { logger: pino({ level: 'silent' }) });
  const base = `http://127.0.0.1:${daemon.httpAddress!.port}`;
  const browser = await launchBrowser({ width: 1440, height: 800 });
  try {
    // Some traffic over a minute or so, for the chart and the log.
    for (let i = 1; i <= 40; i++) {
      await db.query('INSERT INTO orders VALUES ($1, $2, $3, $4)', [i, `customer ${i % 7}`, (i * 13.5).toFixed(2), 'ok']);
      if (i % 10 === 0) await new Promise((r) => setTimeout(r, 300));
    }
    await db.query(`INSERT INTO orders VALUES (42000, 'mallory', 9.99, 'poison <script>alert(1)</script>')`);
    await db.query(`UPDATE orders SET total = total + 1 WHERE id <= 5`);
    await waitUntil(async () => rx.events.length >= 46, 30_000, 'the demo deliveries');
    const page = await browser.context.newPage();
    const shot = async (name: string) => {
      await page.screenshot({ path: path.join(out, `console-${name}.png`), fullPage: false });
      console.log(`docs/images/console-${name}.png`);
    };
    await page.goto(base + '/');
    await shot('login');
    await page.fill('#token', TOKEN);
    await page.click('button[type=submit]');
    await page.waitForURL(base + '/');
    await waitUntil(async () => (await page.locator('#overview-rows tr').count()) > 0, 10_000, 'the overview rows');
    await shot('overview');
    await page.goto(base + '/deliveries');
    await page.locator('details').first().click();
    await shot('deliveries');
    await waitUntil(
      async () => {
        await page.goto(base + '/dead-letters');
        return (await page.locator('tbody a[href^="/dead-letters/"]').count()) > 0;
      },
      10_000,
      'the dead letter',
    );
    await shot('dead-letters');
    await page.locator('tbody a[href^="/dead-letters/"]').first().click();
    await page.waitForSelector('#new-row');
    await shot('dead-letter');
    const eventId = (await page.textContent('h1'))!.replace('Dead letter ', '').trim();
    await page.click('button[value=replay]');
    await shot('confirm');
    await page.goto(`${base}/events/${eventId}`);
    await shot('event');
    await page.goto(base + '/config');
    await shot('config');
  } finally {
    await browser.close();
    await daemon.stop(2_000);
    await rx.close();
    await db.drop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
