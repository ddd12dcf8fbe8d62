/**
 * The console's pages: server-rendered HTML, complete without JavaScript. Every
 * value goes through the `html` template (escaped), row values included.
 */
import type { AttemptEntry, DeadLetter, EventJourney, TableStatus } from '../capture/admin.js';
import { html, raw, type Html } from './html.js';
import type { RateSeries } from './rate.js';

export interface PageContext {
  /** The CSRF token every form carries. */
  readonly csrf: string;
  /** Show the log-out button (a token is configured). */
  readonly loggedIn: boolean;
  readonly version: string;
}

export interface OverviewRow extends TableStatus {
  /** 'up' / 'down' for a destination this daemon delivers to; null for the inbox row. */
  readonly endpoint: 'up' | 'down' | null;
}

const NAV: ReadonlyArray<[string, string]> = [
  ['/', 'Overview'],
  ['/deliveries', 'Deliveries'],
  ['/dead-letters', 'Dead letters'],
  ['/events', 'Event'],
  ['/config', 'Config'],
];

export function layout(title: string, active: string, ctx: PageContext, body: Html): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · app-db-listener</title>
<link rel="stylesheet" href="/assets/console.css">
<script src="/assets/console.js" defer></script>
</head>
<body>
<header>
  <span class="brand">app-db-listener</span>
  <nav>${NAV.map(([href, label]) => html`<a href="${href}" class="${href === active ? 'active' : ''}">${label}</a>`)}</nav>
  ${ctx.loggedIn ? html`<form method="post" action="/logout"><input type="hidden" name="csrf" value="${ctx.csrf}"><button class="plain" type="submit">Log out</button></form>` : ''}
</header>
<main>
${body}
</main>
</body>
</html>
`.text;
}

function fmtAge(s: number | null): string {
  if (s === null) return '-';
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** The chart as inline SVG (drawn here, redrawn by console.js): presentation attributes only, no inline style. */
export function rateChart(series: RateSeries): Html {
  const w = 900;
  const h = 160;
  const pad = 4;
  const points = series.total;
  const max = Math.max(1, ...points);
  const d = points
    .map((v, i) => {
      const x = pad + (i * (w - 2 * pad)) / Math.max(1, points.length - 1);
      const y = h - pad - (v / max) * (h - 2 * pad);
      return `${i === 0 ? 'M' : 'L'}${x.toFixed(1)} ${y.toFixed(1)}`;
    })
    .join('');
  return html`<svg id="rate-chart" viewBox="0 0 ${w} ${h}" preserveAspectRatio="none" role="img" aria-label="Delivered per second, last 15 minutes">
<line x1="0" y1="${h - pad}" x2="${w}" y2="${h - pad}" stroke="#d9dee4" stroke-width="1"/>
<path data-role="line" d="${d}" fill="none" stroke="#1f6feb" stroke-width="2" vector-effect="non-scaling-stroke"/>
<text data-role="max" x="6" y="16" font-size="12" fill="#5b6673">${max.toFixed(1)}/s</text>
</svg>`;
}

export function overviewPage(ctx: PageContext, rows: readonly OverviewRow[], series: RateSeries): string {
  // The last minute, the bucket still filling included.
  const recent = series.total.slice(-6);
  const now = recent.reduce((a, b) => a + b, 0) / Math.max(1, recent.length);
  return layout(
    'Overview',
    '/',
    ctx,
    html`<h1>Overview</h1>
<div class="card chart">
  <div><strong>Delivered per second</strong>, last 15 minutes (10 s buckets): <span id="rate-now">${now.toFixed(1)}</span>/s over the last minute</div>
  ${rateChart(series)}
</div>
<table>
<thead><tr><th>Destination</th><th>Table</th><th class="num">Pending</th><th class="num">In flight</th><th class="num">Retrying</th><th class="num">Dead letters</th><th class="num">Oldest waiting</th><th>Endpoint</th><th>Last delivery</th></tr></thead>
<tbody id="overview-rows">
${rows.map(
  (r) => html`<tr data-row="${`${r.destination ?? ''}|${r.schema}.${r.table}`}">
<td>${r.destination === '' ? '(not routed yet)' : (r.destination ?? '-')}</td><td>${r.schema}.${r.table}</td>
<td class="num pending">${r.pending}</td><td class="num in-flight">${r.inFlight}</td><td class="num retrying">${r.retrying}</td>
<td class="num dead-letters">${r.deadLetters}</td><td class="num">${fmtAge(r.oldestPendingSeconds)}</td>
<td class="${r.endpoint ?? ''}">${r.endpoint ?? '-'}</td><td>${r.lastDeliveryAt ?? '-'}</td></tr>`,
)}
</tbody>
</table>
<p class="muted" id="overview-updated">Counts as of this page; they refresh every 3 s with JavaScript.</p>`,
  );
}

export interface DeliveriesQuery {
  readonly event?: string;
  readonly table?: string;
  readonly rowKey?: string;
  readonly destination?: string;
  readonly outcome?: string;
}

function headersText(h: Readonly<Record<string, string>>): string {
  return Object.entries(h)
    .map(([k, v]) => `${k}: ${v}`)
    .join('\n');
}

export function attemptDetails(a: AttemptEntry): Html {
  return html`<details><summary>request and response</summary>
<div><strong>${a.address}</strong></div>
<div class="muted">request headers</div><pre>${headersText(a.requestHeaders)}</pre>
<div class="muted">request body</div><pre>${a.requestBody}</pre>
<div class="muted">response ${a.responseStatus ?? ''}</div><pre>${a.responseBody ?? ''}</pre>
${a.error ? html`<div class="muted">error</div><pre>${a.error}</pre>` : ''}
</details>`;
}

export function deliveriesPage(
  ctx: PageContext,
  q: DeliveriesQuery,
  destinations: readonly string[],
  attempts: readonly AttemptEntry[],
  logOn: boolean,
  next: string | undefined,
  problem?: string,
): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries({ event: q.event, table: q.table, row_key: q.rowKey, destination: q.destination, outcome: q.outcome })) {
    if (v) params.set(k, v);
  }
  if (next) params.set('before', next);
  return layout(
    'Deliveries',
    '/deliveries',
    ctx,
    html`<h1>Deliveries</h1>
${logOn ? '' : html`<div class="notice">The attempt log is off (http.attempt_log: false): no new attempts are recorded.</div>`}
${problem ? html`<div class="error">${problem}</div>` : ''}
<form class="filters" method="get" action="/deliveries">
<label>Event id<input name="event" value="${q.event ?? ''}" placeholder="evt_… or number"></label>
<label>Table<input name="table" value="${q.table ?? ''}" placeholder="schema.table"></label>
<label>Row key<input name="row_key" value="${q.rowKey ?? ''}"></label>
<label>Destination<select name="destination"><option value="">any</option>${destinations.map((d) => html`<option${q.destination === d ? raw(' selected') : ''}>${d}</option>`)}</select></label>
<label>Status<select name="outcome"><option value="">any</option>${['delivered', 'retry', 'dead'].map((o) => html`<option${q.outcome === o ? raw(' selected') : ''}>${o}</option>`)}</select></label>
<button type="submit">Search</button>
</form>
<table>
<thead><tr><th>At (UTC)</th><th>Destination</th><th>Event</th><th>Table</th><th>Row key</th><th class="num">Attempt</th><th>Outcome</th><th class="num">Status</th><th class="num">Duration</th><th>Detail</th></tr></thead>
<tbody>
${attempts.map(
  (a) => html`<tr><td>${a.at}</td><td>${a.destination}</td><td><a href="/events/${encodeURIComponent(a.eventId)}">${a.eventId}</a></td>
<td>${a.schema}.${a.table} <span class="muted">${a.op}</span></td><td>${a.rowKey ?? '-'}</td><td class="num">${a.attempt}</td>
<td class="outcome-${a.outcome}">${a.outcome}</td><td class="num">${a.responseStatus ?? '-'}</td><td class="num">${a.durationMs.toFixed(1)} ms</td>
<td>${attemptDetails(a)}</td></tr>`,
)}
</tbody>
</table>
${attempts.length === 0 ? html`<p class="muted">No attempts match.</p>` : ''}
${next ? html`<p><a href="/deliveries?${params.toString()}">Older attempts</a></p>` : ''}`,
  );
}

export interface DeadLettersQuery {
  readonly destination?: string;
  readonly table?: string;
  readonly since?: string;
}

export function deadLettersPage(
  ctx: PageContext,
  q: DeadLettersQuery,
  destinations: readonly string[],
  letters: readonly DeadLetter[],
  total: number,
  notice?: string,
  problem?: string,
): string {
  return layout(
    'Dead letters',
    '/dead-letters',
    ctx,
    html`<h1>Dead letters</h1>
${notice ? html`<div class="notice" id="notice">${notice}</div>` : ''}
${problem ? html`<div class="error">${problem}</div>` : ''}
<form class="filters" method="get" action="/dead-letters">
<label>Destination<select name="destination"><option value="">any</option>${destinations.map((d) => html`<option${q.destination === d ? raw(' selected') : ''}>${d}</option>`)}</select></label>
<label>Table<input name="table" value="${q.table ?? ''}" placeholder="schema.table"></label>
<label>Failed since<input name="since" value="${q.since ?? ''}" placeholder="2026-12-06T00:00:00Z"></label>
<button type="submit">Filter</button>
</form>
<p class="muted">${total} dead letter${total === 1 ? '' : 's'} match${total === 1 ? 'es' : ''}${letters.length < total ? `; the oldest ${letters.length} are shown` : ''}.</p>
<form method="post" action="/dead-letters/confirm">
<input type="hidden" name="csrf" value="${ctx.csrf}">
<div class="actions">
<button type="submit" name="action" value="replay">Replay selected</button>
<button type="submit" name="action" value="purge" class="danger">Purge selected</button>
</div>
<table>
<thead><tr><th><input type="checkbox" id="select-all" aria-label="select all"></th><th>Destination</th><th>Event</th><th>Table</th><th>Op</th><th class="num">Attempts</th><th class="num">Status</th><th>Error</th><th>Failed at (UTC)</th></tr></thead>
<tbody>
${letters.map(
  (d) => html`<tr><td><input type="checkbox" name="selected" value="${`${d.destination}:${d.id}`}" aria-label="select ${d.eventId}"></td>
<td>${d.destination}</td><td><a href="/dead-letters/${encodeURIComponent(d.destination)}/${encodeURIComponent(d.id)}">${d.eventId}</a></td>
<td>${d.schema}.${d.table}</td><td>${d.op}</td><td class="num">${d.attempts}</td><td class="num">${d.lastStatus ?? '-'}</td>
<td>${d.lastError ?? ''}</td><td>${d.failedAt}</td></tr>`,
)}
</tbody>
</table>
</form>
<h2>Every dead letter of a destination</h2>
<form method="post" action="/dead-letters/confirm" class="actions">
<input type="hidden" name="csrf" value="${ctx.csrf}">
<select name="destination" aria-label="destination">${destinations.map((d) => html`<option${q.destination === d ? raw(' selected') : ''}>${d}</option>`)}</select>
<input type="hidden" name="all" value="1">
<button type="submit" name="action" value="replay">Replay all</button>
<button type="submit" name="action" value="purge" class="danger">Purge all</button>
</form>`,
  );
}

export function deadLetterPage(ctx: PageContext, d: DeadLetter): string {
  return layout(
    `Dead letter ${d.eventId}`,
    '/dead-letters',
    ctx,
    html`<h1>Dead letter ${d.eventId}</h1>
<table>
<tbody>
<tr><th>Destination</th><td>${d.destination}</td></tr>
<tr><th>Event</th><td><a href="/events/${encodeURIComponent(d.eventId)}">${d.eventId}</a></td></tr>
<tr><th>Table</th><td>${d.schema}.${d.table}</td></tr>
<tr><th>Operation</th><td>${d.op}</td></tr>
<tr><th>Attempts</th><td>${d.attempts}</td></tr>
<tr><th>Last status</th><td>${d.lastStatus ?? '-'}</td></tr>
<tr><th>Last error</th><td>${d.lastError ?? ''}</td></tr>
<tr><th>Captured at (UTC)</th><td>${d.createdAt}</td></tr>
<tr><th>Failed at (UTC)</th><td>${d.failedAt}</td></tr>
</tbody>
</table>
<h2>New row (as captured)</h2><pre id="new-row">${d.newRow ?? 'null'}</pre>
<h2>Old row (as captured)</h2><pre id="old-row">${d.oldRow ?? 'null'}</pre>
<form method="post" action="/dead-letters/confirm" class="actions">
<input type="hidden" name="csrf" value="${ctx.csrf}">
<input type="hidden" name="selected" value="${`${d.destination}:${d.id}`}">
<button type="submit" name="action" value="replay">Replay</button>
<button type="submit" name="action" value="purge" class="danger">Purge</button>
</form>`,
  );
}

export interface PlannedAction {
  readonly action: 'replay' | 'purge';
  /** Hidden fields that select the same dead letters again. */
  readonly fields: ReadonlyArray<readonly [string, string]>;
  readonly letters: readonly DeadLetter[];
  readonly total: number;
  readonly what: string;
}

export function confirmPage(ctx: PageContext, plan: PlannedAction): string {
  const verb = plan.action === 'replay' ? 'Replay' : 'Purge';
  return layout(
    `${verb}?`,
    '/dead-letters',
    ctx,
    html`<h1>${verb} ${plan.total} dead letter${plan.total === 1 ? '' : 's'}?</h1>
<p>${plan.what}. ${plan.action === 'replay' ? 'They go back in their destination\u2019s queue with the same event ids and are delivered again.' : 'They are deleted for good.'}</p>
<table>
<thead><tr><th>Destination</th><th>Event</th><th>Table</th><th>Error</th></tr></thead>
<tbody>${plan.letters.map((d) => html`<tr><td>${d.destination}</td><td>${d.eventId}</td><td>${d.schema}.${d.table}</td><td>${d.lastError ?? ''}</td></tr>`)}</tbody>
</table>
${plan.letters.length < plan.total ? html`<p class="muted">…and ${plan.total - plan.letters.length} more.</p>` : ''}
<form method="post" action="/dead-letters/${plan.action}" class="actions">
<input type="hidden" name="csrf" value="${ctx.csrf}">
${plan.fields.map(([k, v]) => html`<input type="hidden" name="${k}" value="${v}">`)}
<button type="submit" id="confirm" class="${plan.action === 'purge' ? 'danger' : ''}">Yes, ${plan.action} ${plan.total}</button>
<a href="/dead-letters">Cancel</a>
</form>`,
  );
}

export function eventPage(ctx: PageContext, ref: string, journey: EventJourney | undefined, problem?: string): string {
  const body = journey
    ? html`<h1>Event ${journey.eventId}</h1>
${journey.change
  ? html`<table><tbody>
<tr><th>Table</th><td>${journey.change.schema}.${journey.change.table}</td></tr>
<tr><th>Operation</th><td>${journey.change.op}</td></tr>
<tr><th>Captured at (UTC)</th><td>${journey.change.createdAt}</td></tr>
</tbody></table>
<h2>New row</h2><pre>${journey.change.newRow ?? 'null'}</pre>
<h2>Old row</h2><pre>${journey.change.oldRow ?? 'null'}</pre>`
  : html`<p class="muted">The journal no longer holds this change (delivered everywhere, and listener.retention is 0): only its logged attempts remain.</p>`}
<h2>Per destination</h2>
<table><thead><tr><th>Destination</th><th>State</th><th class="num">Attempts</th><th class="num">Last status</th><th>Last error</th><th>At (UTC)</th></tr></thead>
<tbody>${journey.states.map(
  (s) => html`<tr><td>${s.destination === '' ? '(not routed yet)' : s.destination}</td><td>${s.state}</td><td class="num">${s.attempts}</td><td class="num">${s.lastStatus ?? '-'}</td><td>${s.lastError ?? ''}</td><td>${s.at ?? '-'}</td></tr>`,
)}</tbody></table>
${journey.states.length === 0 ? html`<p class="muted">In no queue and no dead letters: delivered (or never routed).</p>` : ''}
<h2>Attempts</h2>
<table><thead><tr><th>At (UTC)</th><th>Destination</th><th class="num">Attempt</th><th>Outcome</th><th class="num">Status</th><th class="num">Duration</th><th>Detail</th></tr></thead>
<tbody>${journey.attempts.map(
  (a) => html`<tr><td>${a.at}</td><td>${a.destination}</td><td class="num">${a.attempt}</td><td class="outcome-${a.outcome}">${a.outcome}</td><td class="num">${a.responseStatus ?? '-'}</td><td class="num">${a.durationMs.toFixed(1)} ms</td><td>${attemptDetails(a)}</td></tr>`,
)}</tbody></table>`
    : html`<h1>Event</h1>`;
  return layout(
    'Event',
    '/events',
    ctx,
    html`${problem ? html`<div class="error">${problem}</div>` : ''}
<form class="filters" method="get" action="/events">
<label>Event id<input name="id" value="${ref}" placeholder="evt_… or number"></label>
<button type="submit">Show</button>
</form>
${body}`,
  );
}

export function configPage(ctx: PageContext, redacted: unknown): string {
  return layout(
    'Config',
    '/config',
    ctx,
    html`<h1>Effective configuration</h1>
<p class="muted">Defaults filled in, environment substituted; every secret is replaced by [redacted].</p>
<pre id="config">${JSON.stringify(redacted, null, 2)}</pre>`,
  );
}

export function loginPage(problem?: string): string {
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Log in · app-db-listener</title><link rel="stylesheet" href="/assets/console.css"></head>
<body><main class="login card">
<h1>app-db-listener</h1>
${problem ? html`<div class="error">${problem}</div>` : ''}
<form method="post" action="/login">
<label for="token">Admin token (http.token)</label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus>
<button type="submit">Log in</button>
</form>
</main></body></html>
`.text;
}

export function messagePage(ctx: PageContext, title: string, message: string): string {
  return layout(title, '', ctx, html`<h1>${title}</h1><div class="error">${message}</div><p><a href="/">Back to the overview</a></p>`);
}
