/**
 * Test doubles for the client library's tests: a scripted in-memory WebSocket, a manual clock and a
 * valid RoundConfig.
 * (Not used by the library itself.)
 */
import type { Timers, WebSocketLike } from './connection.ts';
import type { RoundConfig } from './messages.ts';

/** A WebSocket whose server side the test plays: open(), text(), binary(), drop(). */
export class FakeSocket implements WebSocketLike {
  readyState = 0;
  binaryType = 'blob';
  sent: (string | Uint8Array)[] = [];
  closedWith?: { code: number; reason: string };
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  constructor(readonly url: string) {}
  send(data: string | ArrayBuffer | ArrayBufferView<ArrayBuffer>): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    if (typeof data === 'string') this.sent.push(data);
    else if (data instanceof ArrayBuffer) this.sent.push(new Uint8Array(data).slice());
    else this.sent.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice());
  }
  /** The client closes: the close event follows asynchronously, as in browsers and `ws`. */
  close(code = 1000, reason = ''): void {
    if (this.readyState >= 2) return;
    this.readyState = 2;
    this.closedWith = { code, reason };
    queueMicrotask(() => {
      this.readyState = 3;
      this.onclose?.({ code, reason });
    });
  }
  // ---- the server's side ----
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  text(m: unknown): void {
    this.onmessage?.({ data: typeof m === 'string' ? m : JSON.stringify(m) });
  }
  binary(b: Uint8Array): void {
    this.onmessage?.({ data: b.slice().buffer });
  }
  /** The server (or the network) closes the connection with `code`. */
  drop(code: number, reason = ''): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  /** The text messages the client sent, parsed. */
  json(): Record<string, unknown>[] {
    return this.sent.filter((s): s is string => typeof s === 'string').map((s) => JSON.parse(s) as Record<string, unknown>);
  }
}

/** A clock that moves only when the test says so. */
export class ManualTimers implements Timers {
  private t = 0;
  private nextId = 1;
  private pending = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.pending.set(id, { at: this.t + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }
  /** Delays of the timers now pending, from now. */
  get delays(): number[] {
    return [...this.pending.values()].map((p) => p.at - this.t);
  }
  /** Move the clock forward, running every timer that falls due (in order). */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.pending.entries()].filter(([, p]) => p.at <= end).sort((a, b) => a[1].at - b[1].at || a[0] - b[0])[0];
      if (!due) break;
      this.pending.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
    }
    this.t = end;
  }
}

/** A valid RoundConfig of round 2, attempt 1 (its `model` is a valid GAN config). */
export const roundConfig: RoundConfig = {
  round: 2,
  attempt: 1,
  rounds: 3,
  ganType: 'acgan',
  localSteps: 1,
  learningRate: { generator: 2e-4, discriminator: 2e-4 },
  imageSize: 32,
  batchNorm: 'average',
  examples: { min: 1, max: 10 },
  deadlineSeconds: 5,
  model: { imageSize: 32 },
};
