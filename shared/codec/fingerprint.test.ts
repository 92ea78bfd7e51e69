import { describe, expect, it } from 'vitest';
import { architectureFingerprint, canonicalArchitecture, fnv1a64Hex } from './fingerprint.ts';

const layout = [
  { name: 'g/dense/kernel', shape: [128, 256] },
  { name: 'g/bn1/gamma', shape: [256] },
];

describe('fnv1a64Hex', () => {
  it('matches the published FNV-1a 64-bit test vectors', () => {
    expect(fnv1a64Hex('')).toBe('cbf29ce484222325');
    expect(fnv1a64Hex('a')).toBe('af63dc4c8601ec8c');
    expect(fnv1a64Hex('foobar')).toBe('85944171f73967e8');
  });
});

describe('architectureFingerprint', () => {
  it('is 16 hex digits and deterministic', () => {
    const fp = architectureFingerprint(layout, 'cfg');
    expect(fp).toMatch(/^[0-9a-f]{16}$/);
    expect(architectureFingerprint(structuredClone(layout), 'cfg')).toBe(fp);
  });

  it('hashes the documented canonical description', () => {
    expect(canonicalArchitecture(layout, 'x')).toBe('"g/dense/kernel":[128,256];"g/bn1/gamma":[256]|x');
    expect(architectureFingerprint(layout, 'x')).toBe(fnv1a64Hex('"g/dense/kernel":[128,256];"g/bn1/gamma":[256]|x'));
  });

  it('is sensitive to names, shapes, order and extra', () => {
    const base = architectureFingerprint(layout);
    const renamed = [{ ...layout[0], name: 'g/dense/bias' }, layout[1]];
    const reshaped = [{ ...layout[0], shape: [256, 128] }, layout[1]];
    const reordered = [layout[1], layout[0]];
    const variants = [
      architectureFingerprint(renamed),
      architectureFingerprint(reshaped),
      architectureFingerprint(reordered),
      architectureFingerprint(layout, 'lr=0.1'),
      architectureFingerprint(layout.slice(0, 1)),
    ];
    for (const v of variants) expect(v).not.toBe(base);
    expect(new Set(variants).size).toBe(variants.length);
  });

  it('treats a missing extra as the empty string', () => {
    expect(architectureFingerprint(layout)).toBe(architectureFingerprint(layout, ''));
  });

  it('cannot be fooled by separators inside names', () => {
    const a = [{ name: 'a:[1];"b"', shape: [2] }];
    const b = [
      { name: 'a', shape: [1] },
      { name: 'b', shape: [2] },
    ];
    expect(architectureFingerprint(a)).not.toBe(architectureFingerprint(b));
  });

  it('distinguishes scalars from vectors and rejects invalid dimensions', () => {
    expect(architectureFingerprint([{ name: 's', shape: [] }])).not.toBe(
      architectureFingerprint([{ name: 's', shape: [1] }]),
    );
    expect(() => architectureFingerprint([{ name: 'w', shape: [2, -1] }])).toThrow(/w.*invalid dimension -1/);
    expect(() => architectureFingerprint([{ name: 'w', shape: [1.5] }])).toThrow(/invalid dimension/);
  });
});
