import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { nodeClient, startTestServer, tokenOf, type TestServer } from '../server/testing/federation.ts';

/**
 * A third-party client written only from docs/protocol.md: raw `ws`, JSON text frames, and binary frames
 * laid out byte by byte from the doc (FGF1 frame, FGW1 weights, CRC-32). It imports nothing from
 * shared/protocol or shared/codec. (The server itself and the reference client come from the helpers.)
 */

// ---- docs/protocol.md §3.2: CRC-32 (IEEE, reflected 0xEDB88320, init and final XOR 0xFFFFFFFF) ----------
const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

interface Tensor {
  name: string;
  shape: number[];
  values: number[];
}
interface Weights {
  fingerprint: string;
  tensors: Tensor[];
}

// ---- §3.2: weight-set payload "FGW1" ---------------------------------------------------------------------
function encodeWeightSet(w: Weights): Buffer {
  const header = Buffer.from(JSON.stringify({ fingerprint: w.fingerprint, tensors: w.tensors.map((t) => ({ name: t.name, shape: t.shape })), meta: {} }), 'utf8');
  const dataStart = Math.ceil((12 + header.length) / 4) * 4;
  const n = w.tensors.reduce((s, t) => s + t.values.length, 0);
  const out = Buffer.alloc(dataStart + 4 * n + 4);
  out.write('FGW1', 0, 'ascii');
  out.writeUInt16LE(1, 4);
  out.writeUInt16LE(0, 6);
  out.writeUInt32LE(header.length, 8);
  header.copy(out, 12);
  let off = dataStart;
  for (const t of w.tensors) for (const v of t.values) (out.writeFloatLE(v, off), (off += 4));
  out.writeUInt32LE(crc32(out.subarray(0, off)), off);
  return out;
}

function decodeWeightSet(b: Buffer): Weights {
  expect(b.toString('ascii', 0, 4)).toBe('FGW1');
  expect(b.readUInt16LE(4)).toBe(1);
  const L = b.readUInt32LE(8);
  const h = JSON.parse(b.toString('utf8', 12, 12 + L)) as { fingerprint: string; tensors: { name: string; shape: number[] }[] };
  let off = Math.ceil((12 + L) / 4) * 4;
  const tensors = h.tensors.map((t) => {
    const count = t.shape.reduce((a, d) => a * d, 1);
    const values = Array.from({ length: count }, (_, i) => b.readFloatLE(off + 4 * i));
    off += 4 * count;
    return { name: t.name, shape: t.shape, values };
  });
  expect(b.length).toBe(off + 4);
  expect(b.readUInt32LE(off)).toBe(crc32(b.subarray(0, off)));
  return { fingerprint: h.fingerprint, tensors };
}

// ---- §3: binary frame "FGF1" ----------------------------------------------------------------------------
function encodeFrame(header: object, payload: Buffer): Buffer {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.write('FGF1', 0, 'ascii');
  prefix.writeUInt32LE(h.length, 4);
  return Buffer.concat([prefix, h, payload]);
}
function decodeFrame(b: Buffer): { header: any; payload: Buffer } {
  expect(b.toString('ascii', 0, 4)).toBe('FGF1');
  const H = b.readUInt32LE(4);
  return { header: JSON.parse(b.toString('utf8', 8, 8 + H)), payload: b.subarray(8 + H) };
}

/** A hospital per the doc: hello, wait for a round, train (here: add `delta`), request a slot, upload. */
class DocClient {
  ws: WebSocket;
  log: any[] = [];
  private waiters: (() => void)[] = [];
  constructor(url: string) {
    this.ws = new WebSocket(url);
    this.ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.log.push(isBinary ? { binary: decodeFrame(data) } : JSON.parse(data.toString('utf8')));
      this.waiters.splice(0).forEach((w) => w());
    });
  }
  send(m: object | Buffer) {
    this.ws.send(Buffer.isBuffer(m) ? m : JSON.stringify(m));
  }
  async next(pred: (m: any) => boolean): Promise<any> {
    for (;;) {
      const i = this.log.findIndex(pred);
      if (i >= 0) return this.log.splice(i, 1)[0];
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
}

let server: TestServer | undefined;
afterEach(async () => {
  await server?.cleanup();
  server = undefined;
});

describe('a client written from docs/protocol.md', () => {
  it('computes the documented CRC-32 check value', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
  });

  it('joins a round next to the reference client, uploads through a slot, and reads the result', async () => {
    server = await startTestServer({ rounds: 1, minFit: 2, minAvailable: 2, minCompletion: 2 });
    const doc = new DocClient(server.wsUrl);
    await new Promise((r) => doc.ws.once('open', r));
    doc.send({ type: 'hello', protocols: [2], token: tokenOf('h1'), clientId: 'doc-client-1', agent: 'doc-client/1.0' });
    const welcome = await doc.next((m) => m.type === 'welcome');
    expect(welcome).toMatchObject({ protocol: 2, hospital: 'h1', clientId: 'doc-client-1', rounds: 1, round: 0 });
    expect(welcome.limits.maxFrameBytes).toBeGreaterThan(0);

    // The second hospital is the reference client (shared/protocol/federationClient.ts); it adds 3 with 30 examples.
    const ref = nodeClient(server, 'h2', async (global) => ({
      weights: { ...global, tensors: global.tensors.map((t) => ({ ...t, data: t.data.map((x) => x + 3) })) },
      examples: 30,
      dLoss: 1,
      gLoss: 1,
    }));
    const refRun = ref.run();

    const round = await doc.next((m) => m.binary?.header.type === 'round');
    const { header } = round.binary;
    expect(header).toMatchObject({ round: 1, attempt: 1, config: { round: 1, ganType: 'acgan', localSteps: 200, batchNorm: 'average' } });
    const global = decodeWeightSet(round.binary.payload);
    // "Training": add 1 to every weight, 10 examples.
    const mine: Weights = { fingerprint: global.fingerprint, tensors: global.tensors.map((t) => ({ ...t, values: t.values.map((v) => v + 1) })) };
    const update = encodeFrame({ type: 'update', round: 1, attempt: 1, examples: 10, dLoss: 0.5, gLoss: 1.5 }, encodeWeightSet(mine));

    // Without a grant the update is refused (§2.7)…
    doc.send(update);
    expect(await doc.next((m) => m.type === 'error')).toMatchObject({ code: 'no-upload-slot', round: 1, attempt: 1 });
    // …with one it is accepted.
    doc.send({ type: 'progress', round: 1, attempt: 1, fraction: 1 });
    doc.send({ type: 'upload-request', round: 1, attempt: 1 });
    expect(await doc.next((m) => m.type === 'upload-grant')).toEqual({ type: 'upload-grant', round: 1, attempt: 1 });
    doc.send(update);
    expect(await doc.next((m) => m.type === 'accepted')).toEqual({ type: 'accepted', round: 1, attempt: 1 });

    const done = await doc.next((m) => m.type === 'round-complete');
    expect(done).toMatchObject({ round: 1, participants: 2, examples: 40 });
    expect(done.dLoss).toBeCloseTo((10 * 0.5 + 30 * 1) / 40, 12);
    expect(await doc.next((m) => m.type === 'finished')).toEqual({ type: 'finished', rounds: 1 });
    await refRun;

    // §2.9: the final global model = (10·(w+1) + 30·(w+3)) / 40 = w + 2.5.
    doc.send({ type: 'get-global' });
    const g = await doc.next((m) => m.binary?.header.type === 'global');
    expect(g.binary.header).toEqual({ type: 'global', round: 1 });
    const result = decodeWeightSet(g.binary.payload);
    expect(result.fingerprint).toBe(global.fingerprint);
    result.tensors.forEach((t, i) => t.values.forEach((v, j) => expect(v).toBe(global.tensors[i].values[j] + 2.5)));

    // §6: an unknown message type is refused to this client, which stays connected.
    doc.send({ type: 'teleport' });
    expect(await doc.next((m) => m.type === 'error')).toMatchObject({ code: 'unknown-type' });
    expect(doc.ws.readyState).toBe(WebSocket.OPEN);
    doc.ws.close();
  });

  it('is refused with the documented codes: unknown token → error unauthorized + close 4001', async () => {
    server = await startTestServer({ rounds: 1 });
    const doc = new DocClient(server.wsUrl);
    await new Promise((r) => doc.ws.once('open', r));
    const closed = new Promise<number>((r) => doc.ws.once('close', (code) => r(code)));
    doc.send({ type: 'hello', protocols: [2], token: 'wrong-token-0000000', clientId: 'doc' });
    expect(await doc.next((m) => m.type === 'error')).toMatchObject({ code: 'unauthorized' });
    expect(await closed).toBe(4001);
  });
});
