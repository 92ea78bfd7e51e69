import { existsSync, readFileSync, statSync } from 'node:fs';
import { isBuiltin } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';

/**
 * What a program loads at run time, found statically from its entry files: the repository files it
 * imports (static and dynamic imports, re-exports, require; `import type` is erased and not followed)
 * and the npm packages it imports. Used to check that the container image holds everything the server
 * and the simulation need.
 */
export function importClosure(root: string, entries: string[]): { files: string[]; packages: string[] } {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { imports?: Record<string, Record<string, string> | string> };
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = entries.map((e) => resolve(root, e));
  const spec = /(?:^|[\s;])(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|require\(\s*['"]([^'"]+)['"]\s*\)/g;
  while (queue.length) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    if (!existsSync(file)) throw new Error(`${relative(root, file)} (imported) does not exist`);
    files.add(file);
    const src = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
    for (const m of src.matchAll(spec)) {
      if (m[1]) continue; // import type / export type
      const s = (m[2] ?? m[3] ?? m[4])!;
      if (s.startsWith('.')) queue.push(resolveLocal(resolve(dirname(file), s)));
      else if (s.startsWith('#')) {
        const target = pkg.imports?.[s];
        if (!target) throw new Error(`${relative(root, file)}: ${s} is not in package.json imports`);
        for (const t of typeof target === 'string' ? [target] : Object.values(target)) queue.push(resolve(root, t));
      } else if (!isBuiltin(s)) packages.add(s.startsWith('@') ? s.split('/').slice(0, 2).join('/') : s.split('/')[0]);
    }
  }
  return { files: [...files].map((f) => relative(root, f)).sort(), packages: [...packages].sort() };
}

function resolveLocal(p: string): string {
  for (const c of [p, `${p}.ts`, `${p}.js`, join(p, 'index.ts')]) if (existsSync(c) && statSync(c).isFile()) return c;
  return p;
}
