import { describe, expect, it } from 'vitest';
import { explainResume, explainRoundFailed } from '../shared/protocol/explain.ts';
import { CLIENT_PROTOCOL_VERSIONS, CLOSE, type RoundFailed } from '../shared/protocol/messages.ts';
import { FakeSocket } from '../shared/protocol/testDoubles.ts';
import type { FedStatus } from './api.ts';
import type { LocalModel } from './localModel.ts';
import { Participation, reloadLossMessage, TOKEN_IN_USE_TRIES, trainErrorText } from './participation.ts';

const welcome = {
  type: 'welcome',
  protocol: Math.max(...CLIENT_PROTOCOL_VERSIONS),
  hospital: 'hospital-a',
  clientId: 'c1',
  fingerprint: 'f',
  rounds: 3,
  round: 0,
  phase: 'waiting',
  limits: { maxFrameBytes: 1e6, heartbeatSeconds: 15, maxConcurrentUploads: 1, uploadGrantSeconds: 120, reconnectGraceSeconds: 60 },
};

function participation(onSocket: (s: FakeSocket) => void) {
  const statuses: FedStatus[] = [];
  const logs: { level: string; message: string }[] = [];
  const sockets: FakeSocket[] = [];
  const p = new Participation({
    pageUrl: 'http://localhost:8080/',
    clientId: 'c1',
    token: 'token-a',
    agent: 'test',
    model: { train: () => new Promise(() => {}) } as unknown as LocalModel,
    onStatus: (s) => statuses.push(s),
    onRoundComplete: () => {},
    onGlobal: async () => {},
    onWelcome: () => {},
    onRefused: () => {},
    log: (level, message) => logs.push({ level, message }),
    reconnect: { initialMs: 1, maxMs: 1, jitter: 0 },
    createSocket: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      queueMicrotask(() => onSocket(s));
      return s;
    },
  });
  return { p, statuses, logs, sockets };
}

const settle = (ms = 30) => new Promise((r) => setTimeout(r, ms));

describe('Participation: a token in use on another computer', () => {
  it('is its own state (not "retrying"), and this page stops trying after TOKEN_IN_USE_TRIES refusals in a row', async () => {
    const { p, statuses, logs, sockets } = participation((s) => {
      s.open();
      s.drop(CLOSE.tokenInUse, 'token in use');
    });
    void p.run();
    const end = Date.now() + 5000;
    while (p.snapshot.retryAt !== undefined || p.snapshot.connection !== 'token-in-use') {
      if (Date.now() > end) throw new Error(`still ${JSON.stringify(p.snapshot)}`);
      await settle(5);
    }
    await settle(50);
    // Exactly TOKEN_IN_USE_TRIES attempts, then no more.
    expect(sockets).toHaveLength(TOKEN_IN_USE_TRIES);
    expect(statuses.some((s) => s.connection === 'retrying')).toBe(false);
    const inUse = statuses.filter((s) => s.connection === 'token-in-use');
    expect(inUse.slice(0, -1).every((s) => s.retryAt !== undefined)).toBe(true);
    expect(p.snapshot).toMatchObject({ connection: 'token-in-use', joined: true, lastClose: { code: CLOSE.tokenInUse } });
    expect(p.snapshot.retryAt).toBeUndefined();
    expect(logs.map((l) => l.level)).toEqual(['warn', 'error']);
    expect(logs[1].message).toBe(`This hospital’s access token is in use on another computer or in another browser (refused ${TOKEN_IN_USE_TRIES} times in a row). This page stopped trying; press “Try again” once the other computer has left.`);
  });

  it('counts refusals in a row only: a welcome in between starts the count again', async () => {
    let n = 0;
    const { p } = participation((s) => {
      s.open();
      // Refused, refused, welcomed then dropped (server restart), then refused for good.
      if (++n === 3) {
        s.text(welcome);
        s.drop(1006, '');
      } else s.drop(CLOSE.tokenInUse, 'token in use');
    });
    void p.run();
    const end = Date.now() + 5000;
    while (p.snapshot.connection !== 'token-in-use' || p.snapshot.retryAt !== undefined) {
      if (Date.now() > end) throw new Error(`still ${JSON.stringify(p.snapshot)}`);
      await settle(5);
    }
    // 2 refusals + 1 welcome + TOKEN_IN_USE_TRIES refusals.
    expect(n).toBe(3 + TOKEN_IN_USE_TRIES);
    p.stop();
  });
});

describe('Participation: what happened to a round, in plain words', () => {
  it('explains a failed attempt with its reason and what comes next', async () => {
    let socket: FakeSocket | undefined;
    const { p, logs } = participation((s) => {
      socket = s;
      s.open();
      s.text(welcome);
    });
    void p.run();
    await settle();
    const failed: RoundFailed = { type: 'round-failed', round: 1, attempt: 1, received: 1, needed: 2, reason: 'unreachable', nextAttemptInSeconds: 4 };
    socket!.text(failed);
    await settle();
    expect(p.snapshot.note).toBe(explainRoundFailed(failed));
    expect(p.snapshot.note).toMatch(/can no longer collect the 2 updates it needs/);
    expect(logs.at(-1)).toEqual({ level: 'warn', message: explainRoundFailed(failed) });
    p.stop();
    // Leave: no note, no "connecting".
    expect(p.snapshot).toMatchObject({ joined: false, connection: 'offline', activity: 'idle' });
    expect(p.snapshot.note).toBeUndefined();
  });
});

describe('reloadLossMessage', () => {
  it('tells staff that a reload lost the work of the attempt it interrupted', () => {
    expect(reloadLossMessage({ round: 2, attempt: 1 }, 2, 1, false)).toBe('This page was reloaded or closed while it trained round 2: your work in this attempt was lost by the reload; training again.');
    expect(reloadLossMessage({ round: 2, attempt: 1 }, 2, 2, false)).toBe(
      'This page was reloaded or closed while it trained round 2 (attempt 1): that work was lost, and that attempt ended without it. The round is now at attempt 2; training again.',
    );
    expect(reloadLossMessage({ round: 2, attempt: 1 }, 3, 1, false)).toBeUndefined();
    expect(reloadLossMessage(undefined, 2, 1, false)).toBeUndefined();
    // The server marks the round resumed (the same attempt, sent again after reconnecting).
    expect(reloadLossMessage({ round: 2, attempt: 1 }, 2, 1, true)).toBe('This page was reloaded or closed while it trained round 2: your work in this attempt was lost by the reload; training again.');
    // Resumed after a network break (no reload): the protocol's own explanation.
    expect(reloadLossMessage(undefined, 2, 1, true)).toBe(explainResume({ round: 2, attempt: 1 }));
  });
});

describe('a round this computer did not train', () => {
  it('is a failure, unless its own privacy budget declined it (then it says so, as a warning)', () => {
    expect(trainErrorText(4, 'out of memory')).toEqual({ status: 'Training round 4 failed on this computer: out of memory', level: 'error', log: 'Training round 4 failed: out of memory' });
    const why = 'privacy budget: this hospital has spent ε = 3.00 of its ε = 3.00, so it trains no more rounds';
    expect(trainErrorText(7, why)).toEqual({
      status: 'This hospital declined round 7 to stay within its privacy budget: this hospital has spent ε = 3.00 of its ε = 3.00, so it trains no more rounds.',
      level: 'warn',
      log: 'Declined round 7 (privacy budget): this hospital has spent ε = 3.00 of its ε = 3.00, so it trains no more rounds.',
    });
  });
});
