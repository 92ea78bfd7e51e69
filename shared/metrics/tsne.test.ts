import { describe, expect, it } from 'vitest';
import { Rng } from '../rng.ts';
import { features } from './features.ts';
import { tsne2d } from './tsne.ts';

describe('t-SNE', () => {
  it('separates two well-separated clusters and is reproducible by seed', () => {
    const rng = new Rng(2);
    const n = 40;
    const d = 10;
    const data = new Float64Array(n * d);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) data[i * d + j] = (i < n / 2 ? 0 : 8) + rng.normal();
    const f = features(data, n, d);
    const globalRandom = Math.random;
    const y = tsne2d(f, { iterations: 200, seed: 1 });
    expect(y).toHaveLength(n);
    const centroid = (a: number, b: number) => {
      const pts = y.slice(a, b);
      return [pts.reduce((s, p) => s + p[0], 0) / pts.length, pts.reduce((s, p) => s + p[1], 0) / pts.length];
    };
    const [ax, ay] = centroid(0, n / 2);
    const [bx, by] = centroid(n / 2, n);
    const between = Math.hypot(ax - bx, ay - by);
    const within = y.slice(0, n / 2).reduce((s, p) => s + Math.hypot(p[0] - ax, p[1] - ay), 0) / (n / 2);
    expect(between).toBeGreaterThan(2 * within);
    expect(tsne2d(f, { iterations: 200, seed: 1 })).toEqual(y);
    expect(Math.random).toBe(globalRandom); // restored after seeding
  });
});
