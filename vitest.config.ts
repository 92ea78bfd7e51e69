import { configDefaults, defineConfig } from 'vitest/config';
import { tfjsGradientsBundle } from './test/setup/tfjsGradients.ts';
import { browserTestFiles } from './test/support/browserFiles.ts';

const TFJS_UNION = new URL('./test/setup/tfjsUnion.ts', import.meta.url).pathname;
/** The files that drive Chromium: the "browser" project; every other test file is "unit". */
const BROWSER = browserTestFiles(new URL('.', import.meta.url).pathname);
const INCLUDE = ['shared/**/*.test.ts', 'server/**/*.test.ts', 'client/**/*.test.ts', 'cli/**/*.test.ts', 'node/**/*.test.ts', 'eval/**/*.test.ts', 'experiments/**/*.test.ts', 'test/**/*.test.ts', 'deploy/**/*.test.ts'];

export default defineConfig({
  resolve: {
    // tfjs-core's gradients without the rest of the @tensorflow/tfjs bundle (see test/setup/tfjsGradients.ts).
    alias: [{ find: /^#tfjs-gradients$/, replacement: tfjsGradientsBundle() }],
  },
  plugins: [
    {
      // Where a test needs the bundle, it loads after this project's gradients (see test/setup/tfjsUnion.ts).
      name: 'tfjs-after-project-gradients',
      enforce: 'pre',
      resolveId: (source, importer) => (source === '@tensorflow/tfjs' && importer !== TFJS_UNION ? TFJS_UNION : undefined),
    },
  ],
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    setupFiles: ['test/setup/tfCpu.ts'],
    reporters: ['default', './test/support/summaryReporter.ts'],
    // `npm test` (test/run.ts) runs the two projects as two processes side by side, each one file at a time.
    projects: [
      { extends: true, test: { name: 'browser', include: BROWSER } },
      { extends: true, test: { name: 'unit', include: INCLUDE, exclude: [...configDefaults.exclude, ...BROWSER] } },
    ],
  },
});
