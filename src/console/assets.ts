/**
 * The console's static files, as TypeScript strings so `tsc` packages them and the
 * console works offline (no CDN, no bundler). Served from /assets/ with long-lived
 * names; the Content-Security-Policy allows scripts and styles from there only.
 */

export const CONSOLE_CSS = `
:root { --fg: #1d232b; --muted: #5b6673; --line: #d9dee4; --bg: #f6f7f9; --accent: #1f6feb; --bad: #c62828; --ok: #2e7d32; --warn: #b26a00; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header { background: #14191f; color: #fff; padding: 0 20px; display: flex; align-items: center; gap: 24px; height: 48px; }
header .brand { font-weight: 600; }
header nav a { color: #c9d1d9; text-decoration: none; margin-right: 16px; }
header nav a.active, header nav a:hover { color: #fff; }
header form { margin-left: auto; }
main { padding: 20px; max-width: 1400px; }
h1 { font-size: 20px; margin: 0 0 12px; }
h2 { font-size: 16px; margin: 20px 0 8px; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { background: #eef1f4; font-weight: 600; white-space: nowrap; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #fff; border: 1px solid var(--line); padding: 10px; overflow: auto; max-height: 420px; white-space: pre-wrap; word-break: break-all; margin: 4px 0; }
.muted { color: var(--muted); }
.up { color: var(--ok); font-weight: 600; }
.down { color: var(--bad); font-weight: 600; }
.outcome-delivered { color: var(--ok); }
.outcome-retry { color: var(--warn); }
.outcome-dead { color: var(--bad); }
.card { background: #fff; border: 1px solid var(--line); padding: 12px 16px; margin-bottom: 16px; }
.chart svg { width: 100%; height: 160px; display: block; }
form.filters { display: flex; flex-wrap: wrap; gap: 8px; align-items: end; margin-bottom: 12px; }
form.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
input, select, button { font: inherit; padding: 4px 8px; border: 1px solid var(--line); border-radius: 4px; background: #fff; }
button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; }
button.danger { background: var(--bad); border-color: var(--bad); }
button.plain { background: #fff; color: var(--fg); border-color: var(--line); }
.notice { background: #e8f1ff; border: 1px solid #b6d0ff; padding: 8px 12px; margin-bottom: 12px; }
.error { background: #fdecea; border: 1px solid #f5c2c0; padding: 8px 12px; margin-bottom: 12px; }
details summary { cursor: pointer; }
td details { max-width: 320px; }
td details pre { max-height: 240px; }
td { overflow-wrap: break-word; }
.actions { display: flex; gap: 8px; margin: 8px 0; flex-wrap: wrap; }
.login { max-width: 360px; margin: 80px auto; }
.login input { width: 100%; margin: 8px 0; }
`;

/**
 * The live parts, in plain JavaScript: the overview's counts and the delivered/s
 * chart are polled from /api/overview and /api/rate and redrawn (text only, never
 * markup from data); "select all" on the dead letters. Every page works without it.
 */
export const CONSOLE_JS = `
(function () {
  'use strict';
  function get(url) {
    return fetch(url, { credentials: 'same-origin', headers: { accept: 'application/json' } }).then(function (r) {
      if (!r.ok) throw new Error(url + ': ' + r.status);
      return r.json();
    });
  }
  function cell(text, cls) {
    var td = document.createElement('td');
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }
  function fmtAge(s) {
    if (s === null || s === undefined) return '-';
    if (s < 60) return s.toFixed(1) + ' s';
    if (s < 3600) return (s / 60).toFixed(1) + ' min';
    return (s / 3600).toFixed(1) + ' h';
  }
  function drawRate(svg, points) {
    var w = 900, h = 160, pad = 4;
    var max = 1;
    for (var i = 0; i < points.length; i++) if (points[i] > max) max = points[i];
    var d = '';
    for (var j = 0; j < points.length; j++) {
      var x = pad + (j * (w - 2 * pad)) / Math.max(1, points.length - 1);
      var y = h - pad - (points[j] / max) * (h - 2 * pad);
      d += (j === 0 ? 'M' : 'L') + x.toFixed(1) + ' ' + y.toFixed(1);
    }
    var line = svg.querySelector('[data-role=line]');
    if (line) line.setAttribute('d', d);
    var label = svg.querySelector('[data-role=max]');
    if (label) label.textContent = max.toFixed(1) + '/s';
  }
  function refreshOverview() {
    var body = document.getElementById('overview-rows');
    if (!body) return;
    get('/api/overview').then(function (o) {
      var rows = document.createDocumentFragment();
      o.rows.forEach(function (r) {
        var tr = document.createElement('tr');
        tr.setAttribute('data-row', r.destination + '|' + r.schema + '.' + r.table);
        tr.appendChild(cell(r.destination === '' ? '(not routed yet)' : r.destination));
        tr.appendChild(cell(r.schema + '.' + r.table));
        tr.appendChild(cell(String(r.pending), 'num pending'));
        tr.appendChild(cell(String(r.inFlight), 'num in-flight'));
        tr.appendChild(cell(String(r.retrying), 'num retrying'));
        tr.appendChild(cell(String(r.deadLetters), 'num dead-letters'));
        tr.appendChild(cell(fmtAge(r.oldestPendingSeconds), 'num'));
        tr.appendChild(cell(r.endpoint === null ? '-' : r.endpoint, r.endpoint === 'up' ? 'up' : r.endpoint === 'down' ? 'down' : ''));
        tr.appendChild(cell(r.lastDeliveryAt || '-'));
        rows.appendChild(tr);
      });
      body.replaceChildren(rows);
      var stamp = document.getElementById('overview-updated');
      if (stamp) stamp.textContent = 'updated ' + new Date().toLocaleTimeString();
    }).catch(function () {});
  }
  function refreshRate() {
    var svg = document.getElementById('rate-chart');
    if (!svg) return;
    get('/api/rate').then(function (r) {
      drawRate(svg, r.total);
      var now = document.getElementById('rate-now');
      var recent = r.total.slice(-6);
      var avg = recent.reduce(function (a, b) { return a + b; }, 0) / Math.max(1, recent.length);
      if (now) now.textContent = avg.toFixed(1);
    }).catch(function () {});
  }
  document.addEventListener('DOMContentLoaded', function () {
    if (document.getElementById('overview-rows')) {
      refreshOverview();
      refreshRate();
      setInterval(refreshOverview, 3000);
      setInterval(refreshRate, 5000);
    }
    var all = document.getElementById('select-all');
    if (all) {
      all.addEventListener('change', function () {
        document.querySelectorAll('input[name=selected]').forEach(function (box) { box.checked = all.checked; });
      });
    }
  });
})();
`;
