import { describe, expect, it } from 'vitest';
import { loadSettings } from './config.ts';
import {
  addressKey,
  AdmissionLog,
  admissionPhrases,
  AUTH_FAILURES_FORGOTTEN_AFTER_MS,
  AuthThrottle,
  clientAddress,
  CredentialedWaiting,
  originAllowed,
  parseAllowedOrigins,
  parseTrustedProxies,
  PreAuthBudget,
} from './admission.ts';

describe('addressKey', () => {
  it('keeps IPv4 (also IPv4-mapped) and counts IPv6 by its /64', () => {
    expect(addressKey('10.0.0.7')).toBe('10.0.0.7');
    expect(addressKey('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(addressKey('2001:db8:0:1:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:0:1::/64');
    expect(addressKey('2001:0DB8:0000:0001::5')).toBe('2001:db8:0:1::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey(undefined)).toBe('?');
  });
});

describe('PreAuthBudget', () => {
  const limits = { maxConnections: 100, maxUnauthenticated: 4, maxUnauthenticatedPerAddress: 2 };

  it('admits within the budget and counts per address', () => {
    const b = new PreAuthBudget<string>(limits);
    expect(b.admit('a', 'a1', 0)).toEqual({ admit: true });
    expect(b.admit('a', 'a2', 0)).toEqual({ admit: true });
    expect(b.admit('b', 'b1', 0)).toEqual({ admit: true });
    expect(b.size).toBe(3);
    expect(b.countOf('a')).toBe(2);
    b.release('a1');
    b.release('a1'); // twice: no effect
    b.release('unknown');
    expect(b.size).toBe(2);
    expect(b.countOf('a')).toBe(1);
    expect(b.has('a2')).toBe(true);
    expect(b.has('a1')).toBe(false);
  });

  it('over the per-address budget, closes that address’s oldest socket, never another address’s', () => {
    const b = new PreAuthBudget<string>(limits);
    b.admit('b', 'b1', 0);
    b.admit('a', 'a1', 0);
    b.admit('a', 'a2', 0);
    expect(b.admit('a', 'a3', 0)).toEqual({ admit: true, evict: 'a1', because: 'address' });
    expect(b.admit('a', 'a4', 0)).toEqual({ admit: true, evict: 'a2', because: 'address' });
    expect(b.countOf('a')).toBe(2);
    expect(b.has('b1')).toBe(true);
  });

  it('over the total, closes the oldest socket of the address holding the most (the newcomer counted)', () => {
    const b = new PreAuthBudget<string>({ ...limits, maxUnauthenticatedPerAddress: 10 });
    b.admit('hospital', 'h1', 0);
    b.admit('x', 'x1', 0);
    b.admit('x', 'x2', 0);
    b.admit('y', 'y1', 0);
    // x holds the most: its oldest goes, not the hospital's older socket.
    expect(b.admit('z', 'z1', 0)).toEqual({ admit: true, evict: 'x1', because: 'total' });
    // Now hospital, x, y, z hold 1 each; a newcomer from y makes y the largest: y's own socket goes.
    expect(b.admit('y', 'y2', 0)).toEqual({ admit: true, evict: 'y1', because: 'total' });
    // All hold 1 and the newcomer's address holds none: ties go to the oldest socket (the hospital's).
    expect(b.admit('w', 'w1', 0)).toEqual({ admit: true, evict: 'h1', because: 'total' });
    expect(b.size).toBe(4);
  });

  it('a flood from many sockets of one address never takes a lone socket of another address', () => {
    const b = new PreAuthBudget<number>({ maxConnections: 1000, maxUnauthenticated: 64, maxUnauthenticatedPerAddress: 8 });
    b.admit('hospital', -1, 0);
    for (let i = 0; i < 1000; i++) {
      const d = b.admit(`attacker-${i % 20}`, i, 0);
      expect(d.admit).toBe(true);
      if (d.admit) expect(d.evict).not.toBe(-1);
    }
    expect(b.has(-1)).toBe(true);
    expect(b.size).toBe(64);
  });

  it('keeps maxConnections: evicts unauthenticated sockets first, refuses only when hospitals fill it', () => {
    const b = new PreAuthBudget<string>({ maxConnections: 3, maxUnauthenticated: 10, maxUnauthenticatedPerAddress: 10 });
    expect(b.admit('a', 'a1', 1)).toEqual({ admit: true });
    expect(b.admit('a', 'a2', 1)).toEqual({ admit: true });
    expect(b.admit('b', 'b1', 1)).toEqual({ admit: true, evict: 'a1', because: 'connections' });
    const full = new PreAuthBudget<string>({ maxConnections: 3, maxUnauthenticated: 10, maxUnauthenticatedPerAddress: 10 });
    expect(full.admit('a', 'a1', 3)).toEqual({ admit: false, reason: 'server-full' });
    expect(full.size).toBe(0);
  });
});

describe('PreAuthBudget.makeRoom (a credentialed socket admitted outside the budget)', () => {
  it('releases the oldest socket of the busiest address only while the connections exceed maxConnections', () => {
    const b = new PreAuthBudget<string>({ maxConnections: 4, maxUnauthenticated: 10, maxUnauthenticatedPerAddress: 10 });
    b.admit('a', 'a1', 0);
    b.admit('b', 'b1', 0);
    b.admit('b', 'b2', 0);
    expect(b.makeRoom(1)).toBeUndefined(); // 1 + 3 = 4: room
    expect(b.makeRoom(2)).toBe('b1'); // 2 + 3 > 4: b holds the most, its oldest goes
    expect(b.size).toBe(2);
    expect(b.has('b1')).toBe(false);
    expect(b.makeRoom(2)).toBeUndefined();
    expect(new PreAuthBudget<string>({ maxConnections: 1, maxUnauthenticated: 1, maxUnauthenticatedPerAddress: 1 }).makeRoom(5)).toBeUndefined(); // nothing to release
  });
});

describe('CredentialedWaiting', () => {
  it('keeps one waiting socket per hospital: a newer one replaces the older, which is returned', () => {
    const w = new CredentialedWaiting<string>();
    expect(w.admit('h1', 's1')).toEqual({});
    expect(w.admit('h2', 't1')).toEqual({});
    expect(w.size).toBe(2);
    expect(w.admit('h1', 's2')).toEqual({ replaced: 's1' });
    expect(w.size).toBe(2);
    expect(w.claimOf('s1')).toBeUndefined();
    expect(w.claimOf('s2')).toBe('h1');
    w.release('s1'); // the replaced one closing later changes nothing
    expect(w.claimOf('s2')).toBe('h1');
    w.release('s2');
    w.release('unknown');
    expect(w.size).toBe(1);
    expect(w.admit('h1', 's3')).toEqual({});
  });
});

describe('AuthThrottle', () => {
  const limits = { authFailuresBeforeBackoff: 2, authBackoffSeconds: 1, authBackoffMaxSeconds: 5 };

  it('lets the first failures through, then doubles the wait up to the maximum, per address', () => {
    const t = new AuthThrottle(limits);
    let now = 1_000_000;
    expect(t.failure('a', now)).toEqual({ failures: 1, waitMs: 0 });
    expect(t.blockedFor('a', now)).toBe(0);
    expect(t.failure('a', now)).toEqual({ failures: 2, waitMs: 0 });
    expect(t.failure('a', now)).toEqual({ failures: 3, waitMs: 1000 });
    expect(t.blockedFor('a', now)).toBe(1000);
    expect(t.blockedFor('a', now + 400)).toBe(600);
    expect(t.blockedFor('b', now)).toBe(0); // another address is not affected
    now += 1000;
    expect(t.blockedFor('a', now)).toBe(0);
    expect(t.failure('a', now).waitMs).toBe(2000);
    expect(t.failure('a', (now += 2000)).waitMs).toBe(4000);
    expect(t.failure('a', (now += 4000)).waitMs).toBe(5000); // 8 s capped at 5
    expect(t.failure('a', (now += 5000)).waitMs).toBe(5000);
    expect(t.blockedFor('a', now + 4999)).toBe(1);
  });

  it('forgets an address after a quiet period, and bounds the addresses it tracks', () => {
    const t = new AuthThrottle(limits, 3);
    for (let i = 0; i < 3; i++) t.failure('a', 0);
    expect(t.blockedFor('a', 0)).toBe(1000);
    expect(t.failure('a', AUTH_FAILURES_FORGOTTEN_AFTER_MS)).toEqual({ failures: 1, waitMs: 0 });
    t.failure('b', AUTH_FAILURES_FORGOTTEN_AFTER_MS + 1);
    t.failure('c', AUTH_FAILURES_FORGOTTEN_AFTER_MS + 2);
    t.failure('d', AUTH_FAILURES_FORGOTTEN_AFTER_MS + 3);
    expect(t.tracked).toBe(3); // 'a', the least recently failed, was dropped
    expect(t.failure('a', AUTH_FAILURES_FORGOTTEN_AFTER_MS + 4).failures).toBe(1);
    t.prune(2 * AUTH_FAILURES_FORGOTTEN_AFTER_MS + 2);
    expect(t.tracked).toBe(2); // b and c forgotten; d and a are recent
  });
});

describe('Origin', () => {
  it('parses ALLOWED_ORIGINS and names bad entries', () => {
    expect(parseAllowedOrigins('https://App.example.org, http://localhost:5173/ ,')).toEqual({ origins: ['https://app.example.org', 'http://localhost:5173'], problems: [] });
    expect(parseAllowedOrigins('*').origins).toEqual(['*']);
    const bad = parseAllowedOrigins('example.org,https://x.org/app,ftp://y.org');
    expect(bad.origins).toEqual([]);
    expect(bad.problems).toHaveLength(3);
    expect(bad.problems[0]).toContain('"example.org" is not an origin');
  });

  it('allows no Origin, the request’s own host, PUBLIC_URL and the listed origins; refuses the rest', () => {
    const policy = { allowed: ['https://partner.example.org'], publicUrl: 'https://fedgan.example.org/' };
    expect(originAllowed(undefined, 'fedgan.example.org', policy)).toBe(true);
    expect(originAllowed('https://fedgan.example.org', 'internal:8080', policy)).toBe(true);
    expect(originAllowed('http://localhost:5173', 'localhost:5173', policy)).toBe(true);
    expect(originAllowed('https://partner.example.org', 'fedgan.example.org', policy)).toBe(true);
    expect(originAllowed('https://evil.example', 'fedgan.example.org', policy)).toBe(false);
    expect(originAllowed('http://fedgan.example.org', 'internal:8080', policy)).toBe(false); // scheme differs from PUBLIC_URL
    expect(originAllowed('null', 'fedgan.example.org', policy)).toBe(false);
    expect(originAllowed('https://fedgan.example.org.evil.example', 'fedgan.example.org', {})).toBe(false);
    expect(originAllowed('https://evil.example', 'x', { allowed: ['*'] })).toBe(true);
  });
});

describe('AdmissionLog', () => {
  const phrases = admissionPhrases({
    maxConnections: 256,
    maxUnauthenticated: 64,
    maxUnauthenticatedPerAddress: 8,
    helloTimeoutSeconds: 5,
    authFailuresBeforeBackoff: 5,
    authBackoffSeconds: 1,
    authBackoffMaxSeconds: 60,
  });

  it('logs the first refusal at once, then one summary line per kind and window', () => {
    const log = new AdmissionLog(phrases, 10_000);
    expect(log.note('unauthorized', '10.0.0.7', 0)).toBe(
      'refused 1 sign-in with an unknown token (after 5 an address waits 1 s, doubling up to 60 s) from 10.0.0.7 (more are summarised every 10 s)',
    );
    for (let i = 0; i < 300; i++) expect(log.note('unauthorized', '10.0.0.7', 100 + i)).toBeUndefined();
    for (let i = 0; i < 12; i++) log.note('unauthorized', `10.0.1.${i % 3}`, 500);
    expect(log.note('evicted', '10.0.0.9', 600)).toContain('closed 1 unauthenticated connection (no hello yet)');
    log.note('evicted', '10.0.0.9', 700);
    expect(log.flush(9_999)).toEqual([]); // neither window has passed
    expect(log.flush(10_000)).toEqual([
      'refused 312 sign-ins with an unknown token (after 5 an address waits 1 s, doubling up to 60 s) from 4 addresses in the last 10 s (most from 10.0.0.7: 300)',
    ]);
    expect(log.flush(10_600)).toEqual([
      'closed 1 unauthenticated connection (no hello yet) to make room for new ones (budget: 64 in all, 8 per address; hospitals send their hello at once and are not affected) from 1 address in the last 10 s (10.0.0.9)',
    ]);
    expect(log.flush(60_000)).toEqual([]);
    // Quiet for a window: the next one is logged at once again.
    expect(log.note('unauthorized', '10.0.0.8', 60_000)).toContain('from 10.0.0.8 (more are summarised');
  });

  it('escapes client-sent details', () => {
    const log = new AdmissionLog(phrases, 10_000);
    const line = log.note('origin', '10.0.0.7', 0, 'https://x\nINFO forged line')!;
    expect(line).not.toContain('\n');
    expect(line).toContain('"https://x\\nINFO forged line"');
    log.note('origin', '10.0.0.7', 1, 'https://a\r\nb');
    expect(log.flush(0, true)[0]).toContain('e.g. "https://a\\r\\nb"');
  });
});

describe('trusted proxies', () => {
  it('parses TRUSTED_PROXIES and names bad entries', () => {
    const { proxies, problems } = parseTrustedProxies('10.0.0.0/8, fd00::/8 ,192.168.1.5,');
    expect(problems).toEqual([]);
    expect(proxies.has('10.1.2.3')).toBe(true);
    expect(proxies.has('::ffff:10.1.2.3')).toBe(true);
    expect(proxies.has('fd00::7')).toBe(true);
    expect(proxies.has('192.168.1.5')).toBe(true);
    expect(proxies.has('192.168.1.6')).toBe(false);
    expect(proxies.has('11.0.0.1')).toBe(false);
    expect(parseTrustedProxies('10.0.0.0/33,ingress,10.0.0.0/x').problems).toEqual([
      '"10.0.0.0/33" is not an IP address or CIDR range (e.g. 10.0.0.0/8, fd00::/8, 192.168.1.5)',
      '"ingress" is not an IP address or CIDR range (e.g. 10.0.0.0/8, fd00::/8, 192.168.1.5)',
      '"10.0.0.0/x" is not an IP address or CIDR range (e.g. 10.0.0.0/8, fd00::/8, 192.168.1.5)',
    ]);
  });

  it('takes the client address from X-Forwarded-For only through a trusted proxy, rightmost untrusted hop first', () => {
    const { proxies } = parseTrustedProxies('10.0.0.0/8');
    expect(clientAddress('10.0.0.9', '203.0.113.7', proxies)).toBe('203.0.113.7');
    // The client wrote "1.2.3.4" itself; the ingress appended the real address.
    expect(clientAddress('10.0.0.9', '1.2.3.4, 203.0.113.7', proxies)).toBe('203.0.113.7');
    expect(clientAddress('10.0.0.9', ['1.2.3.4', '203.0.113.7, 10.0.0.3'], proxies)).toBe('203.0.113.7');
    expect(clientAddress('10.0.0.9', '10.0.0.3', proxies)).toBe('10.0.0.3');
    expect(clientAddress('10.0.0.9', 'garbage', proxies)).toBe('10.0.0.9');
    expect(clientAddress('10.0.0.9', undefined, proxies)).toBe('10.0.0.9');
    // Not from a trusted proxy, or none configured: the header is ignored.
    expect(clientAddress('198.51.100.1', '203.0.113.7', proxies)).toBe('198.51.100.1');
    expect(clientAddress('10.0.0.9', '203.0.113.7', undefined)).toBe('10.0.0.9');
  });
});

describe('settings', () => {
  it('reads ALLOWED_ORIGINS and TRUSTED_PROXIES, naming the variable of a bad entry', () => {
    const s = loadSettings({ ALLOWED_ORIGINS: 'https://partner.example.org', TRUSTED_PROXIES: '10.0.0.0/8' });
    expect(s.allowedOrigins).toEqual(['https://partner.example.org']);
    expect(s.trustedProxies?.has('10.4.5.6')).toBe(true);
    expect(loadSettings({}).allowedOrigins).toEqual([]);
    expect(loadSettings({}).trustedProxies).toBeUndefined();
    expect(() => loadSettings({ ALLOWED_ORIGINS: 'partner.example.org' })).toThrow('ALLOWED_ORIGINS: "partner.example.org" is not an origin');
    expect(() => loadSettings({ TRUSTED_PROXIES: 'ingress' })).toThrow('TRUSTED_PROXIES: "ingress" is not an IP address');
  });
});
