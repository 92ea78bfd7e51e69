/**
 * Bundles the Node GAN benchmark (tfjs and all) into one ES module, so it runs on the GPU machine
 * where there is no node_modules: `node --import tsx bench/ganBundle.ts [out]` (default
 * .gpu-carry/gan-bench.mjs). Unminified, so V8 CPU profiles keep function names.
 */
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const out = process.argv[2] ?? '.gpu-carry/gan-bench.mjs';
const result = await build({
  entryPoints: [fileURLToPath(new URL('./ganNodeMain.ts', import.meta.url))],
  outfile: out,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // CommonJS modules inside an ES bundle call require(): give them Node's.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
  metafile: true,
});
const bytes = Object.values(result.metafile.outputs).reduce((s, o) => s + o.bytes, 0);
console.log(`wrote ${out} (${(bytes / 1e6).toFixed(1)} MB)`);
