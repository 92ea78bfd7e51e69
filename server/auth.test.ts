import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadOrCreateDemoTokens, sha256Hex, TokenStore } from './auth.ts';
import { TOKENS_FILE_FORMAT } from './config.ts';

const dir = mkdtempSync(join(tmpdir(), 'fedgan-auth-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('tokens', () => {
  it('parses the documented format (YAML or JSON; token or sha256) and authenticates by hash', () => {
    const s = TokenStore.parse('- hospital: a\n  token: aaaaaaaaaaaaaaaa\n- hospital: b\n  sha256: ' + sha256Hex('bbbbbbbbbbbbbbbb') + '\n', 'tokens.yaml');
    expect(s.authenticate('aaaaaaaaaaaaaaaa')).toBe('a');
    expect(s.authenticate('bbbbbbbbbbbbbbbb')).toBe('b');
    expect(s.authenticate('cccccccccccccccc')).toBeUndefined();
    expect(TokenStore.parse('[{"hospital":"x","token":"xxxxxxxxxxxxxxxx"}]', 'tokens.json').hospitals).toEqual(['x']);
    let n = 0;
    const example = TOKENS_FILE_FORMAT.example.replace(/<[^>]*>/g, () => `secret-number-${n++}-long-enough`);
    expect(TokenStore.parse(example, 'example').hospitals).toEqual(['hospital-a', 'hospital-b']);
  });

  it('names the bad entry', () => {
    expect(() => TokenStore.parse('- hospital: a\n  token: short\n', 't')).toThrow('0.token: must be at least 16');
    expect(() => TokenStore.parse('- hospital: a\n', 't')).toThrow('0: needs exactly one of "token" or "sha256"');
    expect(() => TokenStore.parse('- hospital: a b\n  token: aaaaaaaaaaaaaaaa\n', 't')).toThrow('0.hospital');
    expect(() => TokenStore.parse('- {hospital: a, token: aaaaaaaaaaaaaaaa}\n- {hospital: a, token: bbbbbbbbbbbbbbbb}\n', 't')).toThrow('1.hospital: duplicate hospital "a"');
    expect(() => TokenStore.parse('- {hospital: a, token: aaaaaaaaaaaaaaaa}\n- {hospital: b, token: aaaaaaaaaaaaaaaa}\n', 't')).toThrow('1: duplicate token');
    expect(() => TokenStore.parse('[]', 't')).toThrow('never runs open');
  });

  it('generates demo tokens once and keeps them', async () => {
    const a = await loadOrCreateDemoTokens(dir);
    expect(a.created).toBe(true);
    expect(a.tokens.map((t) => t.hospital)).toEqual(['hospital-a', 'hospital-b']);
    expect(a.tokens.every((t) => t.token.length >= 32)).toBe(true);
    const b = await loadOrCreateDemoTokens(dir);
    expect(b.created).toBe(false);
    expect(b.tokens).toEqual(a.tokens);
    expect(b.store.authenticate(a.tokens[1].token)).toBe('hospital-b');
    expect(readFileSync(a.path, 'utf8')).toContain('hospital-a');
  });
});
