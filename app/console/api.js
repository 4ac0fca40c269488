// The operator API ([base]/_ops/api/, README "Operator console") with the session's token.
// Errors carry the server's OperationOutcome diagnostics.

export class OpsApi {
  constructor(session) {
    this.session = session;
    this.root = session.base + '/_ops/api/';
  }

  async call(method, path, params) {
    const url = new URL(this.root + path, location.href);
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== '' && v !== undefined && v !== null) url.searchParams.set(k, v);
    }
    const token = await this.session.token();
    const res = await fetch(url, {
      method, credentials: 'omit',
      headers: { Authorization: 'Bearer ' + token, Accept: 'application/json' },
    });
    let json = null;
    try { json = await res.json(); } catch (e) { /* empty or not JSON */ }
    if (!res.ok) {
      const why = json && json.issue && json.issue[0] && json.issue[0].diagnostics;
      const err = new Error(`${res.status}: ${why || res.statusText}`);
      err.status = res.status;
      throw err;
    }
    return json;
  }

  jobs(p) { return this.call('GET', 'jobs', p); }
  history(p) { return this.call('GET', 'history', p); }
  clients() { return this.call('GET', 'clients'); }
  audit(p) { return this.call('GET', 'audit', p); }
  stats(days) { return this.call('GET', 'stats', { days }); }
  setEnabled(clientId, enabled) {
    return this.call('POST', `clients/${encodeURIComponent(clientId)}/${enabled ? 'enable' : 'disable'}`);
  }
}
