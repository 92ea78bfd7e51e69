import { parseGanConfig, type GanConfig } from '../config/ganConfig.ts';
import type { Dataset } from '../data/dataset.ts';
import { createGan, type Gan } from '../gan/gan.ts';
import { planLocalTraining, trainLocal, type LocalPlan, type LocalProgress } from '../gan/localTraining.ts';
import type { StepLosses } from '../gan/step.ts';
import { createTrainer } from '../gan/trainer.ts';
import type { ProbeReport, RoundConfig } from '../protocol/messages.ts';
import type { WeightSet } from '../weights.ts';
import { ledgerEntry, memoryLedger, planDpRound, type DpRoundPlan, type FederationDp, type HospitalDpBudget, type PrivacyLedgerStore } from '../privacy/budget.ts';
import { applyGlobalWeights, isBatchNormPolicy, weightsToUpload } from './batchNormPolicy.ts';
import { HospitalProbe, type ExtractorLoader } from './hospitalProbe.ts';
import { hospitalSeed, roundSeed } from './seeds.ts';

/**
 * One hospital's side of a federated round, the one implementation behind every host: the browser worker
 * (client/localModel.ts), the Node hospitals that join a real server (cli/remote.ts) and the in-process
 * simulation (cli/simulation.ts). Its input is exactly what the server sends (design decision D2): the
 * global weights and the round's `RoundConfig`. A round:
 *
 * 1. builds the GAN config of the round (`ganConfigForRound`: the model config with the round's learning
 *    rates) and rebuilds the model when that config changed;
 * 2. checks the hospital's tiles against the round (`examplesForRound`, the one example-count rule);
 * 3. loads the global weights, keeping this hospital's own batch-norm tensors under FedBN (D1); on a round
 *    that asks for it (`config.quality`), scores that model with the quality probe (hospitalProbe.ts)
 *    before training;
 * 4. trains exactly `localSteps` generator steps (however many tiles the hospital has: passes over its
 *    tiles repeat, each reshuffled; shared/gan/localTraining.ts) with fresh optimizers and the round's seed
 *    (D3: `roundSeed(hospitalSeed(model seed, hospital name), round, attempt)`, for the trainer's draws, the
 *    dropout masks and the shuffles alike);
 * 5. keeps the trained weights as this hospital's local weights (through `LocalWeightsStore`) and returns
 *    the update: under FedBN with the global model's batch-norm values in place of the local ones (D1).
 *
 * Differential privacy (docs/privacy.md): when the round config carries `dp` (the federation's
 * `privacy.dp`) or the hospital set a budget of its own (`HospitalTrainingOptions.privacy`), the round is
 * planned by shared/privacy/budget.ts before any work: declined with a "privacy budget: …" error when it
 * would take the hospital past its ε, else trained with DP-SGD (the trainer's `dp`, Poisson-sampled batches)
 * with a secret seed for its noise and batches (`secretSeed`), and recorded in the hospital's privacy ledger
 * before the update is returned. Under DP the update carries
 * `privacy` (ε spent after this round, at δ) and sends dLoss 0 (the mean discriminator loss is computed on
 * real tiles without noise; the host still shows its own per-step losses locally), and the hospital does not
 * run the quality probe (its KID is computed on the hospital's tiles and would be sent without noise).
 */

/** Round config → the GAN config the hospital trains: the round's model with the round's learning rates. */
export function ganConfigForRound(rc: RoundConfig): GanConfig {
  const cfg = parseGanConfig(rc.model, `round ${rc.round} model config`);
  if (rc.imageSize !== cfg.imageSize) throw new Error(`round ${rc.round} asks for ${rc.imageSize} px tiles but its model config builds ${cfg.imageSize} px`);
  if (rc.ganType !== cfg.gan) throw new Error(`round ${rc.round} says it trains ${rc.ganType} but its model config builds ${cfg.gan}`);
  if (!isBatchNormPolicy(rc.batchNorm)) throw new Error(`round ${rc.round} has an unknown batch-norm policy ${JSON.stringify(rc.batchNorm)}`);
  for (const which of ['generator', 'discriminator'] as const) {
    const lr = rc.learningRate?.[which];
    if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) throw new Error(`round ${rc.round} has no valid ${which} learning rate (got ${lr})`);
  }
  return {
    ...cfg,
    optimizerG: { ...cfg.optimizerG, learningRate: rc.learningRate.generator },
    optimizerD: { ...cfg.optimizerD, learningRate: rc.learningRate.discriminator },
  };
}

/**
 * The example-count rule, the same for every host. `examples` is the FedAvg weight of an update and the
 * server accepts it only within `config.examples` (min…max):
 * - a hospital with fewer tiles than `min` does not train: the round fails here, before any work, with a
 *   message the federation client sends as its decline reason;
 * - a hospital with more tiles than `max` trains on all of them but reports `max`, so that no hospital
 *   weighs more in the average than the federation allows.
 * Returns the count to report.
 */
export function examplesForRound(tiles: number, limits: RoundConfig['examples']): number {
  if (!Number.isSafeInteger(tiles) || tiles < 0) throw new RangeError(`the tile count must be a whole number, got ${tiles}`);
  if (tiles < limits.min) {
    throw new Error(`this hospital has ${tiles} tile${tiles === 1 ? '' : 's'} for the round; the federation asks for at least ${limits.min}`);
  }
  return Math.min(tiles, limits.max);
}

/**
 * Where a hospital keeps its own weights between rounds (under FedBN its batch-norm tensors come from
 * them). The browser keeps them in IndexedDB (they survive a reload), Node hosts in memory.
 */
export interface LocalWeightsStore {
  /** This hospital's last trained weights if it has some of this architecture (fingerprint). */
  load(fingerprint: string): Promise<WeightSet | undefined> | WeightSet | undefined;
  /** The weights this hospital trained in `round` (with the round's model config). */
  save(weights: WeightSet, info: { round: number; model: Record<string, unknown> }): Promise<void> | void;
}

/** Local weights kept in memory (a copy, so nothing the caller holds aliases them). */
export function memoryLocalWeights(): LocalWeightsStore & { readonly weights: WeightSet | undefined } {
  let kept: WeightSet | undefined;
  return {
    get weights() {
      return kept;
    },
    load: (fingerprint) => (kept?.fingerprint === fingerprint ? kept : undefined),
    save(weights) {
      kept = { fingerprint: weights.fingerprint, tensors: weights.tensors.map((t) => ({ name: t.name, shape: [...t.shape], data: t.data.slice() })) };
    },
  };
}

export interface HospitalRoundHooks {
  /** Stop early: the round then fails with an "aborted" error and nothing is kept. */
  signal?: AbortSignal;
  /** Once the round's work is known, before the first step. */
  onStart?: (plan: LocalPlan, seed: number) => void;
  /** Steps done / total with the epoch, after each step (see shared/gan/localTraining.ts). */
  onProgress?: (p: LocalProgress) => void;
  /** Live losses: each step's loss scalars right after it was dispatched (valid during the call only). */
  onStep?: (done: number, losses: StepLosses) => void;
  /** Awaited before each step (a GPU host bounds the steps in flight with it). */
  beforeStep?: () => Promise<void> | void;
}

export interface HospitalRoundResult {
  /** The update to send: the trained weights, under FedBN with the global model's batch-norm values. */
  weights: WeightSet;
  /** The FedAvg weight to report (`examplesForRound`). */
  examples: number;
  /** Tiles trained on. */
  tiles: number;
  /** Mean losses over the last complete pass over the tiles (LocalResult). */
  dLoss: number;
  gLoss: number;
  steps: number;
  seconds: number;
  /** The round's seed (`roundSeed`). */
  seed: number;
  /** The quality probe of the received model, when the round asked for one and it succeeded. */
  quality?: ProbeReport;
  /** Under DP: ε spent by this hospital after this round (this round included), at δ (the update header's `privacy`). */
  privacy?: { epsilon: number; delta: number };
  /** Under DP: the round's plan (σ, C, q, ε before/after, ε after the planned rounds). */
  dp?: DpRoundPlan;
  /** Under DP the mean discriminator loss is not sent (dLoss is then 0): this is the local one, for display. */
  localDLoss?: number;
}

/** What a hospital's privacy needs: its own budget (read at each round) and where its ledger lives. */
export interface HospitalPrivacyOptions {
  /** The budget the hospital's staff set (null or all-null fields: none of its own). */
  budget: () => Promise<HospitalDpBudget | null> | HospitalDpBudget | null;
  /** Where the rounds trained with DP are recorded (default: in memory). */
  ledger?: PrivacyLedgerStore;
  /** The plan of each DP round once made, before training (the web app shows its ε figures). */
  onPlan?: (plan: DpRoundPlan, round: number) => void;
}

export interface HospitalTrainingOptions {
  /**
   * The name the server knows this hospital by (the tokens-file `hospital`, the simulation's partition
   * name), or a function returning it when it is known only once connected (the browser learns it from
   * the server's welcome). It keys the hospital's seed.
   */
  hospital: string | (() => string | undefined);
  /** The hospital's tiles, or a function that loads them for the round's model config. Not disposed here. */
  data: Dataset | ((model: GanConfig) => Promise<Dataset> | Dataset);
  /** Where the hospital's own weights live between rounds. Default: in memory. */
  localWeights?: LocalWeightsStore;
  /**
   * Loads the feature network of the quality probes rounds ask for (RoundConfig `quality`; hospitalProbe.ts
   * loadProbeExtractor is the shared one). Without it the hospital does not probe and its updates carry
   * no `quality`.
   */
  probeFeatures?: ExtractorLoader;
  /** A probe that failed (too few tiles, a network that did not load): the round goes on without it. */
  onProbeError?: (error: Error, round: number) => void;
  /** This hospital's own privacy budget and ledger (see the top of this file). Without it: the federation's DP only, ledger in memory. */
  privacy?: HospitalPrivacyOptions;
  /**
   * The secret seed of a DP round's noise and Poisson draws, drawn once per DP round and never sent: noise
   * the server could replay (the round's seed is known to it) could be subtracted, and batches it could
   * predict would void the amplification by sampling. Default: 31 bits from crypto.getRandomValues. Tests
   * inject one to replay a round.
   */
  secretSeed?: () => number;
}

/** 31 random bits from the platform's cryptographic generator (browsers, workers, Node 20). */
export function cryptoSeed(): number {
  return globalThis.crypto.getRandomValues(new Uint32Array(1))[0] >>> 1;
}

/** A round this hospital declines because of its privacy budget (the message says why, for the decline). */
export class PrivacyBudgetError extends Error {
  constructor(
    message: string,
    readonly epsilonSpent: number,
    readonly delta: number,
  ) {
    super(message);
    this.name = 'PrivacyBudgetError';
  }
}

/** Thrown when a round is stopped through its signal. */
export class RoundAbortedError extends Error {
  constructor() {
    super('aborted');
    this.name = 'RoundAbortedError';
  }
}

/**
 * A hospital across rounds: its model (rebuilt only when the round's GAN config changes), its local
 * weights, its seed. Rounds run one at a time: a call waits until the previous round has finished (a round
 * whose signal aborted stops between two steps).
 */
export class HospitalTraining {
  private gan: Gan | null = null;
  private key = '';
  private readonly localWeights: LocalWeightsStore;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly probe: HospitalProbe | null;
  private readonly ledger: PrivacyLedgerStore;

  constructor(private readonly opts: HospitalTrainingOptions) {
    this.ledger = opts.privacy?.ledger ?? memoryLedger();
    this.localWeights = opts.localWeights ?? memoryLocalWeights();
    this.probe = opts.probeFeatures ? new HospitalProbe(opts.probeFeatures) : null;
  }

  /** The model of the last round (null before the first one). */
  get model(): Gan | null {
    return this.gan;
  }

  /** The name this hospital's seed is keyed by; throws when it is not known yet. */
  hospitalName(): string {
    const h = typeof this.opts.hospital === 'function' ? this.opts.hospital() : this.opts.hospital;
    if (!h) throw new Error("this hospital's name is not known yet (the server gives it when it welcomes the hospital)");
    return h;
  }

  /** One round: `global` and `config` exactly as the server sent them. */
  train(global: WeightSet, config: RoundConfig, hooks: HospitalRoundHooks = {}): Promise<HospitalRoundResult> {
    const run = this.queue.then(
      () => this.round(global, config, hooks),
      () => this.round(global, config, hooks),
    );
    this.queue = run.catch(() => {});
    return run;
  }

  /**
   * A rehearsal of a round, to measure this computer's speed before training (the web app's speed check,
   * shared/fed/eta.ts): up to `steps` local steps of `model` (a GAN config as the server sends it) on this
   * hospital's tiles, with a fresh trainer seeded from the model seed, through the same loop and hooks as a
   * round. Nothing is kept: not as local weights, not as an update. The model stays built, so the next
   * round with the same config finds its GPU programs compiled (its weights are replaced by the round's
   * global model then). Stops between steps once `hooks.signal` aborts and resolves with the steps done.
   * Queued with the rounds: a round waits for a rehearsal in progress (abort it to let the round start).
   */
  rehearse(model: Record<string, unknown>, steps: number, hooks: HospitalRoundHooks = {}, opts: { dp?: boolean } = {}): Promise<{ steps: number; seconds: number }> {
    const run = this.queue.then(
      () => this.rehearsal(model, steps, hooks, opts.dp === true),
      () => this.rehearsal(model, steps, hooks, opts.dp === true),
    );
    this.queue = run.catch(() => {});
    return run;
  }

  /** `dp`: time DP-SGD steps (per-tile clipping, noise, Poisson batches), as the rounds will run them. */
  private async rehearsal(model: Record<string, unknown>, steps: number, hooks: HospitalRoundHooks, dp: boolean): Promise<{ steps: number; seconds: number }> {
    const cfg = parseGanConfig(model, 'the speed check’s model config');
    const data = typeof this.opts.data === 'function' ? await this.opts.data(cfg) : this.opts.data;
    if (data.size !== cfg.imageSize) throw new Error(`the model trains on ${cfg.imageSize} px tiles but this hospital's tiles are ${data.size} px`);
    const plan = planLocalTraining(data.count, cfg.batchSize, { steps });
    if (hooks.signal?.aborted) return { steps: 0, seconds: 0 };
    // The noise level does not change the cost of a step: any σ times the same work.
    const secret = dp ? (this.opts.secretSeed ?? cryptoSeed)() : undefined;
    const trainer = createTrainer(this.ensureModel(cfg), cfg.seed, dp ? { dp: { noiseMultiplier: 1, clipNorm: 1, noiseSeed: secret } } : {});
    try {
      hooks.onStart?.(plan, cfg.seed);
      const r = await trainLocal(trainer, data, {
        plan,
        seed: cfg.seed,
        onProgress: hooks.onProgress,
        onStep: hooks.onStep,
        beforeStep: hooks.beforeStep,
        shouldStop: () => hooks.signal?.aborted === true,
        ...(dp ? { sampling: 'poisson' as const, samplingSeed: secret } : {}),
      });
      return { steps: r.steps, seconds: r.seconds };
    } finally {
      trainer.dispose();
    }
  }

  private async round(global: WeightSet, config: RoundConfig, hooks: HospitalRoundHooks): Promise<HospitalRoundResult> {
    const signal = hooks.signal;
    const cfg = ganConfigForRound(config);
    const seed = roundSeed(hospitalSeed(cfg.seed, this.hospitalName()), config.round, config.attempt);
    const data = typeof this.opts.data === 'function' ? await this.opts.data(cfg) : this.opts.data;
    if (data.size !== cfg.imageSize) throw new Error(`round ${config.round} trains on ${cfg.imageSize} px tiles but this hospital's tiles are ${data.size} px`);
    const examples = examplesForRound(data.count, config.examples);
    if (signal?.aborted) throw new RoundAbortedError();
    const dp = await this.planPrivacy(config, cfg, data.count);
    if (signal?.aborted) throw new RoundAbortedError();

    const gan = this.ensureModel(cfg);
    if (global.fingerprint !== gan.fingerprint) {
      throw new Error(`the round's global weights (${global.fingerprint}) do not fit the model its config describes (${gan.fingerprint})`);
    }
    const local = config.batchNorm === 'local' ? await this.localWeights.load(gan.fingerprint) : undefined;
    gan.setWeights(applyGlobalWeights(global, local, config.batchNorm));
    // The received model (under FedBN with this hospital's batch norm), scored before training changes it.
    // Generating runs in inference mode from fixed latents: the weights and the round's draws stay as they were.
    let quality: ProbeReport | undefined;
    if (config.quality && this.probe && !dp) {
      try {
        quality = await this.probe.probe(gan, data, cfg.classes.length, config.quality);
      } catch (e) {
        this.opts.onProbeError?.(e instanceof Error ? e : new Error(String(e)), config.round);
      }
      if (signal?.aborted) throw new RoundAbortedError();
    }
    // A fresh trainer each round: fresh optimizer moments, and random draws (dropout masks included) from
    // this round's seed.
    // Under DP the noise and the batches come from a secret seed (never the round's seed, which the server knows).
    const secret = dp ? (this.opts.secretSeed ?? cryptoSeed)() : undefined;
    const trainer = createTrainer(gan, seed, dp ? { dp: { noiseMultiplier: dp.noiseMultiplier, clipNorm: dp.clipNorm, noiseSeed: secret } } : {});
    const plan = planLocalTraining(data.count, cfg.batchSize, { steps: config.localSteps });
    let r;
    try {
      hooks.onStart?.(plan, seed);
      r = await trainLocal(trainer, data, {
        plan,
        seed,
        onProgress: hooks.onProgress,
        onStep: hooks.onStep,
        beforeStep: hooks.beforeStep,
        shouldStop: () => signal?.aborted === true,
        ...(dp ? { sampling: 'poisson' as const, samplingSeed: secret } : {}),
      });
    } finally {
      trainer.dispose();
    }
    if (signal?.aborted) throw new RoundAbortedError();
    // Recorded before the update leaves (an update that then fails to arrive still counts: the safe side).
    if (dp) await this.ledger.append(ledgerEntry(dp, { round: config.round, attempt: config.attempt, steps: r.steps }));
    const trained = await gan.getWeightsAsync();
    await this.localWeights.save(trained, { round: config.round, model: config.model });
    return {
      weights: weightsToUpload(trained, global, config.batchNorm),
      examples,
      tiles: data.count,
      dLoss: dp ? 0 : r.dLoss,
      gLoss: r.gLoss,
      steps: r.steps,
      seconds: r.seconds,
      seed,
      ...(quality ? { quality } : {}),
      ...(dp ? { privacy: { epsilon: dp.epsilonAfterRound, delta: dp.delta }, dp, localDLoss: r.dLoss } : {}),
    };
  }

  /**
   * The round's DP plan (null: no DP this round), or a PrivacyBudgetError when the hospital's budget does
   * not allow it. The federation's settings come with the round (`config.dp`); the hospital's own budget and
   * ledger from its options.
   */
  private async planPrivacy(config: RoundConfig, cfg: GanConfig, tiles: number): Promise<DpRoundPlan | null> {
    const federation: FederationDp | undefined = config.dp;
    const own = this.opts.privacy ? await this.opts.privacy.budget() : null;
    const ledger = await this.ledger.load();
    const decision = planDpRound({
      federation,
      own,
      ledger,
      tiles,
      batchSize: cfg.batchSize,
      gan: cfg.gan,
      nCritic: cfg.nCritic,
      localSteps: config.localSteps,
      round: config.round,
      rounds: config.rounds,
    });
    if (!decision) return null;
    if (!decision.train) throw new PrivacyBudgetError(decision.reason, decision.epsilonSpent, decision.delta);
    this.opts.privacy?.onPlan?.(decision.plan, config.round);
    return decision.plan;
  }

  /** The rounds this hospital has trained with DP (its privacy ledger). */
  async privacyLedger() {
    return this.ledger.load();
  }

  private ensureModel(cfg: GanConfig): Gan {
    // The whole config: the steps read the GAN type, losses and optimizer settings from the model's config.
    const key = JSON.stringify(cfg);
    if (this.gan && key === this.key) return this.gan;
    this.gan?.dispose();
    this.gan = null;
    this.gan = createGan(cfg);
    this.key = key;
    return this.gan;
  }

  /** Free the model and the probe's feature networks (the data is the caller's). */
  dispose(): void {
    void this.probe?.dispose();
    this.gan?.dispose();
    this.gan = null;
    this.key = '';
  }
}
