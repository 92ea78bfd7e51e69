/**
 * tfjs-core's own gradient definitions (and chained ops) for the Node tests, as one small CommonJS file.
 *
 * In Node, `#tfjs-gradients` (package.json "imports", used by shared/gan/gradients.ts) loads the whole
 * `@tensorflow/tfjs` bundle for its side effect of registering every gradient: tfjs-core's CommonJS build
 * ships without them, and its ESM build cannot be imported by Node (extensionless paths). That bundle also
 * loads tfjs-layers, -converter, -data and -backend-webgl, which took about 0.15–0.2 s of the setup of
 * every test file (test/setup/tfCpu.ts). vitest.config.ts points `#tfjs-gradients` at this file's bundle
 * instead: the two tfjs-core modules the @tensorflow/tfjs bundle inlines for its effect on tfjs-core,
 * `dist/register_all_gradients.js` (the same 101 gradients, from the same sources) and
 * `dist/public/chained_ops/register_all_chained_ops.js` (the Tensor methods, `x.slice(…)` and the like),
 * bundled once with esbuild (tsx's) into node_modules/.cache. Like the @tensorflow/tfjs bundle, it
 * registers them onto tfjs's global registry and Tensor class. What the bundle adds besides (the WebGL
 * backend's flags and kernels, with no WebGL backend in Node; layers, converter, data) comes with it where
 * a test imports `@tensorflow/tfjs` (see ./tfjsUnion.ts). The server, the CLI and the processes the tests
 * spawn still load `#tfjs-gradients` as before.
 */
import { buildSync } from 'esbuild';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');

/** The bundle's path, built first when missing (named by the tfjs-core version it was built from). */
export function tfjsGradientsBundle(): string {
  const core = join(ROOT, 'node_modules', '@tensorflow', 'tfjs-core');
  const { version } = JSON.parse(readFileSync(join(core, 'package.json'), 'utf8')) as { version: string };
  const out = join(ROOT, 'node_modules', '.cache', 'fedgan-tests', `tfjs-core-${version}-gradients-chained-ops.cjs`);
  if (existsSync(out)) return out;
  const built = buildSync({
    // What @tensorflow/tfjs's index adds to tfjs-core (its dist/index.js imports the same two modules).
    stdin: { contents: `import './dist/register_all_gradients.js';\nimport './dist/public/chained_ops/register_all_chained_ops.js';\n`, resolveDir: core },
    bundle: true,
    platform: 'node',
    format: 'cjs',
    write: false,
    logLevel: 'error',
    banner: { js: `// tfjs-core ${version} dist/register_all_gradients.js and dist/public/chained_ops/register_all_chained_ops.js, bundled by test/setup/tfjsGradients.ts (Node tests only).` },
  });
  mkdirSync(dirname(out), { recursive: true });
  // Written under a private name and renamed, so a concurrent run never reads half a file.
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, built.outputFiles[0].contents);
  renameSync(tmp, out);
  return out;
}
