import type { WebSocket } from 'ws';

/**
 * Receiving large WebSocket frames into one buffer as they arrive, instead of ws's default of keeping
 * every socket chunk until the frame is complete and then copying them all into a new buffer.
 *
 * With the default, an update of S bytes costs 2·S at the moment it completes (the chunks, garbage from
 * then on, plus the copy), on top of the 2× model of FedAvg's float64 running sums: the server's peak
 * was 3.6–5.1× the model, against a budget of 4×. Gathering in place costs S: each chunk is copied into
 * the frame's buffer on arrival and dropped. When the frame is complete the buffer is handed back to ws
 * as its only buffered chunk, of exactly the payload's length, which ws's `consume` then returns as is
 * (no copy); ws unmasks it in place and, for an unfragmented message, emits it as the message itself.
 *
 * This relies on internals of ws's Receiver (pinned ws 8.x: `_write`, `startLoop`, `_state`, the GET_DATA
 * state number, `_payloadLength`, `_compressed`, `_buffers`, `_bufferedBytes`). They are checked before
 * patching, and server/receiveInPlace.test.ts checks the behaviour over real sockets; if they ever change,
 * `receiveLargeFramesInPlace` returns false and ws's own buffering applies (correct, only 2× per frame).
 */

/** ws 8.x Receiver state "reading the payload" (lib/receiver.js: GET_DATA = 4). */
const GET_DATA = 4;

/** Frames at least this large are gathered in place (smaller ones: ws's default path). */
export const IN_PLACE_MIN_BYTES = 1 << 20;

type WriteCallback = (error?: Error | null) => void;

interface ReceiverInternals {
  _write(chunk: Buffer, encoding: BufferEncoding, cb: WriteCallback): void;
  startLoop(cb: WriteCallback): void;
  _state: number;
  _payloadLength: number;
  _compressed: boolean;
  _buffers: Buffer[];
  _bufferedBytes: number;
}

function receiverOf(ws: WebSocket): ReceiverInternals | undefined {
  const r = (ws as unknown as { _receiver?: Partial<ReceiverInternals> | null })._receiver;
  if (
    r &&
    typeof r._write === 'function' &&
    typeof r.startLoop === 'function' &&
    typeof r._state === 'number' &&
    typeof r._payloadLength === 'number' &&
    typeof r._compressed === 'boolean' &&
    Array.isArray(r._buffers) &&
    typeof r._bufferedBytes === 'number'
  ) {
    return r as ReceiverInternals;
  }
  return undefined;
}

export interface InPlaceOptions {
  /** Frames at least this large are gathered in place (default IN_PLACE_MIN_BYTES). */
  minBytes?: number;
  /**
   * Called each time about `collectEveryBytes` more of a gathered frame has arrived, e.g. to collect the
   * socket chunks already copied (they are garbage, but hold memory until a garbage collection).
   */
  collect?: () => void;
  /** Default 4 MiB. */
  collectEveryBytes?: number;
  /**
   * Where a gathered frame's payload goes: a buffer of exactly `n` bytes (default Buffer.allocUnsafe),
   * e.g. a reused one (server/receivePool.ts).
   */
  allocate?: (n: number) => Buffer;
}

/**
 * Make this connection gather data frames of at least `minBytes` (uncompressed; ws has checked the length
 * against its `maxPayload` by the time it reads the payload) into one buffer as they arrive. Returns
 * false, changing nothing, when ws's receiver does not have the expected shape.
 */
export function receiveLargeFramesInPlace(ws: WebSocket, opts: InPlaceOptions = {}): boolean {
  const receiver = receiverOf(ws);
  if (!receiver) return false;
  const minBytes = Math.max(1, opts.minBytes ?? IN_PLACE_MIN_BYTES);
  const collect = opts.collect;
  const collectEvery = opts.collectEveryBytes ?? 4 << 20;
  const allocate = opts.allocate ?? ((n: number) => Buffer.allocUnsafe(n));
  const original = receiver._write;
  /** The payload of the frame being gathered, how much of it has arrived, and when to collect next. */
  let target: Buffer | undefined;
  let filled = 0;
  let nextCollect = 0;

  receiver._write = function gatherInPlace(this: ReceiverInternals, chunk: Buffer, encoding: BufferEncoding, cb: WriteCallback): void {
    if (target === undefined) {
      // Only once the frame header is parsed and the payload is incomplete (otherwise ws consumed it).
      if (this._state !== GET_DATA || this._compressed || this._payloadLength < minBytes) {
        original.call(this, chunk, encoding, cb);
        return;
      }
      target = allocate(this._payloadLength);
      filled = 0;
      // What is buffered now is the start of this payload (the header bytes were consumed).
      for (const b of this._buffers) {
        target.set(b, filled);
        filled += b.length;
      }
      this._buffers = [];
      this._bufferedBytes = 0;
      nextCollect = filled + collectEvery;
    }
    const take = Math.min(chunk.length, target.length - filled);
    target.set(take === chunk.length ? chunk : chunk.subarray(0, take), filled);
    filled += take;
    if (filled < target.length) {
      if (collect && filled >= nextCollect) {
        nextCollect = filled + collectEvery;
        collect();
      }
      cb();
      return;
    }
    // Complete: hand it to ws as one chunk of exactly the payload length (consume returns it as is),
    // followed by whatever of this chunk belongs to the next frames.
    const payload = target;
    target = undefined;
    this._buffers = take < chunk.length ? [payload, chunk.subarray(take)] : [payload];
    this._bufferedBytes = payload.length + (chunk.length - take);
    this.startLoop(cb);
  };
  return true;
}
