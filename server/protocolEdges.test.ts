/**
 * Behaviours docs/protocol.md states that issue 15 found undocumented: the subprotocol echo, 1006 when a
 * peer stops answering pings, and which refusals of an update end a hospital's part in a round.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { encodeWeights } from '../shared/codec/weightsCodec.ts';
import { encodeFrame } from '../shared/protocol/frames.ts';
import { RawPeer, startTestServer, tinyWeights, tokenOf, type TestServer } from './testing/federation.ts';

let server: TestServer | undefined;
const open: { close(): void }[] = [];
afterEach(async () => {
  for (const p of open.splice(0)) p.close();
  await server?.cleanup();
  server = undefined;
});

const update = (round: number, attempt: number, weights = tinyWeights(0.5), examples = 10) =>
  encodeFrame({ type: 'update', round, attempt, examples, dLoss: 1, gLoss: 1 }, encodeWeights(weights));

describe('docs/protocol.md §1, §6', () => {
  it('a subprotocol the client offers is echoed (the first one) and means nothing', async () => {
    server = await startTestServer();
    const ws = new WebSocket(server.wsUrl, ['fedgan.v3', 'other']);
    open.push({ close: () => ws.terminate() });
    await new Promise((res, rej) => (ws.once('open', res), ws.once('error', rej)));
    expect(ws.protocol).toBe('fedgan.v3');
    ws.send(JSON.stringify({ type: 'hello', protocols: [2, 3], token: tokenOf('h1'), clientId: 'sub' }));
    const welcome = await new Promise<{ type: string }>((res) => ws.once('message', (d) => res(JSON.parse(String(d)))));
    expect(welcome.type).toBe('welcome');
  });

  it('a peer that stops answering pings is dropped without a close frame: the client sees 1006', async () => {
    server = await startTestServer({ limits: { heartbeatSeconds: 0.2 } });
    const ws = new WebSocket(server.wsUrl, { autoPong: false });
    open.push({ close: () => ws.terminate() });
    await new Promise((res, rej) => (ws.once('open', res), ws.once('error', rej)));
    ws.send(JSON.stringify({ type: 'hello', protocols: [2, 3], token: tokenOf('h1'), clientId: 'silent' }));
    const code = await new Promise<number>((res) => ws.once('close', (c) => res(c)));
    expect(code).toBe(1006);
  });

  it('no-upload-slot and a bad update header leave the hospital in the round; a refused update (shape) ends its part', async () => {
    server = await startTestServer({ rounds: 1, minAvailable: 2, minFit: 2, minCompletion: 2, roundDeadlineSeconds: 30 });
    const a = new RawPeer(server.wsUrl);
    const b = new RawPeer(server.wsUrl);
    open.push(a, b);
    await a.hello('h1');
    await b.hello('h2');
    await a.waitBinary('round');
    await b.waitBinary('round');
    const errorAfter = async (p: RawPeer, send: () => void) => {
      const from = p.messages.length;
      send();
      return (await p.waitText((m) => m.type === 'error', 5000, from)).code;
    };
    // Not ending: an update without a grant, an invalid header.
    expect(await errorAfter(a, () => a.send(update(1, 1)))).toBe('no-upload-slot');
    a.send({ type: 'upload-request', round: 1, attempt: 1 });
    await a.waitText((m) => m.type === 'upload-grant');
    expect(await errorAfter(a, () => a.send(encodeFrame({ type: 'update', round: 1, attempt: 1, examples: 10, gLoss: 1 }, encodeWeights(tinyWeights(1)))))).toBe('bad-message');
    let from = a.messages.length;
    a.send(update(1, 1));
    expect((await a.waitText((m) => m.type === 'accepted' || m.type === 'error', 5000, from)).type).toBe('accepted');
    // Ending: a validation refusal; the next update is late.
    b.send({ type: 'upload-request', round: 1, attempt: 1 });
    await b.waitText((m) => m.type === 'upload-grant');
    const wrongShape = tinyWeights(1);
    wrongShape.tensors[0] = { ...wrongShape.tensors[0], shape: [3, 2] };
    expect(await errorAfter(b, () => b.send(update(1, 1, wrongShape)))).toBe('shape');
    from = b.messages.length;
    b.send(update(1, 1));
    expect((await b.waitText((m) => m.type === 'error', 5000, from)).code).toBe('late');
  });
});
