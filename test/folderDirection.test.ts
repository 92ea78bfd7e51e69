/**
 * Folders point one way (docs/architecture.md): shared/ imports nothing of ours, the hosts import shared/,
 * evaluation and experiments sit above them, and no two top-level folders import each other, directly or
 * through a cycle. Read from the sources, so a stray `../cli/…` import in eval/ fails here.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const SKIP = new Set(['node_modules', 'dist', '.git', 'state', 'out', 'scratch']);
const IMPORT = /(?:from|import)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g;

function sources(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir)) {
    if (SKIP.has(name) || name.startsWith('.')) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sources(p, out);
    else if (/\.(ts|js|cjs|mjs)$/.test(name)) out.push(p);
  }
  return out;
}

const topOf = (file: string) => relative(ROOT, file).split(/[\\/]/)[0];

/** folder → folder → one file that makes the edge (for the failure message). */
export function folderGraph(files: readonly string[]): Map<string, Map<string, string>> {
  const g = new Map<string, Map<string, string>>();
  for (const f of files) {
    if (dirname(f) === ROOT) continue; // root config files (vite.config.ts, …) are not a folder
    const from = topOf(f);
    for (const m of readFileSync(f, 'utf8').matchAll(IMPORT)) {
      const to = topOf(normalize(join(dirname(f), m[1])));
      if (to === from || to.startsWith('..')) continue;
      if (!g.has(from)) g.set(from, new Map());
      if (!g.get(from)!.has(to)) g.get(from)!.set(to, relative(ROOT, f));
    }
  }
  return g;
}

/** A cycle among folders (as a list of folders), or null. */
export function findCycle(g: Map<string, Map<string, string>>): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (n: string): string[] | null => {
    if (state.get(n) === 'done') return null;
    if (state.get(n) === 'open') return [...stack.slice(stack.indexOf(n)), n];
    state.set(n, 'open');
    stack.push(n);
    for (const m of g.get(n)?.keys() ?? []) {
      const c = visit(m);
      if (c) return c;
    }
    stack.pop();
    state.set(n, 'done');
    return null;
  };
  for (const n of g.keys()) {
    const c = visit(n);
    if (c) return c;
  }
  return null;
}

describe('folders point one way', () => {
  const graph = folderGraph(sources(ROOT));

  it('shared/ imports no other folder of ours', () => {
    expect([...(graph.get('shared') ?? new Map()).entries()]).toEqual([]);
  });

  it('no two top-level folders import each other, directly or through a cycle', () => {
    const cycle = findCycle(graph);
    const where = cycle ? cycle.slice(1).map((to, i) => `${cycle[i]} → ${to} (${graph.get(cycle[i])!.get(to)})`) : [];
    expect(where).toEqual([]);
  });

  it('the hosts do not import evaluation, experiments, benchmarks or cross-folder tests', () => {
    const above = ['eval', 'experiments', 'bench', 'test'];
    const bad: string[] = [];
    for (const host of ['client', 'server', 'cli', 'node']) {
      for (const [to, file] of graph.get(host) ?? []) if (above.includes(to)) bad.push(`${host} → ${to} (${file})`);
    }
    expect(bad).toEqual([]);
  });

  it('finds a cycle when there is one (the check itself can fail)', () => {
    const g = new Map([
      ['eval', new Map([['cli', 'eval/a.ts']])],
      ['cli', new Map([['eval', 'cli/b.ts']])],
    ]);
    expect(findCycle(g)).toEqual(['eval', 'cli', 'eval']);
    expect(findCycle(new Map([['eval', new Map([['cli', 'x']])]]))).toBeNull();
  });
});
