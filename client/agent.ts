/**
 * What the web app says of itself in its hello (`agent`, docs/protocol.md): its name and version and the
 * engine it trains on, e.g. `fedgan-web/0.1 (wasm)`, or `fedgan-web/0.1 (webgpu; software renderer)`. The
 * server logs it; the operator console reads it back (console/wording.ts engineText).
 */
import type { BackendName } from '../shared/backend.ts';

export const WEB_APP = 'fedgan-web/0.1';

export function webAppAgent(engine: BackendName | 'unknown', softwareRenderer: boolean): string {
  return `${WEB_APP} (${engine}${softwareRenderer ? '; software renderer' : ''})`;
}

/** The engine a web app's agent names (any version of it), or null for other software. */
export function readWebAppAgent(agent: string): { engine: BackendName; softwareRenderer: boolean } | null {
  const m = /^fedgan-web\/\S+ \((webgpu|webgl|wasm|cpu)(; software renderer)?\)$/.exec(agent);
  return m ? { engine: m[1] as BackendName, softwareRenderer: !!m[2] } : null;
}
