/**
 * The web console in a real browser (headless Chromium, test/support/browser.ts),
 * against the real daemon, PostgreSQL and a real receiver: refused without the
 * token, log in, counts changing on the overview as rows are written (no reload),
 * a dead letter with a hostile value shown as text, replayed from its page through
 * the confirmation step, and then delivered.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { startDaemon, type RunningDaemon } from '../../src/app.js';
import { parseConfig } from '../../src/config/index.js';
import { launchBrowser, type Browser } from '../support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/pg.js';
import { startReceiver, type Receiver, type ReceiverHandler } from '../support/receiver.js';
import { waitUntil } from '../support/wait.js';

const TOKEN = 'e2e-console-token-0123456789';
const HOSTILE = '<script>alert(1)</script>';

/** Refuses (422) any change whose row says "poison": it goes to dead letters at once. */
const refusePoison: ReceiverHandler = (req, res) => {
  const bad = req.body.includes('poison');
  res.statusCode = bad ? 422 : 200;
  res.end(bad ? 'unprocessable' : 'ok');
};

let db: TestDatabase;
let rx: Receiver;
let daemon: RunningDaemon;
let browser: Browser;
let base: string;
/** Dialogs (alert) any page opened: a hostile value that ran would open one. */
const dialogs: string[] = [];

async function newPage(): Promise<Page> {
  const page = await browser.context.newPage();
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  return page;
}

/** The overview row of the default destination's `orders`: its counts, as the page shows them now. */
async function countsOf(page: Page): Promise<{ pending: number; inFlight: number; retrying: number; dead: number } | undefined> {
  const row = page.locator('tr[data-row="default|public.orders"]');
  if ((await row.count()) === 0) return undefined;
  const n = async (cls: string) => Number(await row.locator(`td.${cls}`).textContent());
  return { pending: await n('pending'), inFlight: await n('in-flight'), retrying: await n('retrying'), dead: await n('dead-letters') };
}

beforeAll(async () => {
  db = await createTestDatabase('console_e2e');
  await db.query('CREATE TABLE orders (id bigint PRIMARY KEY, note text)');
  rx = await startReceiver({ mode: refusePoison });
  const yaml = [
    'database:',
    '  type: "postgres"',
    `  url: ${JSON.stringify(db.url)}`,
    '  tables: ["orders"]',
    'listener:',
    '  poll_interval: 0.2',
    'webhook:',
    `  url: ${JSON.stringify(rx.url)}`,
    '  timeout: 2',
    '  retry_count: 5',
    '  retry_delay: 0.05',
    'http:',
    '  listen: "127.0.0.1:0"',
    '  token: "${ADMIN_TOKEN}"',
    '',
  ].join('\n');
  daemon = await startDaemon(parseConfig(yaml, { ADMIN_TOKEN: TOKEN }, 'e2e').config, { logger: pino({ level: process.env.ADL_TEST_LOG ?? 'silent' }) });
  base = `http://127.0.0.1:${daemon.httpAddress!.port}`;
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await daemon?.stop(2_000);
  await rx?.close();
  await db?.drop();
});

describe('web console in Chromium', () => {
  it('is refused without the token, and logs in with it (HttpOnly, SameSite=Strict cookie)', async () => {
    const page = await newPage();
    await page.goto(base + '/');
    expect(new URL(page.url()).pathname).toBe('/login');
    const api = await page.request.get(base + '/api/overview');
    expect(api.status()).toBe(401);
    await page.fill('#token', 'not-the-token');
    await page.click('button[type=submit]');
    expect(await page.textContent('.error')).toContain('not the token');
    expect(await browser.context.cookies()).toEqual([]);
    await page.fill('#token', TOKEN);
    await page.click('button[type=submit]');
    await page.waitForURL(base + '/');
    expect(await page.textContent('h1')).toBe('Overview');
    const [cookie] = await browser.context.cookies();
    expect(cookie).toMatchObject({ name: 'adl_session', httpOnly: true, sameSite: 'Strict' });
    expect(cookie!.value).not.toContain(TOKEN);
    await page.close();
  });

  it('shows counts change on the overview as rows are written, without reloading', async () => {
    const page = await newPage();
    await page.goto(base + '/');
    // The receiver holds the next requests: they stay in flight until webhook.timeout.
    rx.setMode('hang');
    await db.query(`INSERT INTO orders (id, note) VALUES (1, 'a'), (2, 'b'), (3, 'c')`);
    const busy = await waitUntil(
      async () => {
        const c = await countsOf(page);
        return c && c.pending + c.inFlight + c.retrying >= 3 ? c : undefined;
      },
      15_000,
      'the overview to show the three waiting rows',
    );
    expect(busy.pending + busy.inFlight + busy.retrying).toBe(3);
    // They go out once the receiver answers again (after the hung attempts time out).
    rx.setMode(refusePoison);
    await waitUntil(
      async () => {
        const c = await countsOf(page);
        return c && c.pending + c.inFlight + c.retrying === 0;
      },
      30_000,
      'the overview to show the rows delivered',
    );
    await rx.waitFor((events) => events.filter((e) => e.response === 'handler').length >= 3, 10_000);
    // The chart is drawn: a path with points.
    expect(await page.locator('#rate-chart path[data-role=line]').getAttribute('d')).toMatch(/^M/);
    await page.close();
  });

  it('opens a dead letter with a hostile value shown as text, replays it, and sees it delivered', async () => {
    await db.query(`INSERT INTO orders (id, note) VALUES (42, $1)`, [`poison ${HOSTILE}`]);
    const page = await newPage();
    let shown = '';
    await waitUntil(
      async () => {
        await page.goto(base + '/dead-letters');
        shown = (await page.textContent('main')) ?? '';
        return (await page.locator('tbody tr:has-text("422") a[href^="/dead-letters/default/"]').count()) > 0;
      },
      15_000,
      () => `the dead letter on the page; it shows: ${shown}`,
    );
    await page.locator('tbody tr:has-text("422") a[href^="/dead-letters/default/"]').first().click();
    await page.waitForSelector('#new-row');
    // Shown exactly as captured, as text: no element was made of it, nothing ran.
    expect(await page.textContent('#new-row')).toContain(HOSTILE);
    expect(await page.locator('main script').count()).toBe(0);
    expect(dialogs).toEqual([]);
    const eventId = (await page.textContent('h1'))!.replace('Dead letter ', '').trim();

    // Replay: the receiver takes it now.
    rx.setMode('ok');
    await page.click('button[value=replay]');
    expect(await page.textContent('h1')).toContain('Replay 1 dead letter?');
    expect(await page.textContent('main table')).toContain(eventId);
    await page.click('#confirm');
    await page.waitForURL(/\/dead-letters\?notice=/);
    expect(await page.textContent('#notice')).toContain('Replayed 1 dead letter');
    await rx.waitFor((events) => events.some((e) => e.body.includes('poison') && e.response === 200), 15_000);

    // The event's journey: the dead attempt, then the delivered one.
    await waitUntil(
      async () => {
        await page.goto(`${base}/events/${eventId}`);
        const outcomes = await page.locator('td[class^=outcome-]').allTextContents();
        return outcomes.includes('dead') && outcomes.includes('delivered');
      },
      15_000,
      'both attempts on the event page',
    );
    expect(await page.locator('main script').count()).toBe(0);
    expect(dialogs).toEqual([]);
    await page.close();
  });

  it('refuses a form posted from another origin', async () => {
    const res = await fetch(base + '/dead-letters/replay', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: (await browser.context.cookies()).map((c) => `${c.name}=${c.value}`).join('; '), origin: 'http://evil.example' },
      body: 'all=1&destination=default',
      redirect: 'manual',
    });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('another origin');
  });
});
