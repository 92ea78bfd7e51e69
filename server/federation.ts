import type { FedConfig } from '../shared/config/fedConfig.ts';
import type { Logger } from './log.ts';
import { releaseLargeMessageGarbage } from './memory.ts';
import type { Metrics } from './metrics.ts';
import type { ReceiveBufferPool } from './receivePool.ts';
import { RoundMachine, type CheckpointSink, type Clock } from './roundMachine.ts';
import type { TransportHandlers } from './transport.ts';

export type { StatusJson } from './roundMachine.ts';

/**
 * The federation as the server runs it: the round state machine (server/roundMachine.ts, pure, tested with
 * a fake clock) wired to the real clock, the transport (it is the transport's TransportHandlers: peers are
 * server/transport.ts Peers) and the server's memory management (the receive buffer pool, garbage
 * collection after large messages). Nothing about rounds is decided here.
 *
 *   Transport ──onJoin/onLeave/onText/onUpdate──▶ Federation = RoundMachine(realClock, memory hooks)
 *      ▲                                                │
 *      └──────────── Peer.send / sendBinary / error ◀───┘──▶ CheckpointStore (encode, write), Metrics, Logger
 */

export interface FederationOptions {
  fed: FedConfig;
  /** server/state.ts CheckpointStore. */
  store: CheckpointSink;
  metrics: Metrics;
  log: Logger;
  /** Overrides `fed.retry.initialDelaySeconds`, in milliseconds (tests use a few ms). */
  retryDelayMs?: number;
  /** Where the transport receives updates: their buffers are given back once the aggregator is done with them. */
  receivePool?: ReceiveBufferPool;
  /** A hospital's own cap on the examples its update counts with (tokens-file `maxExamples`). */
  exampleCap?: (hospital: string) => number | undefined;
}

/** Wall-clock time with sub-millisecond resolution, and timers that do not keep the process alive. */
export const realClock: Clock = {
  now: () => performance.timeOrigin + performance.now(),
  setTimer: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimer: (t) => clearTimeout(t as NodeJS.Timeout),
};

export class Federation extends RoundMachine implements TransportHandlers {
  constructor(opts: FederationOptions) {
    const pool = opts.receivePool;
    super({
      fed: opts.fed,
      store: opts.store,
      metrics: opts.metrics,
      log: opts.log,
      clock: realClock,
      retryDelayMs: opts.retryDelayMs,
      exampleCap: opts.exampleCap,
      memory: {
        recycle: (payload) => pool?.recycle(payload),
        // No upload until the next round: do not hold an update-sized buffer meanwhile.
        roundClosed: () => pool?.clear(),
        // The transport's own collection after the last update is queued behind this turn: let it run first.
        beforeAggregate: () => new Promise<void>((res) => setImmediate(res)).then(releaseLargeMessageGarbage),
        release: releaseLargeMessageGarbage,
      },
    });
  }
}
