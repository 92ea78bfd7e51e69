/**
 * `npm test`: the suite as two Vitest processes side by side, the "browser" project (the test files that drive
 * Chromium, one at a time) and the "unit" project (every other file, one at a time). A browser file keeps both
 * cores of a small machine busy on its own (Chromium's processes, SwiftShader's threads), so two at once slow
 * each other's timed waits into flakes; a unit file beside one costs it little. One Vitest process with two
 * workers would put two browser files side by side; with one worker (its default on 2 cores) the unit files
 * wait for the browser files.
 *
 * Arguments go to both processes (`npm test -- cli/` runs the matching files of each). Each output line is
 * prefixed with its project; the last line sums both: "N passed, N failed, N skipped". The exit status is
 * 0 only when both passed.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { combineOutcomes, type Outcome } from './support/runOutcome.ts';

const VITEST = new URL('../node_modules/vitest/vitest.mjs', import.meta.url).pathname;
const SUMMARY = /^(\d+) passed, (\d+) failed, (\d+) skipped$/;

function runProject(project: string, args: readonly string[]): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [VITEST, 'run', '--project', project, '--maxWorkers', '1', '--passWithNoTests', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let counts: Outcome['counts'] = null;
    const relay = (stream: NodeJS.ReadableStream, out: NodeJS.WritableStream) =>
      createInterface({ input: stream }).on('line', (line) => {
        const m = SUMMARY.exec(line.trim());
        if (m) counts = [Number(m[1]), Number(m[2]), Number(m[3])];
        out.write(`[${project}] ${line}\n`);
      });
    relay(child.stdout, process.stdout);
    relay(child.stderr, process.stderr);
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ project, code, signal, counts }));
  });
}

const outcomes = await Promise.all(['browser', 'unit'].map((p) => runProject(p, process.argv.slice(2))));
const { lines, exitCode } = combineOutcomes(outcomes);
process.stdout.write(lines.join('\n') + '\n');
process.exitCode = exitCode;
