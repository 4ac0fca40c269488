// The operator's credential, in this browser only: a private key (PKCS#8 PEM as written by
// `fhir-bulk client keygen`, or a private JWK) imported non-extractable with WebCrypto, which
// signs SMART Backend Services client assertions (ES384 or RS384) for access tokens with
// operator/ scopes; or an access token pasted as is (from `fhir-bulk token`). Nothing is stored:
// a reload signs out. Tokens are renewed when a fifth of their lifetime is left.

import { KEY_ALGS, clientAssertion, parsePrivateJwk } from '../js/keys.js';

const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
export const OPERATOR_SCOPE = 'operator/*.read operator/clients.write';

// { alg, privateKey, kid } from the text the operator gave.
export async function importKey(text, kid) {
  text = text.trim();
  if (text.startsWith('{')) {
    const k = await parsePrivateJwk(text);
    return { alg: k.alg, privateKey: k.privateKey, kid: kid || k.jwk.kid || '' };
  }
  const m = /-----BEGIN PRIVATE KEY-----([\s\S]+?)-----END PRIVATE KEY-----/.exec(text);
  if (!m) throw new Error('expected a PKCS#8 PEM ("BEGIN PRIVATE KEY") or a private JWK');
  let der;
  try {
    der = Uint8Array.from(atob(m[1].replace(/\s+/g, '')), (c) => c.charCodeAt(0));
  } catch (e) { throw new Error('the PEM is not valid base64'); }
  let privateKey;
  for (const alg of ['ES384', 'RS384']) {
    try {
      privateKey = await crypto.subtle.importKey('pkcs8', der, KEY_ALGS[alg].imp, false,
                                                 ['sign']);
    } catch (e) { continue; /* try the other algorithm */ }
    if (alg === 'RS384' && privateKey.algorithm.modulusLength < 2048) {
      throw new Error('RSA keys need at least 2048 bits');
    }
    return { alg, privateKey, kid };
  }
  throw new Error('the key is neither EC P-384 nor RSA');
}

// Holds the credential; token() gives a valid access token, renewing it when needed.
export class Session {
  constructor(base) {
    this.base = base;
    this.tokenUrl = base + '/auth/token';
    this.clear();
  }

  clear() {
    this.clientId = '';
    this.signer = null;
    this.accessToken = '';
    this.scope = '';
    this.expiresAt = 0;
    this.lifetime = 0;
  }

  get signedIn() { return !!this.accessToken; }

  async signInWithKey(clientId, keyText, kid) {
    this.clear();
    this.signer = await importKey(keyText, kid);
    this.clientId = clientId;
    await this.renew();
  }

  signInWithToken(token) {
    this.clear();
    const parts = token.trim().split('.');
    let claims = {};
    try { claims = JSON.parse(atob(parts[1].replace(/-/g, '+').replace(/_/g, '/'))); } catch (e) {
      throw new Error('not an access token (a JWT)');
    }
    this.accessToken = token.trim();
    this.clientId = claims.sub || '';
    this.scope = claims.scope || '';
    this.expiresAt = (claims.exp || 0) * 1000;
    this.lifetime = Math.max(0, this.expiresAt - Date.now());
  }

  async renew() {
    const assertion = await clientAssertion(this.signer, this.clientId, this.tokenUrl);
    const body = new URLSearchParams({
      grant_type: 'client_credentials', scope: OPERATOR_SCOPE,
      client_assertion_type: ASSERTION_TYPE, client_assertion: assertion,
    });
    const res = await fetch(this.tokenUrl, {
      method: 'POST', body, headers: { Accept: 'application/json' }, credentials: 'omit',
    });
    let json = {};
    try { json = await res.json(); } catch (e) { /* not JSON */ }
    if (!res.ok) {
      throw new Error(`token refused (${res.status}): ${json.error || ''} ${json.error_description || ''}`.trim());
    }
    this.accessToken = json.access_token;
    this.scope = json.scope || '';
    this.lifetime = (json.expires_in || 300) * 1000;
    this.expiresAt = Date.now() + this.lifetime;
  }

  async token() {
    if (!this.accessToken) throw new Error('not signed in');
    if (Date.now() > this.expiresAt - this.lifetime / 5) {
      if (!this.signer) throw new Error('the access token has expired; sign in again');
      await this.renew();
    }
    return this.accessToken;
  }
}
