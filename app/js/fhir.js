// The Bulk Data server, through fetch: discovery, tokens, kick-off, status, cancel, files.
// Every request goes to the server the user named; nothing is mocked or proxied.

import { clientAssertion } from './keys.js';

const FHIR_JSON = 'application/fhir+json';
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

export class HttpError extends Error {
  constructor(status, text, body) {
    super(text);
    this.status = status;
    this.body = body;
  }
}

// The text of an OperationOutcome or an OAuth error, else the status line.
export function describeError(status, body, fallback) {
  if (body && body.resourceType === 'OperationOutcome' && Array.isArray(body.issue)) {
    return `${status}: ` + body.issue.map((i) => i.diagnostics || i.details?.text || i.code).join('; ');
  }
  if (body && body.error) return `${status}: ${body.error}${body.error_description ? ' — ' + body.error_description : ''}`;
  return `${status}: ${fallback || 'request failed'}`;
}

async function readJson(res) {
  const text = await res.text();
  if (!text) return null;
  try { return JSON.parse(text); } catch { return null; }
}

export class Server {
  constructor(base) {
    this.base = base.replace(/\/+$/, '');
    this.smart = null;
    this.capability = null;
    this.key = null;
    this.clientId = '';
    this.scope = 'system/*.read';
    this.token = null;
    this.tokenExpires = 0;
  }

  async discover() {
    const [smart, cap] = await Promise.all([
      this.plainJson(this.base + '/.well-known/smart-configuration'),
      this.plainJson(this.base + '/metadata', FHIR_JSON),
    ]);
    if (!cap || cap.resourceType !== 'CapabilityStatement') {
      throw new Error('the /metadata answer is not a CapabilityStatement');
    }
    this.smart = smart;
    this.capability = cap;
  }

  async plainJson(url, accept = 'application/json') {
    const res = await fetch(url, { headers: { Accept: accept }, cache: 'no-store' });
    const body = await readJson(res);
    if (!res.ok) throw new HttpError(res.status, describeError(res.status, body, url), body);
    return body;
  }

  get tokenUrl() { return this.smart?.token_endpoint || ''; }
  get rest() { return this.capability?.rest?.[0] || {}; }

  // Types the server lists, with their search parameters (the _typeFilter builder's input).
  resources() {
    return (this.rest.resource || []).map((r) => ({
      type: r.type,
      params: (r.searchParam || []).map((p) => ({ name: p.name, type: p.type })),
      operations: (r.operation || []).map((o) => o.name),
      interactions: (r.interaction || []).map((i) => i.code),
    }));
  }

  offersGroupSearch() {
    const g = this.resources().find((r) => r.type === 'Group');
    return !!g && g.interactions.includes('search-type');
  }

  // --- tokens ---------------------------------------------------------------------------
  async authorize() {
    if (!this.key) throw new Error('no key: generate or import one first');
    if (!this.clientId) throw new Error('no client_id');
    if (!this.tokenUrl) throw new Error('the server names no token endpoint');
    const assertion = await clientAssertion(this.key, this.clientId, this.tokenUrl);
    const form = new URLSearchParams({
      grant_type: 'client_credentials', client_assertion_type: JWT_BEARER,
      client_assertion: assertion, scope: this.scope,
    });
    const res = await fetch(this.tokenUrl, {
      method: 'POST', body: form, cache: 'no-store',
      headers: { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    const body = await readJson(res);
    if (!res.ok || !body?.access_token) {
      throw new HttpError(res.status, describeError(res.status, body, 'token request refused'), body);
    }
    this.token = body.access_token;
    this.tokenExpires = Date.now() + (body.expires_in || 300) * 1000;
    this.grantedScope = body.scope || '';
    return body;
  }

  async ensureToken() {
    if (!this.token || Date.now() > this.tokenExpires - 30000) await this.authorize();
  }

  // fetch with the bearer token; a 401 gets one fresh token and one retry.
  async authFetch(url, opts = {}) {
    await this.ensureToken();
    const go = () => fetch(url, { cache: 'no-store', ...opts,
      headers: { ...(opts.headers || {}), Authorization: `Bearer ${this.token}` } });
    let res = await go();
    if (res.status === 401) {
      this.token = null;
      await this.ensureToken();
      res = await go();
    }
    return res;
  }

  async searchGroups(name) {
    const q = new URLSearchParams({ _count: '100' });
    if (name) q.set('name', name);
    const res = await this.authFetch(`${this.base}/Group?${q}`, { headers: { Accept: FHIR_JSON } });
    const body = await readJson(res);
    if (!res.ok) throw new HttpError(res.status, describeError(res.status, body), body);
    return (body?.entry || []).map((e) => e.resource).filter((g) => g && g.resourceType === 'Group');
  }

  // --- export -----------------------------------------------------------------------------
  kickoffUrl(req) {
    const path = req.level === 'group' ? `/Group/${encodeURIComponent(req.group)}/$export`
      : req.level === 'patient' ? '/Patient/$export' : '/$export';
    const q = new URLSearchParams();
    if (req.types.length) q.set('_type', req.types.join(','));
    if (req.since) q.set('_since', req.since);
    if (req.until) q.set('_until', req.until);
    for (const f of req.typeFilters) q.append('_typeFilter', f);
    if (req.elements) q.set('_elements', req.elements);
    if (req.includeAssociatedData) q.set('includeAssociatedData', req.includeAssociatedData);
    if (req.organizeOutputBy) q.set('organizeOutputBy', req.organizeOutputBy);
    if (req.allowPartialManifests) q.set('allowPartialManifests', 'true');
    const s = q.toString();
    return this.base + path + (s ? '?' + s : '');
  }

  // Returns the status URL (Content-Location of the 202).
  async kickoff(req) {
    const res = await this.authFetch(this.kickoffUrl(req),
      { headers: { Accept: FHIR_JSON, Prefer: 'respond-async' } });
    const body = res.status === 202 ? null : await readJson(res);
    if (res.status !== 202) throw new HttpError(res.status, describeError(res.status, body), body);
    const loc = res.headers.get('Content-Location');
    if (!loc) throw new Error('202 without Content-Location');
    return new URL(loc, this.base + '/').href;
  }

  // One poll: { state: 'running'|'done'|'error', progress, retryAfter, manifest, error }.
  async poll(statusUrl) {
    const res = await this.authFetch(statusUrl, { headers: { Accept: 'application/json' } });
    const retryAfter = parseRetryAfter(res.headers.get('Retry-After'));
    const body = await readJson(res);
    if (res.status === 202) {
      return { state: 'running', progress: res.headers.get('X-Progress') || '', retryAfter,
               manifest: body && body.output ? body : null };
    }
    if (res.status === 200) {
      return { state: 'done', manifest: await this.allPages(body) };
    }
    if (res.status === 429 || res.status === 503) {
      return { state: 'running', progress: 'server busy', retryAfter: retryAfter ?? 5,
               manifest: null };
    }
    return { state: 'error', status: res.status, error: describeError(res.status, body) };
  }

  // A paged manifest (link relation next) gathered into one.
  async allPages(first) {
    const m = { ...first, output: [...(first.output || [])], error: [...(first.error || [])],
                deleted: [...(first.deleted || [])] };
    let page = first;
    for (let n = 0; n < 1000; n++) {
      const next = (page.link || []).find((l) => l.relation === 'next');
      if (!next) break;
      const res = await this.authFetch(next.url, { headers: { Accept: 'application/json' } });
      page = await readJson(res);
      if (!res.ok || !page) throw new HttpError(res.status, describeError(res.status, page), page);
      m.output.push(...(page.output || []));
      m.error.push(...(page.error || []));
      m.deleted.push(...(page.deleted || []));
    }
    delete m.link;
    return m;
  }

  async cancel(statusUrl) {
    const res = await this.authFetch(statusUrl, { method: 'DELETE', headers: { Accept: FHIR_JSON } });
    if (res.status !== 202) {
      const body = await readJson(res);
      throw new HttpError(res.status, describeError(res.status, body), body);
    }
  }

  // --- files ------------------------------------------------------------------------------
  fileFetch(url, manifest, opts = {}) {
    if (manifest.requiresAccessToken === false) return fetch(url, { cache: 'no-store', ...opts });
    return this.authFetch(url, opts);
  }

  // Size of a file as served (HEAD: Content-Length; null when the server sends none).
  async fileSize(url, manifest) {
    const res = await this.fileFetch(url, manifest, { method: 'HEAD' });
    if (!res.ok) return null;
    const n = res.headers.get('Content-Length');
    return n === null ? null : Number(n);
  }

  // The first complete lines of a file, reading at most maxBytes and then cancelling the
  // stream (a Range request would cut a gzip-encoded answer the browser cannot decode).
  async firstLines(url, manifest, maxLines = 20, maxBytes = 64 * 1024) {
    const res = await this.fileFetch(url, manifest, { headers: { Accept: 'application/fhir+ndjson' } });
    if (!res.ok) {
      const body = await readJson(res);
      throw new HttpError(res.status, describeError(res.status, body), body);
    }
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let text = '';
    let read = 0;
    let finished = false;
    while (read < maxBytes && text.split('\n').length <= maxLines) {
      const { done, value } = await reader.read();
      if (done) { finished = true; break; }
      read += value.length;
      text += dec.decode(value, { stream: true });
    }
    if (!finished) await reader.cancel();
    const lines = text.split('\n');
    if (!finished) lines.pop();  // possibly cut
    return { lines: lines.filter((l) => l.trim()).slice(0, maxLines), complete: finished };
  }

  async download(url, manifest) {
    const res = await this.fileFetch(url, manifest);
    if (!res.ok) {
      const body = await readJson(res);
      throw new HttpError(res.status, describeError(res.status, body), body);
    }
    return res.blob();
  }
}

export function parseRetryAfter(v) {
  if (!v) return null;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const t = Date.parse(v);
  return Number.isNaN(t) ? null : Math.max(0, (t - Date.now()) / 1000);
}
