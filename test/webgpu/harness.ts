import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { bundleForBrowser, chromiumAvailable, openWebGPUPage, type WebGPUPage } from '../../bench/chromiumPage.ts';
import type { Diff } from './pageSupport.ts';

/**
 * One headless Chromium (WebGPU on SwiftShader) per test file, running test/webgpu/page.ts. The tests
 * call the page's functions through `call` and assert on the numbers they return.
 */
export const hasChromium = chromiumAvailable();

export interface PageApi {
  call<T>(fn: string, arg?: unknown): Promise<T>;
  close(): Promise<void>;
}

export async function openTestPage(): Promise<PageApi> {
  const bundle = await bundleForBrowser(fileURLToPath(new URL('./page.ts', import.meta.url)));
  const logs: string[] = [];
  const p: WebGPUPage = await openWebGPUPage(bundle, { onConsole: (l) => logs.push(l) });
  return {
    async call<T>(fn: string, arg?: unknown): Promise<T> {
      try {
        return (await p.page.evaluate(
          ([name, a]) => (globalThis as unknown as { __t: Record<string, (x: unknown) => Promise<unknown>> }).__t[name as string](a),
          [fn, arg] as const,
        )) as T;
      } catch (e) {
        throw new Error(`${fn} failed in the page: ${e instanceof Error ? e.message : e}\n${logs.slice(-20).join('\n')}`);
      }
    },
    close: () => p.close(),
  };
}

/**
 * The kernels' equality bound: finite, against a reference that is not all zeros (an invalid command
 * buffer reads back zeros, which would let anything pass), within 1e-4 relative in norm and in max.
 */
export function expectClose(d: Diff, what: string): void {
  expect(d.finite, what).toBe(true);
  expect(d.maxRef, what).toBeGreaterThan(0);
  expect(d.rel, what).toBeLessThan(1e-4);
  expect(d.maxRel, what).toBeLessThan(1e-4);
}
