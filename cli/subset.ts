import { Rng } from '../shared/rng.ts';

/** A seeded, class-balanced subset of at most `n` tiles (all of them when there are fewer). */
export function balancedSubset<T extends { label: number }>(tiles: readonly T[], n: number | undefined, seed: number): T[] {
  if (n === undefined || tiles.length <= n) return tiles.slice();
  const rng = new Rng(seed);
  const byClass = new Map<number, T[]>();
  for (const t of tiles) byClass.set(t.label, [...(byClass.get(t.label) ?? []), t]);
  const groups = [...byClass.keys()].sort((a, b) => a - b).map((k) => rng.shuffle(byClass.get(k)!.slice()));
  const out: T[] = [];
  for (let i = 0; out.length < n; i++) for (const g of groups) if (i < g.length && out.length < n) out.push(g[i]);
  return out;
}
