/**
 * The hospital's credential in the WebSocket upgrade request (docs/protocol.md §1, §5.1), so that the
 * server recognises a known hospital before the upgrade and never makes it compete with sockets that have
 * no token.
 *
 * The client offers two subprotocols in `Sec-WebSocket-Protocol`: `fedgan` (which the server echoes) and
 * `fedgan.auth.<key>`, where
 *
 *     key = base64url, no padding ( SHA-256( "fedgan.auth:" + lowercase hex SHA-256(token) ) )
 *
 * The key is neither the token nor the SHA-256 the server stores: someone who sees it (an ingress that
 * logs request headers) cannot say hello as the hospital. It only lets a socket skip the budget of sockets
 * waiting for their hello; the hello must still carry the token. The server computes each hospital's key
 * from the SHA-256 in its tokens file. The token never goes into the URL.
 *
 * SHA-256 is computed here in plain JS (FIPS 180-4), synchronously, because WebCrypto's digest is async
 * and missing on pages served over plain http from another host than localhost. No DOM and no Node imports.
 */

/** The subprotocol a client offers first; the server selects (echoes) it. */
export const SUBPROTOCOL = 'fedgan';
/** The prefix of the credential entry; the server never selects an entry with it. */
export const AUTH_SUBPROTOCOL_PREFIX = 'fedgan.auth.';

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

/** SHA-256 of `data` (32 bytes). */
export function sha256(data: Uint8Array): Uint8Array {
  const h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  // Padding: 0x80, zeros, then the length in bits as a big-endian 64-bit number.
  const blocks = Math.ceil((data.length + 9) / 64);
  const m = new Uint8Array(blocks * 64);
  m.set(data);
  m[data.length] = 0x80;
  const bits = data.length * 8;
  const view = new DataView(m.buffer);
  view.setUint32(m.length - 8, Math.floor(bits / 2 ** 32));
  view.setUint32(m.length - 4, bits >>> 0);
  const w = new Uint32Array(64);
  for (let b = 0; b < blocks; b++) {
    for (let i = 0; i < 16; i++) w[i] = view.getUint32(b * 64 + i * 4);
    for (let i = 16; i < 64; i++) {
      const x = w[i - 15];
      const y = w[i - 2];
      const s0 = ((x >>> 7) | (x << 25)) ^ ((x >>> 18) | (x << 14)) ^ (x >>> 3);
      const s1 = ((y >>> 17) | (y << 15)) ^ ((y >>> 19) | (y << 13)) ^ (y >>> 10);
      w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
    }
    let [a, bb, c, d, e, f, g, hh] = h;
    for (let i = 0; i < 64; i++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (hh + S1 + ch + K[i] + w[i]) >>> 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & bb) ^ (a & c) ^ (bb & c);
      const t2 = (S0 + maj) >>> 0;
      hh = g;
      g = f;
      f = e;
      e = (d + t1) >>> 0;
      d = c;
      c = bb;
      bb = a;
      a = (t1 + t2) >>> 0;
    }
    h[0] += a;
    h[1] += bb;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
  }
  const out = new Uint8Array(32);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setUint32(i * 4, h[i]);
  return out;
}

const utf8 = (s: string) => new TextEncoder().encode(s);
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
function base64url(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 3) {
    const n = (b[i] << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    const chars = i + 2 < b.length ? 4 : i + 1 < b.length ? 3 : 2;
    for (let j = 0; j < chars; j++) s += B64URL[(n >>> (18 - 6 * j)) & 63];
  }
  return s;
}

/** A key is 43 base64url characters (32 bytes). */
export const UPGRADE_KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** The upgrade key of the token whose SHA-256 (hex, as in a tokens file) is `tokenSha256Hex`. */
export function upgradeKeyFromTokenHash(tokenSha256Hex: string): string {
  return base64url(sha256(utf8(`fedgan.auth:${tokenSha256Hex.toLowerCase()}`)));
}

/** The upgrade key of `token`. */
export function upgradeKey(token: string): string {
  return upgradeKeyFromTokenHash(hex(sha256(utf8(token))));
}

/** The subprotocols a client offers: `fedgan` first, then its credential. */
export function upgradeProtocols(token: string): string[] {
  return [SUBPROTOCOL, AUTH_SUBPROTOCOL_PREFIX + upgradeKey(token)];
}

/**
 * The credential in a `Sec-WebSocket-Protocol` header: `none` (no `fedgan.auth.` entry: an older client),
 * the key, or `malformed` (more than one entry, or one that is not a key) with what is wrong.
 */
export function upgradeCredential(header: string | string[] | undefined): { kind: 'none' } | { kind: 'key'; key: string } | { kind: 'malformed'; problem: string } {
  const text = Array.isArray(header) ? header.join(',') : (header ?? '');
  const entries = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.toLowerCase().startsWith(AUTH_SUBPROTOCOL_PREFIX));
  if (!entries.length) return { kind: 'none' };
  if (entries.length > 1) return { kind: 'malformed', problem: `${entries.length} ${AUTH_SUBPROTOCOL_PREFIX}… entries (offer one)` };
  const key = entries[0].slice(AUTH_SUBPROTOCOL_PREFIX.length);
  if (!UPGRADE_KEY_PATTERN.test(key)) return { kind: 'malformed', problem: `${AUTH_SUBPROTOCOL_PREFIX}… is not followed by a key of 43 base64url characters` };
  return { kind: 'key', key };
}
