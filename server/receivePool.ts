/**
 * One reusable buffer for receiving updates, so that a round's uploads do not allocate and free a
 * model-sized buffer each.
 *
 * Why: a freed multi-megabyte buffer raises glibc's dynamic mmap threshold to its own size, so the next
 * one of the same size comes from the brk heap; with the socket chunks it arrives in freed around it,
 * that heap grew to 2–3× the update and stayed there (measured with /proc/self/smaps during the 100-client
 * bench: up to 70 MB of heap for 20 MB updates, RSS peaks up to 4.8× the model). Reusing one buffer keeps
 * exactly one update-sized block for the whole round.
 *
 * A buffer may only be recycled once nothing refers to its bytes any more (FedAvg copies every update
 * into its sums; the coordinate-wise aggregators keep them, so their updates are never recycled).
 */
/** Extra bytes allocated beyond the first request, so that slightly larger frames still fit. */
export const RECEIVE_HEADROOM_BYTES = 64 * 1024;

export class ReceiveBufferPool {
  private spare: Buffer | undefined;
  /** The ArrayBuffers this pool handed out, so that recycle() accepts nothing else. */
  private readonly issued = new WeakMap<ArrayBufferLike, Buffer>();
  private allocated = 0;

  /**
   * A buffer of exactly `n` bytes at offset 0 of an ArrayBuffer of this pool: a view of the spare when it
   * is large enough, else of a new one with some headroom (updates of one model differ in size by a few
   * bytes of frame header, and one that did not fit would mean two update-sized buffers at once).
   */
  take(n: number): Buffer {
    const spare = this.spare;
    this.spare = undefined; // too small: let it go before allocating
    if (spare && spare.length >= n) return spare.subarray(0, n);
    const b = Buffer.allocUnsafeSlow(n + RECEIVE_HEADROOM_BYTES);
    this.issued.set(b.buffer, b);
    this.allocated++;
    return b.subarray(0, n);
  }

  /**
   * Give back the buffer behind `bytes` (the buffer itself or any view into it) for the next take().
   * Ignored for memory this pool did not hand out. The caller must hold no other reference to it.
   */
  recycle(bytes: Uint8Array): void {
    const b = this.issued.get(bytes.buffer);
    if (b && b !== this.spare) this.spare = b;
  }

  /** Drop the spare (e.g. when a round ends, before its aggregate is built). */
  clear(): void {
    this.spare = undefined;
  }

  /** Bytes held as spare (0 or one buffer). */
  get spareBytes(): number {
    return this.spare?.length ?? 0;
  }

  /** Buffers allocated so far (each take() that could not reuse the spare). */
  get allocations(): number {
    return this.allocated;
  }
}
