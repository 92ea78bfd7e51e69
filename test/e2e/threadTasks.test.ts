/** test/e2e/harness.ts threadTasks: the tasks of one page's main thread, read from a Chromium trace. */
import { describe, expect, it } from 'vitest';
import { threadTasks } from './harness.ts';

const marker = { name: 'TimeStamp', ph: 'I', pid: 7, tid: 11, ts: 1_000, args: { data: { message: 'hospital-a' } } };
const task = (pid: number, tid: number, ts: number, dur: number, tdur: number, name = 'RunTask') => ({ name, ph: 'X', pid, tid, ts, dur, tdur });

describe('threadTasks', () => {
  it('keeps the RunTasks of the marked thread, in time order, in ms of wall and thread time', () => {
    const trace = {
      traceEvents: [
        task(7, 11, 5_000, 86_500, 38_250),
        task(7, 11, 2_000, 1_500, 1_000),
        marker,
        task(7, 12, 3_000, 90_000, 90_000), // the page's worker thread
        task(8, 11, 3_000, 90_000, 90_000), // another page's renderer
        task(7, 11, 4_000, 60_000, 60_000, 'FunctionCall'), // inside a task, not a task
      ],
    };
    expect(threadTasks(JSON.stringify(trace), 'hospital-a')).toEqual([
      { startUs: 2_000, wallMs: 1.5, cpuMs: 1 },
      { startUs: 5_000, wallMs: 86.5, cpuMs: 38.25 },
    ]);
    // Chromium also writes a bare array of events.
    expect(threadTasks(JSON.stringify(trace.traceEvents), 'hospital-a')).toHaveLength(2);
  });

  it('refuses a trace without the marker, or a task without thread time', () => {
    expect(() => threadTasks(JSON.stringify({ traceEvents: [task(7, 11, 0, 10, 10)] }), 'hospital-a')).toThrow('the trace has no console.timeStamp("hospital-a")');
    const noCpu = { traceEvents: [marker, { name: 'RunTask', ph: 'X', pid: 7, tid: 11, ts: 2_000, dur: 100 }] };
    expect(() => threadTasks(JSON.stringify(noCpu), 'hospital-a')).toThrow('a RunTask at 2000 µs has no thread time in the trace');
  });
});
