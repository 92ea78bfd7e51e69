/** What one project's Vitest process of `npm test` (test/run.ts) ended with. */
export interface Outcome {
  project: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** passed, failed, skipped from the project's summary line (test/support/summaryReporter.ts); null: none printed. */
  counts: [number, number, number] | null;
}

/**
 * The closing lines of `npm test` and its exit status: a line for each project that did not pass, then
 * "N passed, N failed, N skipped" summed over the projects. A project that failed without a failed test
 * (a crash before its summary, an error outside the tests) counts as one failure, so the line never reads
 * all green when the status is not 0.
 */
export function combineOutcomes(outcomes: readonly Outcome[]): { lines: string[]; exitCode: number } {
  const total = [0, 0, 0];
  const lines: string[] = [];
  for (const o of outcomes) {
    if (o.counts) o.counts.forEach((n, i) => (total[i] += n));
    if (o.code !== 0) {
      lines.push(`the ${o.project} tests ${o.signal ? `were killed (${o.signal})` : `exited with status ${o.code}`}${o.counts ? '' : ' before their summary'}`);
      if (!o.counts || o.counts[1] === 0) total[1] += 1;
    }
  }
  lines.push('', `${total[0]} passed, ${total[1]} failed, ${total[2]} skipped`);
  return { lines, exitCode: outcomes.every((o) => o.code === 0) ? 0 : 1 };
}
