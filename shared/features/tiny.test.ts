import { describe, expect, it } from 'vitest';
import { createTinyExtractor } from './tiny.ts';

describe('tiny extractor', () => {
  it('is deterministic, has the asked dimension, and separates different tiles', async () => {
    const ex = createTinyExtractor(16);
    const a = new Uint8Array(16 * 16 * 3).fill(200);
    const b = new Uint8Array(16 * 16 * 3).map((_, i) => (i % 3 === 0 ? 40 : 180));
    const f = await ex.extract([a, b, a], 16);
    expect(f.rows).toBe(3);
    expect(f.dim).toBe(16);
    expect(Array.from(f.data.slice(0, 16))).toEqual(Array.from(f.data.slice(32, 48)));
    expect(Array.from(f.data.slice(0, 16))).not.toEqual(Array.from(f.data.slice(16, 32)));
    const g = await createTinyExtractor(16).extract([a], 16);
    expect(Array.from(g.data)).toEqual(Array.from(f.data.slice(0, 16)));
    await expect(ex.extract([new Uint8Array(5)], 16)).rejects.toThrow(/tile 0 has 5 bytes, expected 768/);
  });
});
