import { describe, expect, it } from 'vitest';
import { sha256, upgradeCredential, upgradeKey, upgradeKeyFromTokenHash, upgradeProtocols } from './upgradeAuth.ts';

// Expected values computed outside this code, with coreutils sha256sum and `openssl dgst -sha256 | base64`.
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
const utf8 = (s: string) => new TextEncoder().encode(s);

describe('upgradeAuth', () => {
  it('computes SHA-256 (FIPS 180-4 vectors, one and two blocks, a long and a UTF-8 input)', () => {
    expect(hex(sha256(utf8('')))).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(hex(sha256(utf8('abc')))).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hex(sha256(utf8('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')))).toBe('248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1');
    expect(hex(sha256(utf8('a'.repeat(1000))))).toBe('41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3');
    expect(hex(sha256(utf8('Grüße, Zürich ✓')))).toBe('48e18ba4fbbad0a4878d11b48f9b03c6cada9229c47bbd1c1c703bab3396187b');
  });

  it('derives the key from the token, or from its SHA-256 as a tokens file holds it; neither is in the key', () => {
    const token = 'token-of-h1-0123456789';
    const tokenHash = '0ce8b93c8fcc76740d899f48efe39a296543e191b6ff6c1e4301634f052c6701';
    expect(upgradeKey(token)).toBe('HiQpHVZeAvWb7D1Y0O2glPrQxl3IlBta0CWN8YEIC80');
    expect(upgradeKeyFromTokenHash(tokenHash)).toBe(upgradeKey(token));
    expect(upgradeKeyFromTokenHash(tokenHash.toUpperCase())).toBe(upgradeKey(token));
    expect(upgradeProtocols(token)).toEqual(['fedgan', 'fedgan.auth.HiQpHVZeAvWb7D1Y0O2glPrQxl3IlBta0CWN8YEIC80']);
    expect(upgradeProtocols(token).join()).not.toContain(token);
    expect(upgradeKey('token-of-h2-0123456789')).not.toBe(upgradeKey(token));
  });

  it('reads the credential from a Sec-WebSocket-Protocol header', () => {
    const key = upgradeKey('x'.repeat(20));
    expect(upgradeCredential(undefined)).toEqual({ kind: 'none' });
    expect(upgradeCredential('fedgan, other')).toEqual({ kind: 'none' });
    expect(upgradeCredential(`fedgan, fedgan.auth.${key}`)).toEqual({ kind: 'key', key });
    expect(upgradeCredential(['fedgan', `fedgan.auth.${key}`])).toEqual({ kind: 'key', key });
    expect(upgradeCredential(`fedgan.auth.${key}, fedgan.auth.${key}`)).toEqual({ kind: 'malformed', problem: '2 fedgan.auth.… entries (offer one)' });
    expect(upgradeCredential('fedgan, fedgan.auth.short')).toEqual({ kind: 'malformed', problem: 'fedgan.auth.… is not followed by a key of 43 base64url characters' });
    expect(upgradeCredential('FEDGAN.AUTH.' + key)).toEqual({ kind: 'key', key });
  });
});
