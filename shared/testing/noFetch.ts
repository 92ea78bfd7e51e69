/**
 * Forbid network access in a test: every fetch is recorded and fails. The feature networks must load
 * from the weights bundled in their npm package, so tests assert `fetched` stays empty.
 */
export function blockFetch(): { fetched: string[]; restore(): void } {
  const realFetch = globalThis.fetch;
  const fetched: string[] = [];
  globalThis.fetch = (async (input: unknown) => {
    fetched.push(String(input));
    throw new Error(`unexpected fetch of ${String(input)}`);
  }) as typeof fetch;
  return {
    fetched,
    restore() {
      globalThis.fetch = realFetch;
    },
  };
}
