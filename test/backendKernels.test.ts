import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const ROOT = new URL('..', import.meta.url).pathname;

/** Run test/fixtures/backendGradients.ts in a fresh Node process on `backend`. */
function gradients(backend: string): { backend: string; resize: number[]; conv: number[] } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/fixtures/backendGradients.ts', backend], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`backendGradients.ts ${backend} exited ${r.status}:\n${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1)!);
}

// The same inputs as the fixture, and the gradients by plain loops.
const seq = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));
function expectedResize(): number[] {
  const w = seq(2 * 4 * 4, (i) => i + 1);
  return seq(2 * 2 * 2, (k) => {
    const [b, i, j] = [Math.floor(k / 4), Math.floor(k / 2) % 2, k % 2];
    let s = 0;
    for (const di of [0, 1]) for (const dj of [0, 1]) s += w[b * 16 + (2 * i + di) * 4 + (2 * j + dj)];
    return s;
  });
}
function expectedConvFilter(): number[] {
  const x = seq(2 * 3 * 3 * 2, (i) => ((i * 7) % 11) - 5);
  const u = seq(2 * 3 * 3 * 2, (i) => ((i * 5) % 7) - 3);
  const out = new Array(3 * 3 * 2 * 2).fill(0);
  for (let kh = 0; kh < 3; kh++)
    for (let kw = 0; kw < 3; kw++)
      for (let ci = 0; ci < 2; ci++)
        for (let co = 0; co < 2; co++) {
          let s = 0;
          for (let b = 0; b < 2; b++)
            for (let y = 0; y < 3; y++)
              for (let xx = 0; xx < 3; xx++) {
                const sy = y + kh - 1;
                const sx = xx + kw - 1;
                if (sy < 0 || sy >= 3 || sx < 0 || sx >= 3) continue;
                s += x[((b * 3 + sy) * 3 + sx) * 2 + ci] * u[((b * 3 + y) * 3 + xx) * 2 + co];
              }
          out[((kh * 3 + kw) * 2 + ci) * 2 + co] = s;
        }
  return out;
}

describe('initBackend gives every host a backend that trains (shared/backend.ts)', () => {
  // The web app's worker on the CPU fallback, the server and the Node hospitals all start tfjs through it:
  // tfjs 4.22's cpu ResizeNearestNeighborGrad reads the wrong rows for batch > 1, and its wasm backend has
  // no Conv2DBackpropFilter, unless this project's kernels are registered with the backend.
  it.each(['cpu', 'wasm'])('%s: the upsampling gradient at batch 2 and the convolution filter gradient equal plain loops', (name) => {
    const g = gradients(name);
    expect(g.backend).toBe(name);
    expect(g.resize).toEqual(expectedResize());
    const want = expectedConvFilter();
    expect(g.conv).toHaveLength(want.length);
    for (let i = 0; i < want.length; i++) expect(g.conv[i]).toBeCloseTo(want[i], 4);
  }, 120_000);
});
