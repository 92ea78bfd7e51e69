/**
 * Key agreement and share encryption for secure aggregation, on WebCrypto (browsers, workers, Node 20):
 *
 * - Each hospital makes two P-256 key pairs per round attempt (Bonawitz et al. 2017): `c` to encrypt the
 *   Shamir shares it sends each other hospital through the server, `s` to agree a mask seed with each other
 *   hospital. ECDH gives both sides of a pair the same 256-bit secret; HKDF-SHA-256 with a label naming the
 *   purpose and the round attempt turns it into a key, so keys of different purposes or rounds never repeat.
 * - Shares travel encrypted with AES-256-GCM under the pair's `c` key, the sender, receiver and round
 *   attempt bound as associated data: the server relays them but can neither read nor redirect them.
 * - A mask private key (`s`) is Shamir-shared as its 32-byte scalar `d`; the server rebuilds a dropped
 *   hospital's key from t shares and its advertised public key, and so its pairwise masks.
 */
import { bytesEqual, concatBytes, fromBase64, randomBytes, subtle, toBase64, utf8 } from './bytes.ts';

const CURVE = { name: 'ECDH', namedCurve: 'P-256' } as const;
/** Uncompressed P-256 public key: 0x04 ‖ x ‖ y. */
export const PUBLIC_KEY_BYTES = 65;

export interface AgreementKeys {
  privateKey: CryptoKey;
  /** Raw uncompressed public key (65 bytes). */
  publicKey: Uint8Array<ArrayBuffer>;
}

export async function generateAgreementKeys(): Promise<AgreementKeys> {
  const kp = (await subtle().generateKey(CURVE, true, ['deriveBits'])) as CryptoKeyPair;
  const publicKey = new Uint8Array(await subtle().exportKey('raw', kp.publicKey));
  return { privateKey: kp.privateKey, publicKey };
}

function b64url(bytes: Uint8Array): string {
  return toBase64(bytes).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
function fromB64url(text: string): Uint8Array<ArrayBuffer> {
  const t = text.replace(/-/g, '+').replace(/_/g, '/');
  return fromBase64(t + '='.repeat((4 - (t.length % 4)) % 4), 'a JWK field');
}

/** The private scalar d (32 bytes) of a key from generateAgreementKeys (what is Shamir-shared). */
export async function exportPrivateScalar(privateKey: CryptoKey): Promise<Uint8Array<ArrayBuffer>> {
  const jwk = await subtle().exportKey('jwk', privateKey);
  if (!jwk.d) throw new Error('the key has no private part');
  return fromB64url(jwk.d);
}

/** Check a raw P-256 public key (a point on the curve); throws with `what` in the message otherwise. */
export async function importPublicKey(raw: Uint8Array, what = 'public key'): Promise<CryptoKey> {
  if (raw.length !== PUBLIC_KEY_BYTES || raw[0] !== 4) throw new Error(`${what}: an uncompressed P-256 key has ${PUBLIC_KEY_BYTES} bytes starting with 0x04`);
  try {
    return await subtle().importKey('raw', raw as Uint8Array<ArrayBuffer>, CURVE, true, []);
  } catch (e) {
    throw new Error(`${what}: not a P-256 public key (${(e as Error).message})`);
  }
}

/**
 * The private key of scalar `d` whose public key is `publicKey`; throws when they do not belong together
 * (e.g. a scalar recombined from wrong shares).
 */
export async function importPrivateScalar(d: Uint8Array, publicKey: Uint8Array): Promise<CryptoKey> {
  if (d.length !== 32) throw new Error(`a P-256 private scalar has 32 bytes, got ${d.length}`);
  const jwk: JsonWebKey = { kty: 'EC', crv: 'P-256', d: b64url(d), x: b64url(publicKey.subarray(1, 33)), y: b64url(publicKey.subarray(33, 65)), ext: true };
  let key: CryptoKey;
  try {
    key = await subtle().importKey('jwk', jwk, CURVE, true, ['deriveBits']);
  } catch (e) {
    throw new Error(`the rebuilt private key does not fit its public key (${(e as Error).message})`);
  }
  // WebCrypto implementations differ on whether they check d against x, y: check it here.
  const check = await subtle().exportKey('jwk', key);
  if (check.x !== jwk.x || check.y !== jwk.y) throw new Error('the rebuilt private key does not fit its public key');
  return key;
}

/**
 * A 32-byte key both hospitals of a pair derive alike: HKDF-SHA-256 of their ECDH secret, with `label`
 * (purpose and round attempt) as info. Throws on an invalid peer key.
 */
export async function agreeKey(privateKey: CryptoKey, peerPublicKey: Uint8Array, label: string): Promise<Uint8Array<ArrayBuffer>> {
  const peer = await importPublicKey(peerPublicKey, 'peer public key');
  const secret = await subtle().deriveBits({ name: 'ECDH', public: peer }, privateKey, 256);
  const hk = await subtle().importKey('raw', secret, 'HKDF', false, ['deriveBits']);
  const bits = await subtle().deriveBits({ name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(32), info: utf8(label) }, hk, 256);
  return new Uint8Array(bits);
}

/** AES-256-GCM: 12-byte random IV ‖ ciphertext ‖ tag, `context` as associated data. */
export async function seal(key: Uint8Array, plaintext: Uint8Array, context: string): Promise<Uint8Array<ArrayBuffer>> {
  const k = await subtle().importKey('raw', key as Uint8Array<ArrayBuffer>, 'AES-GCM', false, ['encrypt']);
  const iv = randomBytes(12);
  const ct = await subtle().encrypt({ name: 'AES-GCM', iv, additionalData: utf8(context) }, k, plaintext as Uint8Array<ArrayBuffer>);
  return concatBytes(iv, new Uint8Array(ct));
}

/** Open what seal() made; throws when the key, the context or a byte is wrong. */
export async function open(key: Uint8Array, sealed: Uint8Array, context: string): Promise<Uint8Array<ArrayBuffer>> {
  if (sealed.length < 12 + 16) throw new Error('an encrypted share is too short');
  const k = await subtle().importKey('raw', key as Uint8Array<ArrayBuffer>, 'AES-GCM', false, ['decrypt']);
  try {
    const pt = await subtle().decrypt({ name: 'AES-GCM', iv: sealed.subarray(0, 12) as Uint8Array<ArrayBuffer>, additionalData: utf8(context) }, k, sealed.subarray(12) as Uint8Array<ArrayBuffer>);
    return new Uint8Array(pt);
  } catch {
    throw new Error('an encrypted share failed authentication (wrong key, sender, receiver or round, or altered bytes)');
  }
}

export { bytesEqual, fromBase64, toBase64 };
