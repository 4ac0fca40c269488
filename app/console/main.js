// The operator console: signs in (signin.js), then shows the operator API's views
// (api.js) and charts (chart.js). Text from the server is only ever set as textContent.

import { OpsApi } from './api.js';
import { barChart, legend } from './chart.js';
import { Session } from './signin.js';

const $ = (id) => document.getElementById(id);
// The FHIR base: this page is served at [base]/_app/console/.
const BASE = location.origin + location.pathname.replace(/\/_app\/console\/.*$/, '');
const session = new Session(BASE);
const api = new OpsApi(session);
const PAGE = 20;
let refreshTimer = null;
let historyOffset = 0;
let auditOffset = 0;
let auditQuery = {};

function say(text, error) {
  const s = $('status');
  s.textContent = text;
  s.classList.toggle('error', !!error);
}

function cell(text, cls) {
  const td = document.createElement('td');
  td.textContent = text === null || text === undefined ? '–' : String(text);
  if (cls) td.className = cls;
  return td;
}

function shortId(id) { return id && id.length > 12 ? id.slice(0, 8) + '…' : id; }
function num(n) { return n === null || n === undefined ? '–' : Number(n).toLocaleString('en'); }

function fill(table, rows, render) {
  const body = table.tBodies[0];
  body.replaceChildren(...rows.map(render));
}

// --- views ---------------------------------------------------------------------------------

async function loadJobs() {
  const data = await api.jobs({ limit: 100 });
  fill($('jobs-table'), data.jobs, (j) => {
    const tr = document.createElement('tr');
    tr.dataset.job = j.job_id;
    const jobCell = cell(shortId(j.job_id), 'mono');
    jobCell.title = j.job_id;
    const prog = document.createElement('td');
    const bar = document.createElement('progress');
    bar.max = 100;
    bar.value = j.progress_percent || 0;
    bar.id = 'p-' + j.job_id;
    bar.setAttribute('aria-label', `progress of export ${j.job_id}`);
    const label = document.createElement('span');
    label.className = 'pct';
    label.textContent = ` ${j.progress_percent || 0} % (${j.units_done}/${j.units_total} units)`;
    prog.append(bar, label);
    tr.append(cell(j.client_name || j.client_id), jobCell, cell(j.state), cell(j.types || 'all'),
              cell(j.started || j.created), prog, cell(num(j.resources), 'num'));
    return tr;
  });
  $('jobs-empty').hidden = data.jobs.length > 0;
  $('jobs-updated').textContent = 'updated ' + new Date().toLocaleTimeString('en-GB');
}

async function loadHistory() {
  const data = await api.history({ limit: PAGE, offset: historyOffset,
                                   outcome: $('history-outcome').value });
  fill($('history-table'), data.history, (h) => {
    const tr = document.createElement('tr');
    tr.dataset.job = h.job_id;
    const jobCell = cell(shortId(h.job_id), 'mono');
    jobCell.title = h.job_id;
    tr.append(cell(shortId(h.client_id), 'mono'), jobCell, cell(h.outcome, 'outcome-' + h.outcome),
              cell(h.types || 'all'), cell(h.finished), cell(h.duration_s, 'num'),
              cell(num(h.resources), 'num'), cell(h.files, 'num'));
    return tr;
  });
  $('history-newer').disabled = historyOffset === 0;
  $('history-older').disabled = data.next_offset === null;
  $('history-page').textContent = data.history.length
    ? `${historyOffset + 1}–${historyOffset + data.history.length}` : 'none';
}

async function loadClients() {
  const data = await api.clients();
  fill($('clients-table'), data.clients, (c) => {
    const tr = document.createElement('tr');
    tr.dataset.client = c.client_id;
    const action = document.createElement('td');
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'toggle';
    if (c.operator) {
      b.textContent = 'Operator';
      b.disabled = true;
      b.title = 'operator clients are managed with fhir-bulk client';
    } else {
      b.textContent = c.enabled ? 'Disable' : 'Enable';
      b.setAttribute('aria-label', `${c.enabled ? 'Disable' : 'Enable'} client ${c.name}`);
      b.addEventListener('click', () => toggleClient(c, b));
    }
    action.append(b);
    tr.append(cell(c.name), cell(c.client_id, 'mono'),
              cell(c.enabled ? 'enabled' : 'disabled', c.enabled ? 'ok' : 'off'),
              cell(c.scopes + (c.groups ? ' (Groups: ' + c.groups.join(', ') + ')' : '')),
              cell(c.created), action);
    return tr;
  });
}

async function toggleClient(c, button) {
  button.disabled = true;
  try {
    const r = await api.setEnabled(c.client_id, !c.enabled);
    say(`Client ${c.name} ${r.enabled ? 'enabled' : 'disabled'}.`);
    await loadClients();
    const again = document.querySelector(`#clients-table tr[data-client="${CSS.escape(c.client_id)}"] button`);
    if (again) again.focus();
  } catch (e) {
    say(`Could not change client ${c.name}: ${e.message}`, true);
    button.disabled = false;
  }
}

async function loadAudit() {
  const data = await api.audit({ ...auditQuery, limit: PAGE, offset: auditOffset });
  fill($('audit-table'), data.events, (e) => {
    const tr = document.createElement('tr');
    tr.append(cell(e.at), cell(shortId(e.client_id), 'mono'), cell(e.action),
              cell(e.target, 'mono'), cell(e.result, 'num'), cell(e.detail), cell(e.remote_addr));
    return tr;
  });
  $('audit-newer').disabled = auditOffset === 0;
  $('audit-older').disabled = data.next_offset === null;
  $('audit-page').textContent = data.events.length
    ? `${auditOffset + 1}–${auditOffset + data.events.length}` : 'no events';
}

async function loadCharts() {
  const days = (await api.stats($('chart-days').value)).days;
  const labels = days.map((d) => d.day);
  const sum = (k) => days.reduce((s, d) => s + (d[k] || 0), 0);
  const exportSeries = [
    { name: 'completed', cls: 's-completed', values: days.map((d) => d.completed) },
    { name: 'failed', cls: 's-failed', values: days.map((d) => d.failed) },
    { name: 'cancelled', cls: 's-cancelled', values: days.map((d) => d.cancelled) },
  ];
  $('chart-exports').replaceChildren(
    barChart({ title: 'Exports finished per day', labels, series: exportSeries, integer: true,
               desc: `${sum('completed')} completed, ${sum('failed')} failed, ` +
                     `${sum('cancelled')} cancelled and ${sum('started')} started in ${days.length} days` }),
    legend(exportSeries));
  const rps = [{ name: 'resources/s', cls: 's-rps', values: days.map((d) => d.resources_per_second) }];
  const best = Math.max(0, ...days.map((d) => d.resources_per_second || 0));
  $('chart-rps').replaceChildren(barChart({
    title: 'Resources per second of completed exports, per day', labels, series: rps, unit: '/s',
    desc: `best day ${Math.round(best)} resources per second; ${sum('resources')} resources exported` }));
  const dl = [{ name: 'downloads', cls: 's-downloads', values: days.map((d) => d.downloads) }];
  $('chart-downloads').replaceChildren(barChart({
    title: 'File downloads per day', labels, series: dl, integer: true,
    desc: `${sum('downloads')} file downloads in ${days.length} days` }));
}

// --- wiring --------------------------------------------------------------------------------

async function guarded(what, fn) {
  try {
    await fn();
  } catch (e) {
    say(`${what}: ${e.message}`, true);
    if (e.status === 401 || e.status === 403) stopRefresh();
  }
}

function stopRefresh() {
  if (refreshTimer) clearInterval(refreshTimer);
  refreshTimer = null;
}

function startRefresh() {
  stopRefresh();
  if ($('auto-refresh').checked) {
    refreshTimer = setInterval(() => guarded('Exports in progress', loadJobs), 5000);
  }
}

async function showConsole() {
  $('signin-section').hidden = true;
  $('console').hidden = false;
  $('sign-out').hidden = false;
  $('who').textContent = `Signed in as ${session.clientId} (${session.scope})`;
  say('Signed in.');
  await guarded('Exports in progress', loadJobs);
  await guarded('Recent exports', loadHistory);
  await guarded('Clients', loadClients);
  await guarded('Audit trail', loadAudit);
  await guarded('Charts', loadCharts);
  startRefresh();
  $('jobs-h').focus();
}

$('key-file').addEventListener('change', async () => {
  const f = $('key-file').files[0];
  if (f && f.size < 65536) $('key-text').value = await f.text();
});

$('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const clientId = $('client-id').value.trim();
  if (!clientId || !$('key-text').value.trim()) {
    say('Give the client id and the private key.', true);
    return;
  }
  $('sign-in').disabled = true;
  say('Signing in…');
  try {
    await session.signInWithKey(clientId, $('key-text').value, $('kid').value.trim());
    $('key-text').value = '';
    await showConsole();
  } catch (e) {
    say('Sign-in failed: ' + e.message, true);
  } finally {
    $('sign-in').disabled = false;
  }
});

$('token-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  try {
    session.signInWithToken($('token-text').value);
    $('token-text').value = '';
    await showConsole();
  } catch (e) {
    say('Sign-in failed: ' + e.message, true);
  }
});

$('sign-out').addEventListener('click', () => {
  stopRefresh();
  session.clear();
  $('console').hidden = true;
  $('signin-section').hidden = false;
  $('sign-out').hidden = true;
  $('who').textContent = 'Not signed in';
  say('Signed out.');
  $('client-id').focus();
});

$('auto-refresh').addEventListener('change', startRefresh);
$('refresh').addEventListener('click', () => guarded('Exports in progress', async () => {
  await loadJobs();
  await loadHistory();
  await loadCharts();
}));
$('history-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  historyOffset = 0;
  guarded('Recent exports', loadHistory);
});
$('history-newer').addEventListener('click', () => {
  historyOffset = Math.max(0, historyOffset - PAGE);
  guarded('Recent exports', loadHistory);
});
$('history-older').addEventListener('click', () => {
  historyOffset += PAGE;
  guarded('Recent exports', loadHistory);
});
$('audit-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  auditQuery = {
    client: $('audit-client').value.trim(), action: $('audit-action').value,
    since: $('audit-since').value, until: $('audit-until').value,
    result: $('audit-result').value.trim(), target: $('audit-target').value.trim(),
  };
  auditOffset = 0;
  guarded('Audit trail', loadAudit);
});
$('audit-newer').addEventListener('click', () => {
  auditOffset = Math.max(0, auditOffset - PAGE);
  guarded('Audit trail', loadAudit);
});
$('audit-older').addEventListener('click', () => {
  auditOffset += PAGE;
  guarded('Audit trail', loadAudit);
});
$('charts-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  guarded('Charts', loadCharts);
});
$('jobs-h').tabIndex = -1;
