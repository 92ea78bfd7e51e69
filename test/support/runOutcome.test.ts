import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { browserTestFiles, startsChromium } from './browserFiles.ts';
import { combineOutcomes, type Outcome } from './runOutcome.ts';

const ROOT = new URL('../..', import.meta.url).pathname;
const ok = (project: string, counts: [number, number, number]): Outcome => ({ project, code: 0, signal: null, counts });

describe('npm test: two projects side by side (test/run.ts)', () => {
  it('sums the projects\' summaries and passes only when both passed', () => {
    expect(combineOutcomes([ok('browser', [170, 0, 0]), ok('unit', [1519, 0, 1])])).toEqual({ lines: ['', '1689 passed, 0 failed, 1 skipped'], exitCode: 0 });
    const failed = combineOutcomes([ok('browser', [169, 0, 0]), { project: 'unit', code: 1, signal: null, counts: [1519, 2, 1] }]);
    expect(failed).toEqual({ lines: ['the unit tests exited with status 1', '', '1688 passed, 2 failed, 1 skipped'], exitCode: 1 });
  });

  it('counts a project that ended without its summary, or failed with no failed test, as one failure', () => {
    const killed = combineOutcomes([{ project: 'browser', code: null, signal: 'SIGKILL', counts: null }, ok('unit', [1519, 0, 1])]);
    expect(killed).toEqual({ lines: ['the browser tests were killed (SIGKILL) before their summary', '', '1519 passed, 1 failed, 1 skipped'], exitCode: 1 });
    const erred = combineOutcomes([ok('browser', [170, 0, 0]), { project: 'unit', code: 1, signal: null, counts: [1519, 0, 1] }]);
    expect(erred.lines.at(-1)).toBe('1689 passed, 1 failed, 1 skipped');
    expect(erred.exitCode).toBe(1);
  });

  it('the browser project is exactly the test files that start Chromium', () => {
    const files = browserTestFiles(ROOT);
    expect(files).toContain('test/webgpu/kernels.test.ts');
    expect(files).toContain('test/e2e/hospitalApp.test.ts');
    expect(files).toContain('test/e2e/states.test.ts');
    // test files beside them that start no browser stay unit tests
    expect(files).not.toContain('test/e2e/threadTasks.test.ts');
    expect(files).not.toContain('test/webgpu/benchReport.test.ts');
    expect(files.every((f) => /^test\/(e2e|webgpu)\/\w+\.test\.ts$/.test(f))).toBe(true);
    // and no test file elsewhere starts one (it would run beside a browser file, in the unit project)
    const elsewhere = ['shared', 'server', 'client', 'cli', 'node', 'eval', 'experiments', 'test', 'deploy', 'bench']
      .flatMap((folder) => readdirSync(join(ROOT, folder), { recursive: true, encoding: 'utf8' }).map((f) => `${folder}/${f}`))
      .filter((f) => f.endsWith('.test.ts') && !files.includes(f) && startsChromium(join(ROOT, f)));
    expect(elsewhere).toEqual([]);
  });
});
