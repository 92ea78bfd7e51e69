import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Keeping server memory at O(model) with updates of tens of MB.
 *
 * Receiving one update makes ws hold the socket chunks and then a contiguous copy (2× the update), which
 * become garbage once the update is aggregated. V8 collects external (ArrayBuffer) garbage only after it
 * has grown by ~64 MiB, so without help RSS drifts up by several model sizes during a round. After each
 * large message the transport asks for a garbage collection here; at one per update (a few per round per
 * hospital) its cost (~1 ms) is negligible next to decoding the update.
 *
 * `gc` is obtained without a command-line flag (npm start's command line is fixed): the flag is set at
 * run time and the function is taken from a fresh context. If that ever fails, this is a no-op.
 */
type GcFn = (opts?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;

let gcFn: GcFn | undefined;
let tried = false;

function gcFunction(): GcFn | undefined {
  if (!tried) {
    tried = true;
    const existing = (globalThis as { gc?: GcFn }).gc;
    if (typeof existing === 'function') gcFn = existing;
    else {
      try {
        setFlagsFromString('--expose-gc');
        const f = runInNewContext('typeof gc === "function" ? gc : undefined') as GcFn | undefined;
        gcFn = f;
      } catch {
        gcFn = undefined;
      }
    }
  }
  return gcFn;
}

/** Collect the garbage of a large message just handled (a no-op if gc is unavailable). */
export function releaseLargeMessageGarbage(): void {
  gcFunction()?.({ type: 'major' });
}

/**
 * Collect young garbage while a large message is being received (a no-op if gc is unavailable): the
 * socket chunks it arrives in are copied into the message's buffer and dropped (server/receiveInPlace.ts),
 * but their memory is only returned on a garbage collection. A minor collection (scavenge) every few
 * megabytes keeps them to a few megabytes instead of the whole message; it costs well under a millisecond
 * (the young generation holds little else).
 */
export function releaseReceiveGarbage(): void {
  gcFunction()?.({ type: 'minor' });
}
