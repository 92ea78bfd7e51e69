export {};
/**
 * `npm run bench` — images/s of one full GAN training step (D and G), stock tfjs-webgpu against this
 * project's fast path, in one run. With DAWN_NODE set it runs in Node on WebGPU through Dawn; otherwise
 * in headless Chromium (SwiftShader here). `--profile` adds per-step GPU call counts, GPU time per
 * program and V8 CPU profiles. Options: see bench/ganCli.ts.
 */
const argv = process.argv.slice(2);
try {
  if (process.env.DAWN_NODE) await (await import('./ganNode.ts')).runNodeBench(argv);
  else await (await import('./ganBrowser.ts')).runBrowserBench(argv);
  process.exit(0);
} catch (e) {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
}
