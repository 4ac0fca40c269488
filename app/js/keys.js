// Client keys for SMART Backend Services, with WebCrypto only: generate or import a key
// pair, publish its public JWK Set, sign ES384/RS384 client assertions. The private key is
// created (or imported) non-extractable: no code, this app's included, can read it back out;
// it is stored (IndexedDB, as a CryptoKey object) only when the user asks.

export const KEY_ALGS = {
  ES384: { gen: { name: 'ECDSA', namedCurve: 'P-384' }, sign: { name: 'ECDSA', hash: 'SHA-384' },
           imp: { name: 'ECDSA', namedCurve: 'P-384' } },
  RS384: { gen: { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048,
                  publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-384' },
           sign: { name: 'RSASSA-PKCS1-v1_5' },
           imp: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-384' } },
};
const PUBLIC_MEMBERS = { EC: ['kty', 'crv', 'x', 'y'], RSA: ['kty', 'n', 'e'] };

export function b64url(bytes) {
  let s = '';
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
const utf8 = (s) => new TextEncoder().encode(s);

// RFC 7638 thumbprint: a kid the key determines.
async function thumbprint(pub) {
  const members = PUBLIC_MEMBERS[pub.kty];
  const canon = '{' + members.slice().sort().map((m) => `"${m}":"${pub[m]}"`).join(',') + '}';
  return b64url(await crypto.subtle.digest('SHA-256', utf8(canon)));
}

async function publicJwk(jwk, alg, kid) {
  const pub = {};
  for (const m of PUBLIC_MEMBERS[jwk.kty]) pub[m] = jwk[m];
  pub.kid = kid || await thumbprint(pub);
  pub.alg = alg;
  pub.use = 'sig';
  return pub;
}

// { alg, kid, privateKey (non-extractable CryptoKey), publicJwk }
export async function generateKey(alg) {
  const a = KEY_ALGS[alg];
  if (!a) throw new Error(`unsupported algorithm ${alg}`);
  const pair = await crypto.subtle.generateKey(a.gen, false, ['sign', 'verify']);
  const jwk = await crypto.subtle.exportKey('jwk', pair.publicKey);  // public keys export
  const pub = await publicJwk(jwk, alg);
  return { alg, kid: pub.kid, privateKey: pair.privateKey, publicJwk: pub };
}

// A private JWK (EC P-384 or RSA >= 2048 bits) pasted by the user, or a key set holding
// exactly one: { alg, jwk (that key, as given), privateKey (imported non-extractable) }.
export async function parsePrivateJwk(text) {
  let jwk;
  try { jwk = JSON.parse(text); } catch (e) { throw new Error('not JSON: ' + e.message); }
  if (jwk && Array.isArray(jwk.keys)) {
    const priv = jwk.keys.filter((k) => k.d);
    if (priv.length !== 1) throw new Error('a key set: give exactly one private key');
    jwk = priv[0];
  }
  if (!jwk || typeof jwk !== 'object' || !jwk.d) throw new Error('not a private JWK (no "d")');
  let alg;
  if (jwk.kty === 'EC' && jwk.crv === 'P-384') alg = 'ES384';
  else if (jwk.kty === 'RSA') alg = 'RS384';
  else throw new Error('only EC P-384 (ES384) and RSA (RS384) keys');
  if (jwk.alg && jwk.alg !== alg) throw new Error(`the key says alg ${jwk.alg}, expected ${alg}`);
  const clean = { ...jwk };
  delete clean.alg; delete clean.key_ops; delete clean.use; delete clean.ext;
  const privateKey = await crypto.subtle.importKey('jwk', clean, KEY_ALGS[alg].imp, false, ['sign']);
  if (alg === 'RS384' && privateKey.algorithm.modulusLength < 2048) {
    throw new Error('RSA keys need at least 2048 bits');
  }
  return { alg, jwk, privateKey };
}

// The same, as this app keeps a key: { alg, kid, privateKey, publicJwk } (kid: the JWK's, else
// its thumbprint).
export async function importPrivateJwk(text) {
  const { alg, jwk, privateKey } = await parsePrivateJwk(text);
  const pub = await publicJwk(jwk, alg, jwk.kid);
  return { alg, kid: pub.kid, privateKey, publicJwk: pub };
}

export function jwks(key) { return { keys: [key.publicJwk] }; }

// A signed client assertion (compact JWS) for the token endpoint, by key = { alg, kid,
// privateKey } (no kid header when kid is empty). Also the operator console's (console/signin.js).
export async function clientAssertion(key, clientId, tokenUrl) {
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: key.alg, typ: 'JWT' };
  if (key.kid) header.kid = key.kid;
  const jti = b64url(crypto.getRandomValues(new Uint8Array(16)));
  const claims = { iss: clientId, sub: clientId, aud: tokenUrl, exp: now + 240, jti };
  const input = b64url(utf8(JSON.stringify(header))) + '.' + b64url(utf8(JSON.stringify(claims)));
  // ECDSA in WebCrypto yields R||S (IEEE P1363), the JWS form: no DER conversion needed.
  const sig = await crypto.subtle.sign(KEY_ALGS[key.alg].sign, key.privateKey, utf8(input));
  return input + '.' + b64url(sig);
}

// --- IndexedDB: one record, the key the user asked to keep ---------------------------------
const DB = 'fhir-bulk-app';
const STORE = 'keys';

function openDb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

async function tx(mode, fn) {
  const db = await openDb();
  try {
    return await new Promise((resolve, reject) => {
      const t = db.transaction(STORE, mode);
      const req = fn(t.objectStore(STORE));
      t.oncomplete = () => resolve(req && req.result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
  } finally {
    db.close();
  }
}

// The CryptoKey is stored as itself (structured clone keeps it non-extractable).
export function storeKey(key) {
  return tx('readwrite', (s) => s.put({ alg: key.alg, kid: key.kid, privateKey: key.privateKey,
                                         publicJwk: key.publicJwk }, 'client-key'));
}
export function loadKey() { return tx('readonly', (s) => s.get('client-key')); }
export function deleteKey() { return tx('readwrite', (s) => s.delete('client-key')); }
