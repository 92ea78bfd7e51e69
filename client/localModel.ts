import * as tf from '@tensorflow/tfjs-core';
import { SPEED_CHECK, speedCheckDone, speedCheckSteps, StepSpeedMeter, type StepSpeed } from '../shared/fed/eta.ts';
import { loadProbeExtractor, type ExtractorLoader } from '../shared/fed/hospitalProbe.ts';
import { HospitalTraining, type HospitalPrivacyOptions, type LocalWeightsStore } from '../shared/fed/hospitalTraining.ts';
import { progressAt, type LocalPlan } from '../shared/gan/localTraining.ts';
import type { StepLosses } from '../shared/gan/step.ts';
import type { TrainFn, TrainResult } from '../shared/protocol/federationClient.ts';
import type { ProbeReport } from '../shared/protocol/messages.ts';
import { LocalDataset } from './localDataset.ts';
import type { TileStore } from './tileStore.ts';

/**
 * The browser hospital's local training: the federation client's TrainFn, a thin adapter over the shared
 * hospital round (shared/fed/hospitalTraining.ts). What it adds for the browser:
 * - the tiles come from IndexedDB (localDataset.ts) and the hospital's own weights live there too
 *   (localWeights.ts), so FedBN's local batch norm survives a reload;
 * - the hospital's name, which keys its seed, is the one the server gave in its welcome;
 * - every step's losses are read back asynchronously and at most MAX_IN_FLIGHT steps run ahead of the
 *   readbacks, so the GPU stays busy while progress, the live loss chart and cancellation follow the steps
 *   the device has really finished;
 * - this computer's speed: every round's steps are timed as they finish (shared/fed/eta.ts StepSpeedMeter,
 *   after the warm-up steps), and a speed check (`measureSpeed`) rehearses a few steps before training, so
 *   the page can show the expected training time before the first round and an ETA during each.
 * The sample grid, the export and the quality check use the global model (globalModel.ts).
 */

/** Training steps dispatched to the device but not yet read back (see train()). */
export const MAX_IN_FLIGHT = 2;

export interface TrainingProgress {
  round: number;
  attempt: number;
  /** Generator steps the device has finished, of the round's `localSteps`. */
  done: number;
  total: number;
  fraction: number;
  /** This round's speed so far (after the warm-up steps), once a timed step has finished. */
  speed?: StepSpeed;
}

/** A speed measured on this computer with the federation's model. */
export interface MeasuredSpeed extends StepSpeed {
  /** `check`: the speed check before training; `round`: the steps of round `round`. */
  source: 'check' | 'round';
  round?: number;
  /** Architecture fingerprint of the model it was measured with (a new federation model voids it). */
  fingerprint: string;
  /** When it was measured (ms since epoch). */
  at: number;
}

export interface LocalModelEvents {
  onTrainingProgress(p: TrainingProgress): void;
  /** A loss reading during training; x is the position in rounds (round − 1 + fraction). */
  onLoss(round: number, x: number, dLoss: number, gLoss: number): void;
  /** A new measurement of this computer's speed: a speed check finished, or a round's steps were timed. */
  onSpeed?(s: MeasuredSpeed): void;
  /** The quality probe a round asked for (shared/fed/hospitalProbe.ts): its figures, or why there are none. */
  onProbe?(p: { round: number; quality?: ProbeReport; error?: string }): void;
}

export interface LocalModelDeps {
  store: Pick<TileStore, 'loadTiles'>;
  /** This hospital's weights between rounds (StoredLocalWeights in the app). */
  localWeights: LocalWeightsStore;
  /** The hospital's name as the server knows it (from the welcome), once connected. */
  hospital: () => string | undefined;
  events: LocalModelEvents;
  /** Monotonic clock in ms for timing steps (default performance.now). */
  now?: () => number;
  /** Loads the quality probe's feature network (default: shared/fed/hospitalProbe.ts loadProbeExtractor; tests pass the tiny one). */
  probeFeatures?: ExtractorLoader;
  /** This hospital's own privacy budget and its privacy ledger (IndexedDB in the app; shared/privacy/budget.ts). */
  privacy?: HospitalPrivacyOptions;
}

export class LocalModel {
  private readonly dataset: LocalDataset;
  private readonly hospital: HospitalTraining;
  private readonly now: () => number;
  /** The speed check in progress, if any (a round stops it). */
  private check?: { abort: AbortController; done: Promise<MeasuredSpeed | undefined> };

  constructor(private readonly deps: LocalModelDeps) {
    this.dataset = new LocalDataset(deps.store);
    this.hospital = new HospitalTraining({
      hospital: deps.hospital,
      data: (cfg) => this.dataset.get(cfg),
      localWeights: deps.localWeights,
      // Rounds that ask for it probe the received model's quality (the network loaded once, kept in the worker).
      probeFeatures: deps.probeFeatures ?? loadProbeExtractor,
      onProbeError: (e, round) => deps.events.onProbe?.({ round, error: e.message }),
      ...(deps.privacy ? { privacy: deps.privacy } : {}),
    });
    this.now = deps.now ?? (() => performance.now());
  }

  /** Tiles changed (import, delete): rebuild the training set before the next round. */
  tilesChanged(): void {
    this.dataset.changed();
  }

  /**
   * Every step's two losses are read back asynchronously, and the loop waits before dispatching a step
   * while MAX_IN_FLIGHT steps are still unread; `onRead` hears each step as the device finishes it.
   */
  private pipeline(onRead: (done: number, dLoss: number, gLoss: number) => void) {
    const inFlight: Promise<void>[] = [];
    return {
      onStep: (done: number, losses: StepLosses) => {
        const both = tf.stack([losses.dLoss, losses.gLoss]);
        inFlight.push(
          both.data().then(
            (v) => {
              both.dispose();
              onRead(done, v[0], v[1]);
            },
            () => both.dispose(),
          ),
        );
      },
      beforeStep: async () => {
        while (inFlight.length >= MAX_IN_FLIGHT) await inFlight.shift();
      },
      drain: () => Promise.all(inFlight),
    };
  }

  /** A meter fed in step order (readbacks may resolve out of order: an older reading is dropped). */
  private meter(): { record: (done: number) => void; meter: StepSpeedMeter } {
    const meter = new StepSpeedMeter(SPEED_CHECK.warmupSteps);
    let last = -1;
    return {
      meter,
      record: (done) => {
        if (done <= last) return;
        last = done;
        meter.record(done, this.now());
      },
    };
  }

  /** The federation client's TrainFn: one round of local training from the global weights. */
  readonly train: TrainFn = async (global, rc, progress, signal): Promise<TrainResult> => {
    await this.stopSpeedCheck();
    const events = this.deps.events;
    let plan: LocalPlan | undefined;
    const timing = this.meter();
    const report = (done: number) => {
      if (!plan) return;
      const p = progressAt(done, plan);
      timing.record(p.done);
      const speed = timing.meter.speed;
      progress(p.fraction, `step ${p.done}/${p.total}`);
      events.onTrainingProgress({ round: rc.round, attempt: rc.attempt, done: p.done, total: p.total, fraction: p.fraction, ...(speed ? { speed } : {}) });
    };
    let lastLossAt = 0;
    const pipe = this.pipeline((done, d, g) => {
      report(done);
      const total = plan!.totalSteps;
      const now = Date.now();
      if ((now - lastLossAt >= 200 || done === total) && Number.isFinite(d) && Number.isFinite(g)) {
        lastLossAt = now;
        events.onLoss(rc.round, rc.round - 1 + done / total, d, g);
      }
    });
    try {
      const r = await this.hospital.train(global, rc, {
        signal,
        onStart: (p) => {
          plan = p;
          report(0);
        },
        onStep: pipe.onStep,
        beforeStep: pipe.beforeStep,
      });
      await pipe.drain();
      const speed = timing.meter.speed;
      if (speed) events.onSpeed?.({ ...speed, source: 'round', round: rc.round, fingerprint: global.fingerprint, at: Date.now() });
      if (r.quality) this.deps.events.onProbe?.({ round: rc.round, quality: r.quality });
      return { weights: r.weights, examples: r.examples, dLoss: r.dLoss, gLoss: r.gLoss, ...(r.quality ? { quality: r.quality } : {}), ...(r.privacy ? { privacy: r.privacy } : {}) };
    } finally {
      await pipe.drain();
    }
  };

  /**
   * The speed check: rehearse a round of the federation's `model` (its GAN config as the server sends it)
   * on this hospital's tiles (HospitalTraining.rehearse, the same loop and readbacks as a round), timing
   * the steps after SPEED_CHECK.warmupSteps until `speedCheckDone` (shared/fed/eta.ts). Nothing is kept.
   * A round that starts stops it. Resolves with the speed, or undefined when it was stopped before a
   * timed step finished; `onProgress` hears each finished step of at most `speedCheckSteps()`. While a
   * check runs, another call gets the same result.
   */
  measureSpeed(model: Record<string, unknown>, onProgress?: (done: number, total: number) => void, opts: { dp?: boolean } = {}): Promise<MeasuredSpeed | undefined> {
    if (this.check) return this.check.done;
    const abort = new AbortController();
    const total = speedCheckSteps();
    const timing = this.meter();
    const pipe = this.pipeline((done) => {
      timing.record(done);
      onProgress?.(done, total);
      if (speedCheckDone(timing.meter)) abort.abort();
    });
    const run = (async (): Promise<MeasuredSpeed | undefined> => {
      try {
        await this.hospital.rehearse(model, total, { signal: abort.signal, onStart: () => timing.record(0), onStep: pipe.onStep, beforeStep: pipe.beforeStep }, opts);
      } finally {
        await pipe.drain();
      }
      const speed = timing.meter.speed;
      const fingerprint = this.hospital.model?.fingerprint;
      return speed && fingerprint ? { ...speed, source: 'check', fingerprint, at: Date.now() } : undefined;
    })();
    const done = run.then(
      (speed) => {
        if (this.check === check) this.check = undefined;
        if (speed) this.deps.events.onSpeed?.(speed);
        return speed;
      },
      (e: unknown) => {
        if (this.check === check) this.check = undefined;
        throw e;
      },
    );
    // Set before this call returns, so that a round starting right after it finds the check and stops it.
    const check = { abort, done };
    this.check = check;
    return done;
  }

  /** Whether a speed check is running. */
  get measuring(): boolean {
    return this.check !== undefined;
  }

  /** Stop a speed check in progress (between two steps) and wait for it (the page's Stop button). */
  async stopSpeedCheck(): Promise<void> {
    const c = this.check;
    if (!c) return;
    c.abort.abort();
    await c.done.catch(() => {});
  }

  /** Forget everything in memory (after Delete my data). */
  async reset(): Promise<void> {
    await this.stopSpeedCheck();
    this.hospital.dispose();
    await this.dataset.reset();
  }
}
