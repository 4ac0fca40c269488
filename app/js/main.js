// The export app's page: connect, authorize, compose a kick-off, follow it, show the files.

import { Server, describeError } from './fhir.js';
import { generateKey, importPrivateJwk, jwks, storeKey, loadKey, deleteKey } from './keys.js';
import { previewTable } from './preview.js';

const $ = (id) => document.getElementById(id);
const LS_BASE = 'fhirbulk.base';
const LS_CLIENT = 'fhirbulk.clientId';
const LS_JOB = 'fhirbulk.job';

let server = null;
let key = null;
let followGeneration = 0;   // a new follow (or a cancel) stops the previous loop
let typeFilters = [];
let lastManifest = null;
let followingUrl = null;    // the status URL the loop follows

// --- small helpers ---------------------------------------------------------------------------

function show(id, on = true) { $(id).hidden = !on; }

function say(id, text, cls) {
  const el = $(id);
  el.textContent = text;
  el.className = cls || '';
}

function fail(err) {
  const m = $('message');
  m.textContent = err instanceof Error ? err.message : String(err);
  m.hidden = false;
}
function clearMessage() { $('message').hidden = true; }

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('data-')) e.setAttribute(k, v);
    else if (k === 'onclick') e.addEventListener('click', v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ''));
  return e;
}

function bytes(n) {
  if (n === null || n === undefined) return '';
  if (n < 1024) return `${n} B`;
  const u = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${u[i]}`;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function isoOf(local) { return local ? new Date(local).toISOString() : ''; }

// --- 1. connect --------------------------------------------------------------------------------

async function connect(base) {
  clearMessage();
  say('server-banner', `Connecting to ${base} …`);
  const s = new Server(base);
  await s.discover();
  server = s;
  localStorage.setItem(LS_BASE, s.base);
  const cap = s.capability;
  const info = $('server-info');
  info.replaceChildren(
    el('p', {}, el('strong', {}, cap.software?.name || 'FHIR server'), ` ${cap.software?.version || ''} · FHIR ${cap.fhirVersion || '?'}`),
    el('p', {}, 'Token endpoint: ', el('code', {}, s.tokenUrl || '(none)')),
    el('p', {}, `Exportable types: ${s.resources().length}; Group search: ${s.offersGroupSearch() ? 'yes' : 'no'}; `,
       `signing algorithms: ${(s.smart?.token_endpoint_auth_signing_alg_values_supported || []).join(', ') || '?'}`),
  );
  show('server-info');
  say('server-banner', `Connected to ${s.base}`, 'ok');
  fillTypes();
  $('level-group').disabled = !s.offersGroupSearch();
  show('auth-section');
  if (key) server.key = key;
  const savedClient = localStorage.getItem(LS_CLIENT);
  if (savedClient && !$('client-id').value) $('client-id').value = savedClient;
}

// --- 2. keys and token -----------------------------------------------------------------------

function showKey(k, origin) {
  key = k;
  if (server) server.key = k;
  $('jwks').value = JSON.stringify(jwks(k), null, 2);
  show('jwks-box');
  say('key-status', `${origin} ${k.alg} key, kid ${k.kid} (private part not extractable)`, 'ok');
}

async function keepIfAsked() {
  if (key && $('key-keep').checked) {
    await storeKey(key);
    say('key-status', `${$('key-status').textContent}; kept in this browser`, 'ok');
  }
}

async function authorize() {
  clearMessage();
  if (!server) throw new Error('connect first');
  server.clientId = $('client-id').value.trim();
  server.scope = $('scope').value.trim() || 'system/*.read';
  server.key = key;
  say('token-status', 'Requesting an access token …');
  try {
    const t = await server.authorize();
    say('token-status', `Access token granted (scope ${t.scope || server.scope}, ${t.expires_in || '?'} s); renewed as needed`, 'ok');
  } catch (e) {
    say('token-status', e.message, 'bad');
    throw e;
  }
  localStorage.setItem(LS_CLIENT, server.clientId);
  show('kickoff-section');
  updatePreview();
  // An export kicked off before a page reload: follow it again.
  const job = JSON.parse(localStorage.getItem(LS_JOB) || 'null');
  if (job && job.base === server.base && followingUrl !== job.statusUrl) follow(job.statusUrl);
}

// --- 3. kick-off -------------------------------------------------------------------------------

function fillTypes() {
  const sel = $('types');
  sel.replaceChildren(...server.resources().map((r) => r.type).sort()
    .map((t) => el('option', { value: t }, t)));
  fillFilterTypes();
}

function selectedTypes() { return [...$('types').selectedOptions].map((o) => o.value); }

function fillFilterTypes() {
  const types = selectedTypes().length ? selectedTypes() : server.resources().map((r) => r.type).sort();
  const keep = $('tf-type').value;
  $('tf-type').replaceChildren(...types.map((t) => el('option', { value: t }, t)));
  if (types.includes(keep)) $('tf-type').value = keep;
  fillFilterParams();
}

function fillFilterParams() {
  const r = server.resources().find((x) => x.type === $('tf-type').value);
  const params = r ? r.params.filter((p) => !(r.type === 'Group' && p.name === 'name')) : [];
  $('tf-param').replaceChildren(...params.map((p) => el('option', { value: p.name, 'data-kind': p.type }, `${p.name} (${p.type})`)));
  updatePrefix();
}

function updatePrefix() {
  const opt = $('tf-param').selectedOptions[0];
  const isDate = opt && opt.getAttribute('data-kind') === 'date';
  $('tf-prefix').disabled = !isDate;
  if (!isDate) $('tf-prefix').value = '';
  $('tf-value').placeholder = isDate ? '2020-01-01' : opt && opt.getAttribute('data-kind') === 'reference' ? 'Patient/123' : 'system|code';
}

function addFilter() {
  const type = $('tf-type').value;
  const param = $('tf-param').value;
  const value = $('tf-value').value.trim();
  if (!type || !param || !value) { fail('a filter needs a type, a parameter and a value'); return; }
  clearMessage();
  typeFilters.push(`${type}?${param}=${encodeURIComponent($('tf-prefix').value + value)}`);
  $('tf-value').value = '';
  renderFilters();
}

function renderFilters() {
  $('tf-list').replaceChildren(...typeFilters.map((f, i) => el('li', {}, el('code', {}, f),
    el('button', { type: 'button', class: 'secondary', 'aria-label': `Remove filter ${f}`,
                   onclick: () => { typeFilters.splice(i, 1); renderFilters(); } }, 'Remove'))));
  updatePreview();
}

function kickoffRequest() {
  const level = document.querySelector('input[name=level]:checked').value;
  return {
    level, group: $('group-select').value, types: selectedTypes(),
    since: isoOf($('since').value), until: isoOf($('until').value), typeFilters: [...typeFilters],
    elements: $('elements').value.replace(/\s+/g, ''), includeAssociatedData: $('assoc').value,
    organizeOutputBy: $('organize').value, allowPartialManifests: $('partial').checked,
  };
}

function updatePreview() {
  if (!server) return;
  show('group-box', document.querySelector('input[name=level]:checked').value === 'group');
  $('kickoff-preview').textContent = 'GET ' + server.kickoffUrl(kickoffRequest());
}

async function searchGroups() {
  clearMessage();
  say('group-status', 'Searching …');
  const groups = await server.searchGroups($('group-search-name').value.trim());
  $('group-select').replaceChildren(...groups.map((g) => el('option', { value: g.id },
    `${g.name || g.id} (${g.quantity ?? (g.member || []).length} members)`)));
  say('group-status', `${groups.length} Group${groups.length === 1 ? '' : 's'} found`);
  updatePreview();
}

async function kickoff() {
  clearMessage();
  const req = kickoffRequest();
  if (req.level === 'group' && !req.group) throw new Error('choose a Group (search first)');
  const statusUrl = await server.kickoff(req);
  localStorage.setItem(LS_JOB, JSON.stringify({ statusUrl, base: server.base,
    kickoff: server.kickoffUrl(req), started: new Date().toISOString() }));
  follow(statusUrl);
}

// --- 4. follow ---------------------------------------------------------------------------------

function progressPercent(text) {
  const m = /(\d+(?:\.\d+)?)\s*%/.exec(text || '');
  return m ? Math.min(100, Number(m[1])) : null;
}

async function follow(statusUrl) {
  const gen = ++followGeneration;
  followingUrl = statusUrl;
  lastManifest = null;
  show('job-section');
  show('manifest-section', false);
  show('preview-section', false);
  $('cancel').disabled = false;
  $('job-url').textContent = `Status URL: ${statusUrl}`;
  const bar = $('job-progress');
  bar.removeAttribute('value');
  say('job-state', 'Export accepted; waiting for the server …');
  let delay = 1;
  // The poll time the server asked for survives a reload (a poll sooner would get 429).
  const saved = JSON.parse(localStorage.getItem(LS_JOB) || 'null');
  if (saved && saved.statusUrl === statusUrl && saved.nextPollAt > Date.now()) {
    await sleep(Math.min(saved.nextPollAt - Date.now(), 300000));
  }
  while (gen === followGeneration) {
    let r;
    try {
      r = await server.poll(statusUrl);
    } catch (e) {
      say('job-state', `Poll failed (${e.message}); retrying`, 'bad');
      await sleep(5000);
      continue;
    }
    if (gen !== followGeneration) return;
    if (r.state === 'done') {
      bar.value = 100;
      say('job-state', `Complete: ${(r.manifest.output || []).length} files`, 'ok');
      $('cancel').disabled = true;
      showManifest(r.manifest, true);
      return;
    }
    if (r.state === 'error') {
      bar.value = 0;
      say('job-state', `The export failed or is gone: ${r.error}`, 'bad');
      $('cancel').disabled = true;
      return;
    }
    const pct = progressPercent(r.progress);
    if (pct === null) bar.removeAttribute('value'); else bar.value = pct;
    if (r.manifest) showManifest(r.manifest, false);
    // Retry-After when the server sends one; otherwise 1, 2, 4 … up to 10 s.
    const wait = r.retryAfter !== null && r.retryAfter !== undefined ? Math.max(0.5, Math.min(r.retryAfter, 300)) : delay;
    delay = Math.min(delay * 2, 10);
    say('job-state', `In progress${r.progress ? ': ' + r.progress : ''}; next check in ${Math.round(wait)} s`
        + (r.manifest ? ` · ${(r.manifest.output || []).length} files ready` : ''));
    rememberNextPoll(statusUrl, Date.now() + wait * 1000);
    await sleep(wait * 1000);
  }
}

function rememberNextPoll(statusUrl, at) {
  const job = JSON.parse(localStorage.getItem(LS_JOB) || 'null');
  if (job && job.statusUrl === statusUrl) {
    job.nextPollAt = at;
    localStorage.setItem(LS_JOB, JSON.stringify(job));
  }
}

async function cancel() {
  const job = JSON.parse(localStorage.getItem(LS_JOB) || 'null');
  if (!job) return;
  clearMessage();
  followGeneration++;
  $('cancel').disabled = true;
  try {
    await server.cancel(job.statusUrl);
    say('job-state', 'Cancelled: the server deleted the export', 'ok');
    $('job-progress').value = 0;
    localStorage.removeItem(LS_JOB);
    followingUrl = null;
    show('manifest-section', false);
  } catch (e) {
    $('cancel').disabled = false;
    say('job-state', `Cancel refused: ${e.message}`, 'bad');
  }
}

// --- 5. manifest and files ---------------------------------------------------------------------

function fileName(url) {
  try { return decodeURIComponent(new URL(url).pathname.split('/').pop()); } catch { return url; }
}

function showManifest(m, complete) {
  lastManifest = m;
  show('manifest-section');
  const out = m.output || [];
  const byType = new Map();
  for (const f of out) {
    const t = byType.get(f.type) || { files: 0, count: 0, size: 0, sized: 0 };
    t.files++;
    t.count += f.count || 0;
    byType.set(f.type, t);
  }
  const total = out.reduce((a, f) => a + (f.count || 0), 0);
  say('manifest-summary', `${complete ? 'Manifest' : 'Partial manifest'}: ${out.length} files, ${total} resources`
      + `${m.transactionTime ? ', as of ' + m.transactionTime : ''}`
      + `${m.requiresAccessToken === false ? ' (signed file URLs)' : ' (files need the access token)'}`);
  const types = [...byType.keys()].sort();
  $('counts').tBodies[0].replaceChildren(...types.map((t) => el('tr', { 'data-type': t },
    el('th', { scope: 'row' }, t), el('td', { class: 'num' }, String(byType.get(t).files)),
    el('td', { class: 'num', 'data-count': String(byType.get(t).count) }, String(byType.get(t).count)),
    el('td', { class: 'num size' }, ''))));
  $('files').tBodies[0].replaceChildren(...out.map((f, i) => el('tr', { 'data-type': f.type, 'data-index': String(i) },
    el('td', {}, f.type), el('td', {}, el('code', {}, fileName(f.url))),
    el('td', { class: 'num' }, f.count === undefined ? '' : String(f.count)),
    el('td', { class: 'num size' }, ''),
    el('td', {}, el('button', { type: 'button', class: 'secondary preview', onclick: () => preview(f).catch(fail),
                                'aria-label': `Preview ${fileName(f.url)}` }, 'Preview'),
       ' ', el('button', { type: 'button', class: 'secondary download', onclick: () => download(f).catch(fail),
                           'aria-label': `Download ${fileName(f.url)}` }, 'Download')))));
  const errs = [...(m.error || []).map((e) => ({ ...e, kind: 'error' })), ...(m.deleted || []).map((e) => ({ ...e, kind: 'deleted' }))];
  show('errors-box', errs.length > 0);
  $('errors').replaceChildren(...errs.map((e) => el('li', {}, `${e.kind} · ${e.type}: `,
    el('button', { type: 'button', class: 'secondary', onclick: () => preview(e).catch(fail) }, `show ${fileName(e.url)}`))));
  if (complete) fillSizes(m).catch(() => {});
}

async function fillSizes(m) {
  const out = (m.output || []).slice(0, 500);
  const rows = $('files').tBodies[0].rows;
  const perType = new Map();
  for (let i = 0; i < out.length; i++) {
    if (lastManifest !== m) return;
    const n = await server.fileSize(out[i].url, m);
    if (rows[i]) rows[i].querySelector('.size').textContent = bytes(n);
    perType.set(out[i].type, (perType.get(out[i].type) || 0) + (n || 0));
  }
  for (const tr of $('counts').tBodies[0].rows) {
    const t = tr.getAttribute('data-type');
    if (perType.has(t)) tr.querySelector('.size').textContent = bytes(perType.get(t));
  }
}

// A signed URL (requiresAccessToken: false) expires within minutes; each fetch of the
// manifest signs fresh ones, so an expiring URL is replaced by the current manifest's.
async function current(f) {
  const m = lastManifest;
  if (m.requiresAccessToken !== false) return f;
  const expires = Number(new URL(f.url).searchParams.get('expires'));
  if (!expires || expires * 1000 > Date.now() + 30000) return f;
  const job = JSON.parse(localStorage.getItem(LS_JOB) || 'null');
  if (!job) return f;
  const r = await server.poll(job.statusUrl);
  if (!r.manifest) return f;
  lastManifest = r.manifest;
  const path = (u) => u.split('?')[0];
  return [...(r.manifest.output || []), ...(r.manifest.error || []), ...(r.manifest.deleted || [])]
    .find((x) => path(x.url) === path(f.url)) || f;
}

async function preview(f) {
  clearMessage();
  f = await current(f);
  const m = lastManifest;
  say('preview-title', `Loading ${fileName(f.url)} …`);
  show('preview-section');
  const { lines, complete } = await server.firstLines(f.url, m);
  const { headers, rows } = previewTable(f.type, lines);
  const t = $('preview');
  t.setAttribute('data-type', f.type);
  t.tHead.replaceChildren(el('tr', {}, ...headers.map((h) => el('th', { scope: 'col' }, h))));
  t.tBodies[0].replaceChildren(...rows.map((r) => el('tr', {}, ...r.map((c) => el('td', {}, c)))));
  say('preview-title', `${f.type} · ${fileName(f.url)} · first ${rows.length} line${rows.length === 1 ? '' : 's'}${complete ? ' (whole file)' : ''}`);
  $('preview-section').scrollIntoView({ block: 'nearest' });
}

async function download(f) {
  f = await current(f);
  const m = lastManifest;
  const a = el('a', { download: fileName(f.url) });
  if (m.requiresAccessToken === false) {
    a.href = f.url;   // a signed URL: the browser fetches it directly
    a.click();
    return;
  }
  const blob = await server.download(f.url, m);
  a.href = URL.createObjectURL(blob);
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 60000);
}

// --- wiring ------------------------------------------------------------------------------------

function on(id, ev, fn) {
  $(id).addEventListener(ev, (e) => {
    if (ev === 'submit') e.preventDefault();
    Promise.resolve(fn(e)).catch(fail);
  });
}

async function start() {
  if (!window.isSecureContext || !globalThis.crypto?.subtle) {
    fail('This page is not a secure context, so the browser offers no WebCrypto: open the app '
         + 'over https (or on localhost / 127.0.0.1) to make and use keys.');
  }
  const here = location.pathname.replace(/\/_app\/.*$/, '');
  $('base-url').value = localStorage.getItem(LS_BASE) || location.origin + here;

  on('connect-form', 'submit', () => connect($('base-url').value.trim()).catch((e) => {
    say('server-banner', 'Not connected', 'bad');
    throw new Error(`cannot connect: ${e.message}`);
  }));
  on('key-generate', 'click', async () => {
    say('key-status', 'Generating …');
    showKey(await generateKey($('key-alg').value), 'Generated');
    await keepIfAsked();
  });
  on('key-import-button', 'click', async () => {
    showKey(await importPrivateJwk($('key-import').value), 'Imported');
    $('key-import').value = '';   // the private key text does not stay in the page
    await keepIfAsked();
  });
  on('key-keep', 'change', async () => {
    if ($('key-keep').checked) await keepIfAsked();
    else { await deleteKey(); say('key-status', 'Key no longer kept in this browser'); }
  });
  on('key-forget', 'click', async () => {
    await deleteKey();
    $('key-keep').checked = false;
    say('key-status', 'Stored key deleted');
  });
  on('token-form', 'submit', authorize);
  for (const r of document.querySelectorAll('input[name=level]')) r.addEventListener('change', updatePreview);
  on('group-search', 'click', searchGroups);
  on('types', 'change', () => { fillFilterTypes(); updatePreview(); });
  on('tf-type', 'change', fillFilterParams);
  on('tf-param', 'change', updatePrefix);
  on('tf-add', 'click', addFilter);
  for (const id of ['group-select', 'since', 'until', 'elements', 'assoc', 'organize', 'partial']) {
    $(id).addEventListener('change', updatePreview);
    $(id).addEventListener('input', updatePreview);
  }
  on('kickoff-form', 'submit', kickoff);
  on('cancel', 'click', cancel);
  on('forget-job', 'click', () => {
    followGeneration++;
    followingUrl = null;
    localStorage.removeItem(LS_JOB);
    for (const s of ['job-section', 'manifest-section', 'preview-section']) show(s, false);
  });

  // A stored key and a pending export: connect, authorize and resume by themselves.
  try {
    const stored = await loadKey();
    if (stored && stored.privateKey) {
      showKey(stored, 'Stored');
      $('key-keep').checked = true;
    }
  } catch (e) { /* IndexedDB unavailable (private mode): nothing stored */ }
  const job = JSON.parse(localStorage.getItem(LS_JOB) || 'null');
  if (job) {
    $('base-url').value = job.base;
    try {
      await connect(job.base);
      if (key && localStorage.getItem(LS_CLIENT)) await authorize();   // resumes
      else say('token-status', 'An export was running: authorize to resume following it');
    } catch (e) { fail(e); }
  }
}

start().catch(fail);
