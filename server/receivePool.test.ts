import { describe, expect, it } from 'vitest';
import { RECEIVE_HEADROOM_BYTES, ReceiveBufferPool } from './receivePool.ts';

describe('ReceiveBufferPool', () => {
  it('hands out exactly n bytes at offset 0 of its own memory, with headroom behind', () => {
    const pool = new ReceiveBufferPool();
    const b = pool.take(1000);
    expect(b.length).toBe(1000);
    expect(b.byteOffset).toBe(0);
    expect(b.buffer.byteLength).toBe(1000 + RECEIVE_HEADROOM_BYTES);
    expect(pool.allocations).toBe(1);
  });

  it('reuses a recycled buffer (given back through any view into it) for frames that fit', () => {
    const pool = new ReceiveBufferPool();
    const a = pool.take(5000);
    a.fill(7);
    pool.recycle(a.subarray(100, 200)); // e.g. the payload view of a frame
    expect(pool.spareBytes).toBe(5000 + RECEIVE_HEADROOM_BYTES);
    const b = pool.take(5000 + 17); // a frame a few bytes larger still fits
    expect(b.buffer).toBe(a.buffer);
    expect(b.length).toBe(5017);
    expect(pool.spareBytes).toBe(0);
    expect(pool.allocations).toBe(1);
    // While it is out, another take allocates (never the same memory twice).
    const c = pool.take(10);
    expect(c.buffer).not.toBe(a.buffer);
    expect(pool.allocations).toBe(2);
  });

  it('drops a spare that is too small instead of holding two buffers', () => {
    const pool = new ReceiveBufferPool();
    pool.recycle(pool.take(100));
    const big = pool.take(100 + RECEIVE_HEADROOM_BYTES + 1);
    expect(big.length).toBe(100 + RECEIVE_HEADROOM_BYTES + 1);
    expect(pool.allocations).toBe(2);
    expect(pool.spareBytes).toBe(0);
  });

  it('ignores memory it did not hand out, and clear() drops the spare', () => {
    const pool = new ReceiveBufferPool();
    pool.recycle(Buffer.alloc(10));
    pool.recycle(new Uint8Array(10));
    expect(pool.spareBytes).toBe(0);
    pool.recycle(pool.take(10));
    expect(pool.spareBytes).toBeGreaterThan(0);
    pool.clear();
    expect(pool.spareBytes).toBe(0);
    pool.take(10);
    expect(pool.allocations).toBe(2);
  });
});
