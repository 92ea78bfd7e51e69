import { fileURLToPath } from 'node:url';
import { bundleForBrowser, chromiumAvailable, openWebGPUPage, type WebGPUPage } from '../../bench/chromiumPage.ts';

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
