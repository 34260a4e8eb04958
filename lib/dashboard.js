'use strict'
// The live dashboard: one self-contained HTML page (no external asset, CDN or font) that polls
// the JSON routes every 2 s. Data is only ever written with textContent, never parsed as HTML,
// and the Content-Security-Policy allows exactly this page's own style and script (by hash).

const crypto = require('node:crypto')

const STYLE = `
:root { color-scheme: light dark; --bg: #f6f7f9; --fg: #1d2330; --muted: #5d6678; --card: #fff; --line: #dde1e8;
  --closed: #1f8a4c; --open: #c62828; --half: #b26a00; --forced: #7b1fa2; --disabled: #546e7a; --unknown: #6b7280; }
@media (prefers-color-scheme: dark) { :root { --bg: #12151b; --fg: #e6e9ef; --muted: #9aa3b5; --card: #1b2029; --line: #2c3340; } }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--fg); }
header { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: baseline; padding: 1rem 1.25rem .5rem; }
h1 { font-size: 1.25rem; margin: 0; }
h2 { font-size: 1rem; margin: 1.25rem 0 .5rem; }
main { padding: 0 1.25rem 2rem; max-width: 1400px; }
#overall, #updated { color: var(--muted); }
#error { color: var(--open); font-weight: 600; }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
th, td { padding: .45rem .6rem; text-align: right; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-weight: 600; color: var(--muted); background: var(--bg); }
th:first-child, td:first-child, td.status { text-align: left; }
td.name { white-space: pre-wrap; word-break: break-all; text-align: left; font-family: ui-monospace, SFMono-Regular, Menlo, monospace; }
tr:last-child td { border-bottom: 0; }
.badge { display: inline-block; min-width: 5.5em; padding: .1rem .5rem; border-radius: 999px; color: #fff; font-weight: 600; font-size: .8rem; text-align: center; }
.state-closed, .status-healthy { background: var(--closed); }
.state-open, .status-unhealthy { background: var(--open); }
.state-half_open, .status-degraded { background: var(--half); }
.state-forced_open { background: var(--forced); }
.state-disabled { background: var(--disabled); }
.status-unknown { background: var(--unknown); }
.empty { color: var(--muted); padding: .75rem; }
@media (max-width: 720px) {
  header, main { padding-left: .75rem; padding-right: .75rem; }
  table, thead, tbody, tr, td { display: block; border: 0; }
  thead { display: none; }
  table { background: transparent; }
  tr { background: var(--card); border: 1px solid var(--line); border-radius: 8px; margin-bottom: .6rem; padding: .35rem .25rem; }
  td { display: flex; justify-content: space-between; gap: 1rem; text-align: right; border: 0; padding: .2rem .5rem; white-space: normal; }
  td::before { content: attr(data-label); color: var(--muted); text-align: left; flex: none; }
  td.name { font-weight: 600; }
}
`

// No template literals and no "</" inside: this text is served inside a <script> element.
const SCRIPT = `
'use strict';
var base = location.pathname.replace(/\\/dashboard\\/?$/, '');
var ORDER = { open: 0, forced_open: 1, half_open: 2, closed: 3, disabled: 4 };
var lastMetrics = null, lastFetchAt = 0;

function el(tag, text, cls) {
  var e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function cell(label, text, cls) { var td = el('td', text, cls); td.setAttribute('data-label', label); return td; }
function badge(kind, value) { var b = el('span', value, 'badge ' + kind + '-' + String(value).replace(/[^a-z_]/g, '')); return b; }
function ms(x) { return typeof x === 'number' ? (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : Math.round(x)) + ' ms' : '\\u2014'; }
function pct(x) { return typeof x === 'number' ? x.toFixed(1) + ' %' : '\\u2014'; }
function dur(x) {
  if (typeof x !== 'number') return '\\u2014';
  var s = Math.ceil(x / 1000);
  return s < 60 ? s + ' s' : Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
}
async function getJson(path) {
  var r = await fetch(base + path, { cache: 'no-store', headers: { accept: 'application/json' } });
  if (!r.ok) throw new Error(path + ': HTTP ' + r.status);
  return r.json();
}
function renderBreakers() {
  var body = document.getElementById('breakers');
  var list = (lastMetrics && lastMetrics.circuit_breakers) || [];
  list = list.slice().sort(function (a, b) {
    var d = (ORDER[a.state] === undefined ? 9 : ORDER[a.state]) - (ORDER[b.state] === undefined ? 9 : ORDER[b.state]);
    return d !== 0 ? d : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
  var elapsed = Date.now() - lastFetchAt;
  var rows = list.map(function (b) {
    var tr = el('tr');
    tr.setAttribute('data-state', b.state);
    tr.appendChild(cell('Breaker', b.name, 'name'));
    var st = cell('State', null, 'status'); st.appendChild(badge('state', b.state)); tr.appendChild(st);
    tr.appendChild(cell('Requests', b.total_requests));
    tr.appendChild(cell('Failures', b.failed_requests));
    tr.appendChild(cell('Rejected', b.rejected_requests));
    tr.appendChild(cell('Success', pct(b.success_rate)));
    tr.appendChild(cell('p50', ms(b.latency_p50_ms)));
    tr.appendChild(cell('p95', ms(b.latency_p95_ms)));
    tr.appendChild(cell('p99', ms(b.latency_p99_ms)));
    var next = typeof b.next_attempt_in_ms === 'number' ? Math.max(0, b.next_attempt_in_ms - elapsed) : null;
    tr.appendChild(cell('Next attempt', b.state === 'forced_open' ? 'manual reset' : dur(next)));
    return tr;
  });
  if (rows.length === 0) { var tr = el('tr'); var td = cell('', 'No circuit breakers yet.', 'empty'); td.colSpan = 10; tr.appendChild(td); rows = [tr]; }
  body.replaceChildren.apply(body, rows);
}
function renderServices(health) {
  var body = document.getElementById('services');
  var names = Object.keys(health.services || {}).sort();
  var rows = names.map(function (name) {
    var s = health.services[name];
    var tr = el('tr');
    tr.appendChild(cell('Service', name, 'name'));
    var st = cell('Status', null, 'status'); st.appendChild(badge('status', s.status)); tr.appendChild(st);
    tr.appendChild(cell('Error rate', typeof s.error_rate === 'number' ? (s.error_rate * 100).toFixed(1) + ' %' : '\\u2014'));
    tr.appendChild(cell('Uptime', typeof s.uptime === 'number' ? String(s.uptime) : '\\u2014'));
    tr.appendChild(cell('p95', ms(s.latency_p95_ms)));
    tr.appendChild(cell('Last check', typeof s.last_check === 'number' ? new Date(s.last_check * 1000).toLocaleTimeString() : '\\u2014'));
    tr.appendChild(cell('Last error', s.last_error));
    return tr;
  });
  if (rows.length === 0) { var tr = el('tr'); var td = cell('', 'No monitored services.', 'empty'); td.colSpan = 7; tr.appendChild(td); rows = [tr]; }
  body.replaceChildren.apply(body, rows);
}
async function poll() {
  try {
    var results = await Promise.all([getJson('/metrics'), getJson('/health'), getJson('/status')]);
    lastMetrics = results[0]; lastFetchAt = Date.now();
    renderBreakers();
    renderServices(results[1]);
    var o = document.getElementById('overall');
    o.replaceChildren(el('span', 'Overall: '), badge('status', results[2].status));
    document.getElementById('updated').textContent = 'Updated ' + new Date().toLocaleTimeString();
    document.getElementById('error').textContent = '';
  } catch (e) {
    document.getElementById('error').textContent = 'Cannot reach the monitoring routes (' + e.message + ')';
  }
  setTimeout(poll, 2000);
}
setInterval(function () { if (lastMetrics) renderBreakers(); }, 1000);
poll();
`

const hash = (text) => `'sha256-${crypto.createHash('sha256').update(text, 'utf8').digest('base64')}'`

const dashboardHtml = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Circuit breakers</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>Circuit breakers</h1><span id="overall"></span><span id="updated">Loading\u2026</span><span id="error" role="alert"></span></header>
<main>
<table aria-label="Circuit breakers">
<thead><tr><th>Breaker</th><th>State</th><th>Requests</th><th>Failures</th><th>Rejected</th><th>Success</th><th>p50</th><th>p95</th><th>p99</th><th>Next attempt</th></tr></thead>
<tbody id="breakers"></tbody>
</table>
<h2>Monitored services</h2>
<table aria-label="Monitored services">
<thead><tr><th>Service</th><th>Status</th><th>Error rate</th><th>Uptime</th><th>p95</th><th>Last check</th><th>Last error</th></tr></thead>
<tbody id="services"></tbody>
</table>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`

const dashboardCsp = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(STYLE)}`,
  "connect-src 'self'",
  "img-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ')

module.exports = { dashboardHtml, dashboardCsp }
