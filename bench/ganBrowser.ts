/**
 * The GAN benchmark in headless Chromium (WebGPU; SwiftShader on a machine without a GPU). Bundles
 * bench/ganPage.ts with esbuild, runs it, writes bench.json and, with --profile, V8 CPU profiles taken
 * over the DevTools protocol.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleForBrowser, openWebGPUPage, TIMESTAMP_FLAGS } from './chromiumPage.ts';
import type { CpuProfile } from './cpuProfileSummary.ts';
import type { BenchRow } from './ganBench.ts';
import { formatReport, parseBenchArgs, SWIFTSHADER_CASES } from './ganCli.ts';

export async function runBrowserBench(argv: string[]): Promise<void> {
  const args = parseBenchArgs(argv, { cases: SWIFTSHADER_CASES, steps: 2, warmup: 1 });
  const bundle = await bundleForBrowser(fileURLToPath(new URL('./ganPage.ts', import.meta.url)));
  const { page, close } = await openWebGPUPage(bundle, { flags: args.profile ? TIMESTAMP_FLAGS : [], onConsole: (l) => console.log(`  ${l}`) });
  const profiles: { label: string; profile: CpuProfile }[] = [];
  try {
    if (args.profile) {
      mkdirSync(args.profileDir, { recursive: true });
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 100 });
      await page.exposeFunction('__cpuProfile', async (action: 'start' | 'stop', label: string) => {
        if (action === 'start') {
          await cdp.send('Profiler.start');
          return;
        }
        const { profile } = (await cdp.send('Profiler.stop')) as unknown as { profile: CpuProfile };
        writeFileSync(join(args.profileDir, `${label}.cpuprofile`), JSON.stringify(profile));
        profiles.push({ label, profile });
      });
    }
    const { device, rows } = await page.evaluate(
      (a) => (globalThis as unknown as { __bench: { run(x: typeof a): Promise<{ device: string; rows: BenchRow[] }> } }).__bench.run(a),
      { cases: args.cases, variants: args.variants, steps: args.steps, warmup: args.warmup, profile: args.profile },
    );
    writeFileSync(args.out, JSON.stringify({ host: 'chromium', device, date: new Date().toISOString(), args, rows }, null, 2));
    console.log('\n' + formatReport(`headless Chromium, ${device}`, rows, profiles, args.torch));
  } finally {
    await close();
  }
}
