import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/** shared/ runs in the browser worker, in Node and on the server: no Node-only APIs, no DOM. */
function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.(ts|js)$/.test(n) && !/\.test\.ts$/.test(n) ? [p] : [];
  });
}

const NODE_MODULES = ['fs', 'path', 'os', 'crypto', 'child_process', 'http', 'https', 'net', 'zlib', 'worker_threads', 'stream', 'url', 'util', 'buffer', 'module', 'ws'];
const DOM_GLOBALS = ['document', 'window', 'localStorage', 'sessionStorage', 'HTMLElement', 'indexedDB'];

describe('shared/ is isomorphic', () => {
  const files = sources('shared').filter((f) => !f.endsWith('.node.cjs'));

  it('has sources to check', () => expect(files.length).toBeGreaterThan(30));

  it.each(files)('%s imports no Node-only module and touches no DOM global', (file) => {
    const code = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|\s)\/\/.*$/gm, '$1');
    const imports = [...code.matchAll(/^\s*(?:import|export)\b[^;'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]|\b(?:import|require)\s*\(\s*['"]([^'"]+)['"]\s*\)/gm)].map((m) => m[1] ?? m[2] ?? m[3]);
    for (const spec of imports) {
      expect(spec.startsWith('node:'), `${file} imports ${spec}`).toBe(false);
      expect(NODE_MODULES.includes(spec), `${file} imports ${spec}`).toBe(false);
    }
    for (const g of DOM_GLOBALS) expect(new RegExp(`(^|[^.\\w])${g}\\s*[.[(]`).test(code), `${file} uses ${g}`).toBe(false);
    expect(/\bprocess\.(env|argv|exit)/.test(code), `${file} uses process`).toBe(false);
    expect(/\bBuffer\./.test(code), `${file} uses Buffer`).toBe(false);
  });
});
