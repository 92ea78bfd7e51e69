import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { Rng } from '../shared/rng.ts';
import { receiveLargeFramesInPlace } from './receiveInPlace.ts';

/**
 * Large frames gathered in place (server/receiveInPlace.ts) over real sockets: a raw client sends masked
 * frames split at arbitrary points (inside headers, masks and payloads; several frames in one write), and
 * the server must receive exactly the messages sent, each large one as a single buffer of its own length.
 */

interface Received {
  data: Buffer;
  isBinary: boolean;
}

let http: Server | undefined;
let wss: WebSocketServer | undefined;
afterEach(async () => {
  wss?.close();
  await new Promise((r) => (http ? http.close(r) : r(undefined)));
  http = wss = undefined;
});

/** A ws server whose connections gather frames ≥ minBytes in place; resolves with its port and what it received. */
async function startServer(minBytes: number, collectEveryBytes: number) {
  http = createServer();
  wss = new WebSocketServer({ server: http, perMessageDeflate: false, maxPayload: 64 << 20 });
  const received: Received[] = [];
  const state = { patched: false, collects: 0, closed: false, error: '' };
  wss.on('connection', (ws) => {
    state.patched = receiveLargeFramesInPlace(ws, { minBytes, collectEveryBytes, collect: () => state.collects++ });
    ws.on('message', (data: Buffer, isBinary: boolean) => received.push({ data, isBinary }));
    ws.on('close', () => (state.closed = true));
    ws.on('error', (e) => (state.error = e.message));
  });
  await new Promise<void>((r) => http!.listen(0, '127.0.0.1', r));
  return { port: (http.address() as AddressInfo).port, received, state };
}

/** Open a WebSocket by hand on a raw TCP socket (so that the test controls how bytes are split). */
async function rawClient(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  socket.write(
    `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
  );
  let head = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      if (head.includes('\r\n\r\n')) {
        socket.off('data', onData);
        if (!head.startsWith('HTTP/1.1 101')) reject(new Error(`handshake refused: ${head}`));
        else resolve();
      }
    };
    socket.on('data', onData);
  });
  return socket;
}

/** One masked client frame (RFC 6455 §5.2). */
function frame(opcode: number, payload: Buffer, fin = true): Buffer {
  const len = payload.length;
  const lenBytes = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const head = Buffer.alloc(2 + lenBytes + 4);
  head[0] = (fin ? 0x80 : 0) | opcode;
  if (lenBytes === 0) head[1] = 0x80 | len;
  else if (lenBytes === 2) {
    head[1] = 0x80 | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  const mask = randomBytes(4);
  mask.copy(head, 2 + lenBytes);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= mask[i & 3];
  return Buffer.concat([head, body]);
}

/** Write `bytes` in pieces of random sizes (1 byte to 300 KB), letting the server read between some of them. */
async function writeSplit(socket: Socket, bytes: Buffer, rng: Rng): Promise<void> {
  let at = 0;
  while (at < bytes.length) {
    const size = [1, 2, 5, 11, 1000, 65_536, 300_000][rng.int(7)];
    const piece = bytes.subarray(at, at + size);
    at += piece.length;
    if (!socket.write(piece)) await new Promise((r) => socket.once('drain', r));
    if (rng.int(4) === 0) await new Promise((r) => setTimeout(r, 1));
  }
}

async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('receiveLargeFramesInPlace', () => {
  it('delivers every message intact, each large one as a single buffer of exactly its length', async () => {
    const MIN = 256 * 1024;
    const { port, received, state } = await startServer(MIN, 100_000);
    const socket = await rawClient(port);
    await until(() => state.patched, 'the connection to be patched');
    const rng = new Rng(21);
    const messages: { opcode: number; payload: Buffer }[] = [
      { opcode: 2, payload: randomBytes(3 * MIN + 17) }, // large, 64-bit length
      { opcode: 2, payload: randomBytes(10) }, // small, right behind a large one
      { opcode: 1, payload: Buffer.from('{"type":"progress"}') }, // text
      { opcode: 2, payload: randomBytes(MIN - 1) }, // just below the threshold: ws's own path
      { opcode: 2, payload: randomBytes(MIN) }, // exactly the threshold
      { opcode: 2, payload: randomBytes(MIN + 1) }, // and another large one straight after it
      { opcode: 1, payload: Buffer.from('x'.repeat(MIN + 5)) }, // a large text frame
      { opcode: 2, payload: randomBytes(1000) },
    ];
    // All frames as one byte stream, cut at random points: frames share writes and straddle them.
    await writeSplit(socket, Buffer.concat(messages.map((m) => frame(m.opcode, m.payload))), rng);
    await until(() => received.length === messages.length, `${messages.length} messages`);
    for (let i = 0; i < messages.length; i++) {
      const { data, isBinary } = received[i];
      expect(isBinary).toBe(messages[i].opcode === 2);
      expect(data.length).toBe(messages[i].payload.length);
      expect(data.equals(messages[i].payload)).toBe(true);
      if (data.length >= MIN) {
        // Gathered in place: its own allocation, not a view into ws's chunk list or a concatenation.
        expect(data.byteOffset).toBe(0);
        expect(data.buffer.byteLength).toBe(data.length);
      }
    }
    // The collect hook ran while the large frames were arriving (every ~100 KB of each).
    expect(state.collects).toBeGreaterThanOrEqual(8);
    socket.destroy();
  });

  it('keeps fragmented messages and large frames split into single bytes correct', async () => {
    const MIN = 64 * 1024;
    const { port, received } = await startServer(MIN, 1 << 30);
    const socket = await rawClient(port);
    const a = randomBytes(MIN + 3);
    const b = randomBytes(2 * MIN);
    // One binary message in three fragments (two of them large), then a control-free small message.
    const stream = Buffer.concat([frame(2, a, false), frame(0, randomBytes(0), false), frame(0, b, true), frame(2, Buffer.from([7]))]);
    // The first bytes one at a time (header, length, mask and payload start), the rest in larger pieces.
    for (let i = 0; i < 40; i++) socket.write(stream.subarray(i, i + 1));
    await writeSplit(socket, stream.subarray(40), new Rng(3));
    await until(() => received.length === 2, 'two messages');
    expect(received[0].data.equals(Buffer.concat([a, b]))).toBe(true);
    expect(received[1].data.equals(Buffer.from([7]))).toBe(true);
    socket.destroy();
  });

  it('still enforces maxPayload on a large frame (closes with 1009 before buffering it)', async () => {
    const { port, state } = await startServer(1024, 1 << 30);
    (wss!.options as { maxPayload: number }).maxPayload = 10_000;
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
    await new Promise((r) => ws.once('open', r));
    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    ws.send(randomBytes(20_000));
    expect(await closed).toBe(1009);
    await until(() => state.closed, 'the server side to close');
    expect(state.error).toMatch(/Max payload size exceeded/);
  });

  it('returns false and changes nothing without a ws receiver of the expected shape', () => {
    expect(receiveLargeFramesInPlace({} as WebSocket)).toBe(false);
    expect(receiveLargeFramesInPlace({ _receiver: { _write: () => {} } } as unknown as WebSocket)).toBe(false);
  });
});
