/**
 * The server's side of one secure-aggregation round attempt, transport-free (server/secureAggregation.ts
 * wires it to the round machine; tests drive it with in-process clients). It only relays and adds up: it
 * never holds a key that opens a share, and it rebuilds only what the unmasking answers allow:
 * survivors' self-mask seeds and dropped hospitals' mask keys (client.ts explains the phases).
 *
 * The sets of SecAgg: U1 advertised keys, U2 ⊆ U1 sent their shares, U3 ⊆ U2 sent a masked update,
 * U4 ⊆ U3 answered the unmasking. Each must have at least t members (the roster's threshold), or the
 * attempt fails with a SecAggFailure naming the phase and the counts.
 */
import { fromBase64 } from './bytes.ts';
import { agreeKey, importPrivateScalar, importPublicKey } from './keys.ts';
import { maskLabel, type RevealedShare, type Roster, type SealedShare } from './client.ts';
import { applyMask } from './prg.ts';
import { combineShares } from './shamir.ts';

export type SecAggPhase = 'keys' | 'shares' | 'masked' | 'unmask';

/** The attempt cannot finish: too few hospitals stayed for a phase. */
export class SecAggFailure extends Error {
  constructor(
    readonly phase: SecAggPhase,
    readonly have: number,
    readonly needed: number,
    message: string,
  ) {
    super(message);
  }
}

/** A message from a hospital that does not fit the phase or the roster (the hospital is refused, the round goes on). */
export class SecAggRefusal extends Error {}

const PHASE_TEXT: Record<SecAggPhase, string> = {
  keys: 'advertised their keys',
  shares: 'sent their key shares',
  masked: 'sent their masked update',
  unmask: 'answered the unmasking request',
};

export interface CoordinatorOptions {
  round: number;
  attempt: number;
  /** Hospitals sampled for the attempt. */
  sampled: readonly string[];
  /** The Shamir threshold for a roster of n hospitals (config.ts roundThreshold). */
  threshold: (n: number) => number;
  /** Words of an encoded update (quantize.ts vectorLength). */
  length: number;
}

export class SecAggCoordinator {
  phase: SecAggPhase | 'done' = 'keys';
  private readonly keys = new Map<string, { cPk: string; sPk: string }>();
  private roster?: Roster;
  private readonly index = new Map<string, number>();
  private readonly shares = new Map<string, SealedShare[]>();
  private u2?: string[];
  /** Running sum of the masked updates, mod 2^32 (memory: one model). */
  private sum?: Uint32Array;
  private readonly maskedFrom = new Set<string>();
  private u3?: string[];
  private readonly reveals = new Map<string, RevealedShare[]>();

  constructor(private readonly opts: CoordinatorOptions) {}

  get threshold(): number | undefined {
    return this.roster?.threshold;
  }
  /** U2: the hospitals whose shares were relayed (those that may send a masked update). */
  get sharers(): readonly string[] | undefined {
    return this.u2;
  }
  get survivors(): readonly string[] | undefined {
    return this.u3;
  }

  private fail(phase: SecAggPhase, have: number, needed: number): never {
    throw new SecAggFailure(
      phase,
      have,
      needed,
      `secure aggregation of round ${this.opts.round} (attempt ${this.opts.attempt}) needs ${needed} hospitals, but only ${have} ${PHASE_TEXT[phase]}: the sum cannot be unmasked, the attempt fails`,
    );
  }

  private expect(phase: SecAggPhase, what: string): void {
    if (this.phase !== phase) throw new SecAggRefusal(`${what} arrived in the ${this.phase} phase of secure aggregation`);
  }

  /**
   * Phase 0: a sampled hospital's public keys. Keys sent again before the roster replace the earlier ones
   * (a hospital that reconnected, e.g. after a reload, starts the attempt with fresh keys); after the roster
   * a hospital cannot change its keys (it sits the attempt out).
   */
  async addKeys(hospital: string, keys: { cPk: string; sPk: string }): Promise<void> {
    this.expect('keys', 'keys');
    if (!this.opts.sampled.includes(hospital)) throw new SecAggRefusal(`${hospital} is not sampled in this round`);
    for (const k of [keys.cPk, keys.sPk]) await importPublicKey(fromBase64(k, 'a public key')).catch((e: Error) => Promise.reject(new SecAggRefusal(e.message)));
    this.keys.set(hospital, { ...keys });
  }

  /** Whether every sampled hospital in `owing` advertised (phase 0 may end early). */
  allKeysIn(owing: Iterable<string>): boolean {
    for (const h of owing) if (!this.keys.has(h)) return false;
    return true;
  }

  /** End phase 0: the roster (U1, in name order, with the threshold). Throws SecAggFailure if |U1| < t. */
  closeKeys(): Roster {
    this.expect('keys', 'the end of the keys phase');
    const names = [...this.keys.keys()].sort();
    const t = this.opts.threshold(names.length);
    if (names.length < t || names.length < 2) this.fail('keys', names.length, Math.max(2, t));
    names.forEach((h, i) => this.index.set(h, i + 1));
    this.roster = { threshold: t, members: names.map((h, i) => ({ hospital: h, index: i + 1, ...this.keys.get(h)! })) };
    this.phase = 'shares';
    return this.roster;
  }

  /** Phase 1: a roster member's sealed shares, one for every other member. */
  addShares(hospital: string, shares: SealedShare[]): void {
    this.expect('shares', 'shares');
    if (!this.index.has(hospital)) throw new SecAggRefusal(`${hospital} is not in the roster`);
    if (this.shares.has(hospital)) throw new SecAggRefusal(`${hospital} already sent its shares`);
    const to = shares.map((s) => s.peer).sort();
    const want = [...this.index.keys()].filter((h) => h !== hospital).sort();
    if (to.length !== want.length || to.some((h, i) => h !== want[i])) throw new SecAggRefusal(`${hospital} must send one share to each other roster member (${want.join(', ')})`);
    this.shares.set(hospital, shares);
  }

  allSharesIn(owing: Iterable<string>): boolean {
    for (const h of owing) if (this.index.has(h) && !this.shares.has(h)) return false;
    return true;
  }

  /**
   * End phase 1: U2 and, for each member of it, the shares addressed to it by the other members of U2.
   * Throws SecAggFailure if |U2| < t.
   */
  closeShares(): { members: string[]; forHospital: Map<string, SealedShare[]> } {
    this.expect('shares', 'the end of the shares phase');
    const members = [...this.shares.keys()].sort();
    if (members.length < this.roster!.threshold) this.fail('shares', members.length, this.roster!.threshold);
    this.u2 = members;
    const forHospital = new Map<string, SealedShare[]>();
    for (const to of members) {
      forHospital.set(
        to,
        members.filter((from) => from !== to).map((from) => ({ peer: from, data: this.shares.get(from)!.find((s) => s.peer === to)!.data })),
      );
    }
    this.shares.clear();
    this.phase = 'masked';
    return { members, forHospital };
  }

  /** Phase 2: a masked update (its words; the caller checks the rest of the header). */
  addMasked(hospital: string, words: Uint32Array): void {
    this.expect('masked', 'a masked update');
    if (!this.u2!.includes(hospital)) throw new SecAggRefusal(`${hospital} did not share its keys in time: its masked update cannot be unmasked`);
    if (this.maskedFrom.has(hospital)) throw new SecAggRefusal(`${hospital} already sent its masked update`);
    if (words.length !== this.opts.length) throw new SecAggRefusal(`a masked update has ${this.opts.length} words for this model, got ${words.length}`);
    const sum = (this.sum ??= new Uint32Array(this.opts.length));
    for (let i = 0; i < sum.length; i++) sum[i] += words[i];
    this.maskedFrom.add(hospital);
  }

  /** End phase 2: U3 (who sent a masked update). Throws SecAggFailure if |U3| < t. */
  closeMasked(): { survivors: string[]; dropped: string[] } {
    this.expect('masked', 'the end of the masked-update phase');
    const survivors = [...this.maskedFrom].sort();
    if (survivors.length < this.roster!.threshold) this.fail('masked', survivors.length, this.roster!.threshold);
    this.u3 = survivors;
    this.phase = 'unmask';
    return { survivors, dropped: this.u2!.filter((h) => !this.maskedFrom.has(h)) };
  }

  /** Phase 3: a survivor's unmasking answer (a share of each U2 member's seed or key, as client.reveal gives). */
  addReveal(hospital: string, shares: RevealedShare[]): void {
    this.expect('unmask', 'an unmasking answer');
    if (!this.u3!.includes(hospital)) throw new SecAggRefusal(`${hospital} is not a survivor of this round`);
    if (this.reveals.has(hospital)) throw new SecAggRefusal(`${hospital} already answered`);
    const u3 = new Set(this.u3);
    const want = this.u2!;
    const got = new Map(shares.map((s) => [s.of, s]));
    if (got.size !== shares.length || shares.length !== want.length || want.some((h) => !got.has(h))) throw new SecAggRefusal(`${hospital} must reveal one share for each of ${want.join(', ')}`);
    for (const s of shares) if (s.kind !== (u3.has(s.of) ? 'seed' : 'key')) throw new SecAggRefusal(`${hospital} revealed the ${s.kind} of ${s.of}, which is not asked for`);
    this.reveals.set(hospital, shares);
  }

  allRevealsIn(owing: Iterable<string>): boolean {
    for (const h of owing) if (this.u3?.includes(h) && !this.reveals.has(h)) return false;
    return true;
  }

  /**
   * End phase 3: remove the masks and return Σ x over U3 (mod 2^32, the encoded sum). Throws SecAggFailure
   * if fewer than t survivors answered; an Error if the shares do not rebuild a key that fits its public key
   * (a bug, or a hospital that lied).
   */
  async unmask(): Promise<{ sum: Uint32Array; survivors: string[] }> {
    this.expect('unmask', 'the end of unmasking');
    const t = this.roster!.threshold;
    const answered = [...this.reveals.keys()].sort();
    if (answered.length < t) this.fail('unmask', answered.length, t);
    const use = answered.slice(0, t);
    const shareOf = (h: string) => combineShares(use.map((a) => fromBase64(this.reveals.get(a)!.find((s) => s.of === h)!.data)));
    const sum = this.sum!;
    const survivors = this.u3!;
    for (const h of survivors) await applyMask(sum, shareOf(h), -1);
    const members = this.roster!.members;
    const byName = new Map(members.map((m) => [m.hospital, m]));
    for (const v of this.u2!.filter((h) => !survivors.includes(h))) {
      const mv = byName.get(v)!;
      const key = await importPrivateScalar(shareOf(v), fromBase64(mv.sPk));
      for (const u of survivors) {
        const mu = byName.get(u)!;
        const seed = await agreeKey(key, fromBase64(mu.sPk), maskLabel(this.opts.round, this.opts.attempt));
        // u added +PRG(s_uv) when its index is below v's, −PRG otherwise: take it away.
        await applyMask(sum, seed, mu.index < mv.index ? -1 : 1);
      }
    }
    this.sum = undefined;
    this.phase = 'done';
    return { sum, survivors: [...survivors] };
  }
}
