import { z } from 'zod';
import { composeRdp, defaultDelta, EXTENDED_ORDERS, noiseMultiplierFor, rdpToEpsilon, MAX_NOISE_MULTIPLIER, type MechanismSteps } from './accountant.ts';

/**
 * A hospital's privacy budget across rounds: what noise it trains with, how much ε it has spent, and when it
 * stops. The one implementation for every host (the browser worker through shared/fed/hospitalTraining.ts,
 * the Node hospitals, the simulation).
 *
 * Two sources of settings, combined so that a hospital can be stricter than the federation, never looser:
 * - the federation's `privacy.dp` (the round config's `dp`, shared/config/fedConfig.ts): σ or a target ε,
 *   the clip norm C, δ;
 * - the hospital's own budget, set by its staff before joining (`HospitalDpBudget`): an ε it will not
 *   exceed, or a noise multiplier (and a clip norm), or both.
 * σ is the larger of the two noise multipliers set; the ε cap the smaller of the two ε set; δ the smaller of
 * the δ set, else 1/(10·N) with N the hospital's training tiles. With an ε cap, σ is raised (if needed) to
 * the smallest value that keeps ε after ALL the remaining planned rounds (this one included, as if the
 * hospital took part in every one) within the cap, given what it has already spent. A round that would
 * still take ε past the cap (the plan changed: more rounds or steps) is declined with a reason, and so is
 * every later one.
 *
 * Accounting (shared/privacy/accountant.ts): one generator step = one Poisson-sampled batch with q =
 * min(batchSize, N)/N (shared/gan/localTraining.ts `sampling: 'poisson'`), DP-SGD with noise σ·C on the
 * discriminator; WGAN-GP's nCritic critic updates on that batch count as one Gaussian with σ/√nCritic
 * (shared/privacy/dpSgd.ts effectiveNoiseMultiplier). A round is recorded in the ledger when its training
 * finishes, before its update is sent (a round whose update then fails to arrive still counts: the
 * conservative side). RDP is composed over all recorded rounds and converted to ε at the current δ.
 */

/** The orders the budget accounts on: Opacus's defaults plus large ones (small q·steps peak there). */
export const BUDGET_ORDERS = EXTENDED_ORDERS;

/** A hospital's own budget (null: not set by the hospital). */
export interface HospitalDpBudget {
  /** The most ε this hospital will spend over the whole federation. */
  epsilon: number | null;
  /** At least this noise multiplier σ. */
  noiseMultiplier: number | null;
  /** The clip norm C (null: the federation's). */
  clipNorm: number | null;
  /** δ (null: the federation's, else 1/(10·N)). */
  delta: number | null;
}

export const NO_HOSPITAL_BUDGET: HospitalDpBudget = { epsilon: null, noiseMultiplier: null, clipNorm: null, delta: null };

/** A hospital budget as staff or a file gives it; errors name the field. */
export const hospitalDpBudgetSchema = z
  .object({
    epsilon: z.number().positive('ε must be above 0').max(1000, 'ε must be at most 1000').nullable().default(null),
    noiseMultiplier: z.number().positive('the noise multiplier must be above 0').max(MAX_NOISE_MULTIPLIER, `the noise multiplier must be at most ${MAX_NOISE_MULTIPLIER}`).nullable().default(null),
    clipNorm: z.number().positive('the clip norm must be above 0').max(1e6).nullable().default(null),
    delta: z.number().gt(0, 'δ must be above 0').max(1e-2, 'δ must be at most 0.01').nullable().default(null),
  })
  .strict();

/** Validate a hospital budget; throws an Error whose message names each bad field. */
export function parseHospitalDpBudget(input: unknown): HospitalDpBudget {
  const r = hospitalDpBudgetSchema.safeParse(input ?? {});
  if (r.success) return r.data;
  throw new Error(`invalid privacy budget: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
}

/** True when the hospital asked for DP itself (an ε cap or a noise multiplier). */
export function hasOwnBudget(b: HospitalDpBudget | null | undefined): boolean {
  return !!b && (b.epsilon !== null || b.noiseMultiplier !== null);
}

/** The federation's DP settings as the round config carries them (RoundConfig `dp`). */
export interface FederationDp {
  clipNorm: number;
  noiseMultiplier?: number;
  targetEpsilon?: number;
  delta?: number;
}

/** One round this hospital trained with DP (persisted where the hospital keeps its state). */
export interface LedgerEntry {
  round: number;
  attempt: number;
  /** Generator steps (Poisson-sampled batches) of the round. */
  steps: number;
  /** q of those steps. */
  sampleRate: number;
  /** σ per step as accounted (σ/√nCritic for WGAN-GP). */
  effectiveNoiseMultiplier: number;
  /** The σ and C the round trained with, and when it finished (ISO time), for the record. */
  noiseMultiplier: number;
  clipNorm: number;
  at: string;
}

/** Where a hospital keeps its ledger: IndexedDB in the browser, memory (or its state file) in Node. */
export interface PrivacyLedgerStore {
  load(): Promise<readonly LedgerEntry[]> | readonly LedgerEntry[];
  append(entry: LedgerEntry): Promise<void> | void;
}

export function memoryLedger(initial: readonly LedgerEntry[] = []): PrivacyLedgerStore & { readonly entries: readonly LedgerEntry[] } {
  const entries = [...initial];
  return {
    get entries() {
      return entries;
    },
    load: () => [...entries],
    append(e) {
      entries.push({ ...e });
    },
  };
}

function mechanisms(ledger: readonly LedgerEntry[]): MechanismSteps[] {
  return ledger.map((e) => ({ sampleRate: e.sampleRate, noiseMultiplier: e.effectiveNoiseMultiplier, steps: e.steps }));
}

/** ε spent by the rounds of a ledger at δ (0 for an empty ledger). */
export function epsilonSpent(ledger: readonly LedgerEntry[], delta: number): number {
  if (ledger.length === 0) return 0;
  return rdpToEpsilon(BUDGET_ORDERS, composeRdp(mechanisms(ledger), BUDGET_ORDERS), delta).epsilon;
}

/** What a round needs to know to plan its DP training. */
export interface DpRoundInput {
  /** The federation's settings (RoundConfig `dp`); absent when the federation does not ask for DP. */
  federation?: FederationDp;
  /** The hospital's own budget; absent or all null: none. */
  own?: HospitalDpBudget | null;
  ledger: readonly LedgerEntry[];
  /** Training tiles N. */
  tiles: number;
  batchSize: number;
  gan: string;
  nCritic: number;
  /** Generator steps of a round. */
  localSteps: number;
  /** This round (1-based) and the federation's total: rounds − round + 1 remain, this one included. */
  round: number;
  rounds: number;
}

/** How a round trains under DP, and the ε figures the hospital is shown. */
export interface DpRoundPlan {
  noiseMultiplier: number;
  clipNorm: number;
  effectiveNoiseMultiplier: number;
  sampleRate: number;
  steps: number;
  delta: number;
  /** The ε cap (null: none, σ fixed). */
  budgetEpsilon: number | null;
  /** ε spent before this round, after it, and after all the remaining planned rounds (this one included). */
  epsilonSpent: number;
  epsilonAfterRound: number;
  epsilonPlanned: number;
  remainingRounds: number;
}

export type DpRoundDecision = { train: true; plan: DpRoundPlan } | { train: false; reason: string; epsilonSpent: number; delta: number; budgetEpsilon: number | null };

const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
/** δ for people: 1.0e-5 style below 0.001. */
export const formatDelta = (d: number) => (d < 1e-3 ? d.toExponential(1) : String(d));

/** The ledger entry a round planned by `plan` makes once trained. */
export function ledgerEntry(plan: DpRoundPlan, at: { round: number; attempt: number; steps?: number; time?: Date }): LedgerEntry {
  return {
    round: at.round,
    attempt: at.attempt,
    steps: at.steps ?? plan.steps,
    sampleRate: plan.sampleRate,
    effectiveNoiseMultiplier: plan.effectiveNoiseMultiplier,
    noiseMultiplier: plan.noiseMultiplier,
    clipNorm: plan.clipNorm,
    at: (at.time ?? new Date()).toISOString(),
  };
}

/**
 * Plan a round under DP, or decline it (`train: false`, with a reason starting "privacy budget:" that the
 * hospital sends as its decline reason). Returns null when neither the federation nor the hospital asks for
 * DP. Throws on inputs that cannot be (no tiles, bad step counts).
 */
export function planDpRound(p: DpRoundInput): DpRoundDecision | null {
  const own = p.own ?? NO_HOSPITAL_BUDGET;
  const fed = p.federation;
  if (!fed && !hasOwnBudget(own)) return null;
  if (!Number.isSafeInteger(p.tiles) || p.tiles < 1) throw new RangeError(`DP training needs at least one tile, got ${p.tiles}`);
  if (!Number.isSafeInteger(p.localSteps) || p.localSteps < 1) throw new RangeError(`local steps must be a whole number ≥ 1, got ${p.localSteps}`);
  const minOf = (...xs: (number | null | undefined)[]) => {
    const v = xs.filter((x): x is number => typeof x === 'number');
    return v.length ? Math.min(...v) : null;
  };
  const maxOf = (...xs: (number | null | undefined)[]) => {
    const v = xs.filter((x): x is number => typeof x === 'number');
    return v.length ? Math.max(...v) : null;
  };
  const delta = minOf(own.delta, fed?.delta) ?? defaultDelta(p.tiles);
  const cap = minOf(own.epsilon, fed?.targetEpsilon);
  const floor = maxOf(own.noiseMultiplier, fed?.noiseMultiplier);
  if (cap === null && floor === null) throw new Error('DP is on but neither the federation nor this hospital set a noise multiplier or an ε');
  const clipNorm = own.clipNorm ?? fed?.clipNorm ?? 1;
  const sampleRate = Math.min(p.batchSize, p.tiles) / p.tiles;
  const k = p.gan === 'wgan-gp' ? Math.max(1, p.nCritic) : 1;
  const remainingRounds = Math.max(1, p.rounds - p.round + 1);
  const spentRdp = composeRdp(mechanisms(p.ledger), BUDGET_ORDERS);
  const eps = (rdp: readonly number[]) => rdpToEpsilon(BUDGET_ORDERS, rdp, delta).epsilon;
  const spent = p.ledger.length ? eps(spentRdp) : 0;
  const decline = (reason: string): DpRoundDecision => ({ train: false, reason: `privacy budget: ${reason}`, epsilonSpent: spent, delta, budgetEpsilon: cap });

  let effective = floor === null ? 0 : floor / Math.sqrt(k);
  if (cap !== null) {
    if (spent >= cap) return decline(`this hospital has spent ε = ${fmt(spent)} of its ε = ${fmt(cap)}, so it trains no more rounds`);
    let needed: number;
    try {
      needed = noiseMultiplierFor({ targetEpsilon: cap, sampleRate, steps: remainingRounds * p.localSteps, delta, spentRdp, orders: BUDGET_ORDERS });
    } catch (e) {
      // The remaining rounds cannot fit in what is left at any usable noise: train as many as fit, with the
      // most noise, and decline the rest when they come.
      if (!(e instanceof RangeError)) throw e;
      needed = MAX_NOISE_MULTIPLIER / Math.sqrt(k);
    }
    effective = Math.max(effective, needed);
  }
  const noiseMultiplier = effective * Math.sqrt(k);
  const with_ = (steps: number) => {
    const r = composeRdp([{ sampleRate, noiseMultiplier: effective, steps }], BUDGET_ORDERS);
    return eps(r.map((v, i) => v + spentRdp[i]));
  };
  const after = with_(p.localSteps);
  const planned = remainingRounds === 1 ? after : with_(remainingRounds * p.localSteps);
  if (cap !== null && after > cap * (1 + 1e-9)) {
    return decline(`this round would bring this hospital's ε from ${fmt(spent)} to ${fmt(after)}, past its budget of ε = ${fmt(cap)}, so it does not train it`);
  }
  return {
    train: true,
    plan: { noiseMultiplier, clipNorm, effectiveNoiseMultiplier: effective, sampleRate, steps: p.localSteps, delta, budgetEpsilon: cap, epsilonSpent: spent, epsilonAfterRound: after, epsilonPlanned: planned, remainingRounds },
  };
}

/**
 * Plain-language lines for staff (the web app's privacy panel, logs): what ε has been spent and what the
 * plan leads to. `epsilon` figures rounded to 2 significant decimals.
 */
export function describeEpsilon(x: { spent: number; planned?: number | null; budget?: number | null; delta: number }): string {
  const parts = [`This hospital's tiles have spent ε = ${fmt(x.spent)} so far (at δ = ${formatDelta(x.delta)}).`];
  if (x.planned != null) parts.push(`After all the planned rounds it would be ε = ${fmt(x.planned)}.`);
  if (x.budget != null) parts.push(`Its budget is ε = ${fmt(x.budget)}: training stops before going past it.`);
  return parts.join(' ');
}

export { fmt as formatEpsilon };

/** What a hospital is shown before and between rounds (the web app's privacy panel). */
export interface PrivacyPreview {
  /** DP is on for this hospital: the federation asks for it or its staff set a budget. */
  on: boolean;
  /** Rounds trained with DP so far, and the ε they spent at δ (0 before any). */
  roundsTrained: number;
  spent: number;
  /** δ of the figures (null: not known yet, no tiles). */
  delta: number | null;
  /** ε after all the planned rounds, if the hospital trains each with the noise the next one would use. */
  planned: number | null;
  /** The ε cap (null: none). */
  budgetEpsilon: number | null;
  /** σ and C the next round would train with. */
  noiseMultiplier: number | null;
  clipNorm: number | null;
  /** Why the next round would be declined ("privacy budget: …"). */
  stopped?: string;
}

/** The figures of the next round's plan, without training: `round` is the next round (rounds completed + 1). */
export function previewPrivacy(p: DpRoundInput): PrivacyPreview {
  const own = p.own ?? NO_HOSPITAL_BUDGET;
  const on = !!p.federation || hasOwnBudget(own);
  const base = { on, roundsTrained: p.ledger.length, spent: 0, delta: null, planned: null, budgetEpsilon: null, noiseMultiplier: null, clipNorm: null };
  if (!Number.isSafeInteger(p.tiles) || p.tiles < 1) return base;
  const d = on ? planDpRound({ ...p, round: Math.min(p.round, p.rounds) }) : null;
  if (!d) {
    const delta = own.delta ?? defaultDelta(p.tiles);
    return { ...base, spent: epsilonSpent(p.ledger, delta), delta };
  }
  if (!d.train) return { ...base, spent: d.epsilonSpent, delta: d.delta, budgetEpsilon: d.budgetEpsilon, stopped: d.reason };
  const x = d.plan;
  return { ...base, spent: x.epsilonSpent, delta: x.delta, planned: x.epsilonPlanned, budgetEpsilon: x.budgetEpsilon, noiseMultiplier: x.noiseMultiplier, clipNorm: x.clipNorm };
}
