/**
 * The test files that drive headless Chromium: the web app end to end (test/e2e/) and the WebGPU kernels on
 * SwiftShader (test/webgpu/). Vitest runs them as the "browser" project and everything else as "unit"
 * (vitest.config.ts); `npm test` runs the two side by side (test/run.ts).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The folders that hold browser test files, relative to the repository root. */
const FOLDERS = ['test/e2e', 'test/webgpu'];
/** What a browser test calls to start Chromium (test/e2e/harness.ts, test/webgpu/harness.ts, bench/chromiumPage.ts). */
const LAUNCHES = /\b(launchChromium|openTestPage|openWebGPUPage)\(|\bchromium\.launch\(/;

/** Whether the test file at `path` starts Chromium. */
export function startsChromium(path: string): boolean {
  return LAUNCHES.test(readFileSync(path, 'utf8'));
}

/** The browser test files, relative to `root`: the *.test.ts files of FOLDERS that start Chromium. */
export function browserTestFiles(root: string): string[] {
  return FOLDERS.flatMap((folder) =>
    readdirSync(join(root, folder))
      .filter((name) => name.endsWith('.test.ts') && startsChromium(join(root, folder, name)))
      .map((name) => `${folder}/${name}`),
  ).sort();
}
