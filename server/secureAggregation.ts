/**
 * Secure aggregation on the server (docs/protocol.md §2.11): the round machine's hook for rounds whose
 * config has `privacy.secureAggregation.enabled`. One SecureAggregation per round attempt runs the phases
 * of shared/secagg/coordinator.ts over the round's hospitals:
 *
 *   round frame (config.secureAggregation) ─▶ secagg-keys from each sampled hospital ─▶ secagg-roster
 *   ─▶ secagg-shares ─▶ secagg-relay (each hospital gets the shares sealed for it) ─▶ masked updates through
 *   the usual upload slots (`update` with `masked: true`) ─▶ secagg-unmask to those whose update arrived
 *   ─▶ secagg-reveal ─▶ the sum is unmasked and decoded: the new global model.
 *
 * The keys and shares phases run while the hospitals train; each waits for every hospital still in the
 * round, at most `phaseSeconds`. A hospital that misses the keys or the shares phase is out of the attempt
 * (round-closed aborted). Too few for the threshold in any phase: the attempt fails (`round-failed`
 * reason `secure-aggregation`, with a sentence naming the phase). The server never sees one hospital's
 * update: it keeps only the running sum of masked words and learns the sum alone.
 *
 * What it cannot do under masking, the config refuses (shared/secagg/config.ts): robust aggregators and
 * per-update norm bounds. Example counts are checked against `examples.min` and `maxExamples` but are not
 * capped by the server (the hospital weighted its own update; the median and tokens-file caps do not apply).
 */
import type { FedConfig } from '../shared/config/fedConfig.ts';
import { clampLoss, exampleWeightedMean, lowerMedian, type RoundResult } from '../shared/fed/strategy.ts';
import type { ClientTextMessage, ErrorCode, RoundConfig, ServerTextMessage, UpdateHeader } from '../shared/protocol/messages.ts';
import { roundThreshold, secureAggregationOf, type SecureAggregationConfig } from '../shared/secagg/config.ts';
import { SecAggCoordinator, SecAggFailure, SecAggRefusal } from '../shared/secagg/coordinator.ts';
import { decodeSum, quantScale, vectorLength } from '../shared/secagg/quantize.ts';
import type { WeightSet } from '../shared/weights.ts';
import type { Logger } from './log.ts';
import type { Clock, RoundPeer, TimerHandle } from './roundMachine.ts';

export { SecAggFailure };

/** What the round machine lends one attempt's secure aggregation. */
export interface SecureAggregationHost {
  clock: Clock;
  log: Logger;
  send(hospital: string, msg: ServerTextMessage): void;
  /** Sampled hospitals of the attempt that still owe an update. */
  pending(): Iterable<string>;
  /** `hospital` is out of the attempt: it missed a phase (round-closed aborted is sent to it). */
  exclude(hospital: string, why: string): void;
  /** The attempt cannot complete (too few hospitals for a phase before the masked updates): fail it. */
  abort(failure: SecAggFailure): void;
}

/** A masked update refused, with the error code the hospital gets. */
export interface MaskedRefusal {
  code: ErrorCode;
  message: string;
}

type SecAggText = Extract<Exclude<ClientTextMessage, { type: 'hello' }>, { type: 'secagg-keys' | 'secagg-shares' | 'secagg-reveal' }>;

export function isSecAggText(msg: Exclude<ClientTextMessage, { type: 'hello' }>): msg is SecAggText {
  return msg.type === 'secagg-keys' || msg.type === 'secagg-shares' || msg.type === 'secagg-reveal';
}

export class SecureAggregation {
  readonly round: number;
  readonly attempt: number;
  private readonly cfg: SecureAggregationConfig;
  private readonly co: SecAggCoordinator;
  private readonly scale: number;
  private timer: TimerHandle | undefined;
  private readonly contributions = new Map<string, { examples: number; dLoss: number; gLoss: number; quality?: UpdateHeader['quality'] }>();
  private revealsDone?: () => void;
  /** Steps run one after the other (WebCrypto checks are async; messages must not overtake each other). */
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  /** The attempt's secure aggregation, or undefined when the config does not ask for it. */
  static forRound(
    fed: FedConfig,
    host: SecureAggregationHost,
    at: { round: number; attempt: number; sampled: readonly string[]; global: WeightSet; quality?: RoundConfig['quality'] },
  ): SecureAggregation | undefined {
    const cfg = secureAggregationOf(fed);
    return cfg.enabled ? new SecureAggregation(fed, cfg, host, at) : undefined;
  }

  private constructor(
    private readonly fed: FedConfig,
    cfg: SecureAggregationConfig,
    private readonly host: SecureAggregationHost,
    private readonly at: { round: number; attempt: number; sampled: readonly string[]; global: WeightSet; quality?: RoundConfig['quality'] },
  ) {
    this.cfg = cfg;
    this.round = at.round;
    this.attempt = at.attempt;
    this.scale = quantScale(cfg.clip, cfg.maxExamples, Math.max(1, at.sampled.length));
    this.co = new SecAggCoordinator({
      round: at.round,
      attempt: at.attempt,
      sampled: at.sampled,
      threshold: (n) => roundThreshold(cfg, n, fed.minCompletion),
      length: vectorLength(at.global, fed.batchNorm),
    });
    this.timer = host.clock.setTimer(() => this.step(() => this.closeKeys()), cfg.phaseSeconds * 1000);
  }

  /** The round config hospitals get: how to encode and mask; no norm bound (the server cannot check one). */
  roundConfig(config: RoundConfig): RoundConfig {
    const { maxUpdateNorm: _, ...rest } = config;
    return { ...rest, secureAggregation: { clip: this.cfg.clip, scale: this.scale, maxExamples: this.cfg.maxExamples } };
  }

  handles(round: number, attempt: number): boolean {
    return !this.closed && round === this.round && attempt === this.attempt;
  }

  private step(fn: () => Promise<void> | void): void {
    this.chain = this.chain.then(async () => {
      if (this.closed) return;
      try {
        await fn();
      } catch (e) {
        if (e instanceof SecAggFailure) {
          this.close();
          this.host.log.warn(e.message);
          this.host.abort(e);
        } else this.host.log.error(`round ${this.round}: secure aggregation failed: ${(e as Error).stack ?? e}`);
      }
    });
  }

  private clearTimer(): void {
    if (this.timer !== undefined) this.host.clock.clearTimer(this.timer);
    this.timer = undefined;
  }

  /** A secagg-keys / -shares / -reveal message of a hospital. */
  onText(peer: RoundPeer, msg: SecAggText): void {
    const extra = { round: msg.round, attempt: msg.attempt };
    if (!this.handles(msg.round, msg.attempt)) return peer.error('wrong-round', `round ${msg.round} (attempt ${msg.attempt}) has no secure aggregation in progress`, extra);
    const h = peer.hospital;
    this.step(async () => {
      try {
        if (msg.type === 'secagg-keys') {
          await this.co.addKeys(h, { cPk: msg.cPk, sPk: msg.sPk });
          if (this.co.allKeysIn(this.host.pending())) this.closeKeys();
        } else if (msg.type === 'secagg-shares') {
          this.co.addShares(h, msg.shares);
          if (this.co.allSharesIn(this.host.pending())) this.closeShares();
        } else {
          this.co.addReveal(h, msg.shares);
          if (this.co.allRevealsIn(this.co.survivors ?? [])) this.revealsDone?.();
        }
      } catch (e) {
        if (e instanceof SecAggRefusal) return peer.error('bad-message', `secure aggregation: ${e.message}`, extra);
        throw e;
      }
    });
  }

  /** A hospital left the attempt (declined, refused, disconnected): a phase waiting only for it may end now. */
  recheck(): void {
    this.step(() => {
      if (this.co.phase === 'keys' && this.co.allKeysIn(this.host.pending())) this.closeKeys();
      else if (this.co.phase === 'shares' && this.co.allSharesIn(this.host.pending())) this.closeShares();
    });
  }

  private closeKeys(): void {
    if (this.co.phase !== 'keys') return;
    this.clearTimer();
    const roster = this.co.closeKeys();
    const inRoster = new Set(roster.members.map((m) => m.hospital));
    for (const h of [...this.host.pending()]) if (!inRoster.has(h)) this.host.exclude(h, `did not advertise its secure-aggregation keys within ${this.cfg.phaseSeconds}s`);
    this.host.log.info(`round ${this.round}: secure aggregation roster of ${roster.members.length} hospital(s), threshold ${roster.threshold}`);
    for (const m of roster.members) this.host.send(m.hospital, { type: 'secagg-roster', round: this.round, attempt: this.attempt, threshold: roster.threshold, members: roster.members });
    this.timer = this.host.clock.setTimer(() => this.step(() => this.closeShares()), this.cfg.phaseSeconds * 1000);
  }

  private closeShares(): void {
    if (this.co.phase !== 'shares') return;
    this.clearTimer();
    const { members, forHospital } = this.co.closeShares();
    for (const h of [...this.host.pending()]) if (!members.includes(h)) this.host.exclude(h, `did not send its secure-aggregation key shares within ${this.cfg.phaseSeconds}s`);
    for (const h of members) this.host.send(h, { type: 'secagg-relay', round: this.round, attempt: this.attempt, members, shares: forHospital.get(h)! });
  }

  /**
   * A masked update (its upload slot checked by the machine): add it to the masked sum. Returns why it is
   * refused, or null. The payload's bytes are copied into the sum: the caller may reuse the buffer.
   */
  addMasked(hospital: string, header: UpdateHeader, payload: Uint8Array): MaskedRefusal | null {
    if (!header.masked) return { code: 'bad-message', message: 'this round uses secure aggregation: send the update masked (config.secureAggregation)' };
    if (this.co.phase !== 'masked') return { code: 'late', message: `a masked update cannot be taken in the ${this.co.phase} phase of secure aggregation (wait for secagg-relay)` };
    const ex = this.fed.examples;
    const max = Math.min(ex.max, this.cfg.maxExamples);
    if (!Number.isSafeInteger(header.examples) || header.examples < Math.max(1, ex.min) || header.examples > max) {
      return { code: 'examples', message: `examples must be an integer in ${Math.max(1, ex.min)}…${max} under secure aggregation, got ${header.examples}` };
    }
    if (payload.byteLength % 4 !== 0) return { code: 'shape', message: `a masked update is a whole number of 32-bit words, got ${payload.byteLength} bytes` };
    const words = new Uint32Array(payload.byteLength / 4);
    new Uint8Array(words.buffer).set(payload);
    try {
      this.co.addMasked(hospital, words);
    } catch (e) {
      if (e instanceof SecAggRefusal) return { code: e.message.includes('words') ? 'shape' : 'late', message: e.message };
      throw e;
    }
    this.contributions.set(hospital, { examples: header.examples, dLoss: clampLoss(header.dLoss), gLoss: clampLoss(header.gLoss), ...(header.quality ? { quality: header.quality } : {}) });
    return null;
  }

  /**
   * The masked phase is over (the attempt closed with enough updates): ask the survivors to unmask, wait
   * for their answers (at most phaseSeconds), rebuild the sum and decode the new global model. Throws
   * SecAggFailure when too few stayed.
   */
  async result(): Promise<RoundResult> {
    await this.chain;
    if (this.closed) throw new Error('secure aggregation of this attempt was closed');
    const { survivors, dropped } = this.co.closeMasked();
    if (dropped.length) this.host.log.warn(`round ${this.round}: secure aggregation: ${dropped.join(', ')} dropped out after sharing keys; their masks are removed with the others' shares`);
    const answered = new Promise<void>((resolve) => {
      this.revealsDone = resolve;
      this.timer = this.host.clock.setTimer(resolve, this.cfg.phaseSeconds * 1000);
    });
    for (const h of survivors) this.host.send(h, { type: 'secagg-unmask', round: this.round, attempt: this.attempt, survivors });
    await answered;
    await this.chain;
    this.clearTimer();
    let sum: Uint32Array;
    try {
      sum = (await this.co.unmask()).sum;
    } finally {
      this.close();
    }
    const all = survivors.map((h) => this.contributions.get(h)!);
    const examples = all.reduce((n, c) => n + c.examples, 0);
    const weights = decodeSum(sum, this.at.global, this.fed.batchNorm, examples, this.scale);
    const q = this.at.quality;
    const probed = q ? all.filter((c) => c.quality && c.quality.features === q.features) : [];
    const stats: RoundResult['stats'] = {
      participants: survivors.length,
      hospitals: [...survivors],
      examples,
      examplesMedian: lowerMedian(all.map((c) => c.examples)),
      dLoss: exampleWeightedMean(all.map((c) => ({ examples: c.examples, value: c.dLoss }))),
      gLoss: exampleWeightedMean(all.map((c) => ({ examples: c.examples, value: c.gLoss }))),
      ...(q && probed.length
        ? {
            quality: {
              round: this.round - 1,
              kid: exampleWeightedMean(probed.map((c) => ({ examples: c.examples, value: c.quality!.kid }))),
              kidStd: exampleWeightedMean(probed.map((c) => ({ examples: c.examples, value: c.quality!.kidStd }))),
              hospitals: probed.length,
              examples: probed.reduce((n, c) => n + c.examples, 0),
              features: q.features,
            },
          }
        : {}),
    };
    return { weights, stats };
  }

  /** Stop the timers (attempt over, server shutdown). */
  close(): void {
    this.closed = true;
    this.clearTimer();
    this.revealsDone?.();
  }
}
