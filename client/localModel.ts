import * as tf from '@tensorflow/tfjs-core';
import { loadProbeExtractor, type ExtractorLoader } from '../shared/fed/hospitalProbe.ts';
import { HospitalTraining, type LocalWeightsStore } from '../shared/fed/hospitalTraining.ts';
import { progressAt, type LocalPlan } from '../shared/gan/localTraining.ts';
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
 *   the device has really finished.
 * The sample grid, the export and the quality check use the global model (globalModel.ts).
 */

/** Training steps dispatched to the device but not yet read back (see train()). */
export const MAX_IN_FLIGHT = 2;

export interface TrainingProgress {
  round: number;
  attempt: number;
  epoch: number;
  epochs: number;
  step: number;
  stepsPerEpoch: number;
  fraction: number;
}

export interface LocalModelEvents {
  onTrainingProgress(p: TrainingProgress): void;
  /** A loss reading during training; x is the position in rounds (round − 1 + fraction). */
  onLoss(round: number, x: number, dLoss: number, gLoss: number): void;
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
  /** Loads the quality probe's feature network (default: shared/fed/hospitalProbe.ts loadProbeExtractor; tests pass the tiny one). */
  probeFeatures?: ExtractorLoader;
}

export class LocalModel {
  private readonly dataset: LocalDataset;
  private readonly hospital: HospitalTraining;

  constructor(private readonly deps: LocalModelDeps) {
    this.dataset = new LocalDataset(deps.store);
    this.hospital = new HospitalTraining({
      hospital: deps.hospital,
      data: (cfg) => this.dataset.get(cfg),
      localWeights: deps.localWeights,
      // Rounds that ask for it probe the received model's quality (the network loaded once, kept in the worker).
      probeFeatures: deps.probeFeatures ?? loadProbeExtractor,
      onProbeError: (e, round) => deps.events.onProbe?.({ round, error: e.message }),
    });
  }

  /** Tiles changed (import, delete): rebuild the training set before the next round. */
  tilesChanged(): void {
    this.dataset.changed();
  }

  /** The federation client's TrainFn: one round of local training from the global weights. */
  readonly train: TrainFn = async (global, rc, progress, signal): Promise<TrainResult> => {
    const events = this.deps.events;
    let plan: LocalPlan | undefined;
    const report = (done: number) => {
      if (!plan) return;
      const p = progressAt(done, plan);
      progress(p.fraction, `epoch ${p.epoch + 1}/${p.epochs}, step ${p.step}/${p.stepsPerEpoch}`);
      events.onTrainingProgress({ round: rc.round, attempt: rc.attempt, epoch: p.epoch, epochs: p.epochs, step: p.step, stepsPerEpoch: p.stepsPerEpoch, fraction: p.fraction });
    };
    // Every step's two losses are read back asynchronously, and the loop waits before dispatching a
    // step while MAX_IN_FLIGHT steps are still unread.
    const inFlight: Promise<void>[] = [];
    let lastLossAt = 0;
    try {
      const r = await this.hospital.train(global, rc, {
        signal,
        onStart: (p) => {
          plan = p;
          report(0);
        },
        onStep: (done, losses) => {
          const both = tf.stack([losses.dLoss, losses.gLoss]);
          inFlight.push(
            both.data().then(
              (v) => {
                both.dispose();
                report(done);
                const total = plan!.totalSteps;
                const now = Date.now();
                if ((now - lastLossAt >= 200 || done === total) && Number.isFinite(v[0]) && Number.isFinite(v[1])) {
                  lastLossAt = now;
                  events.onLoss(rc.round, rc.round - 1 + done / total, v[0], v[1]);
                }
              },
              () => both.dispose(),
            ),
          );
        },
        beforeStep: async () => {
          while (inFlight.length >= MAX_IN_FLIGHT) await inFlight.shift();
        },
      });
      if (r.quality) this.deps.events.onProbe?.({ round: rc.round, quality: r.quality });
      return { weights: r.weights, examples: r.examples, dLoss: r.dLoss, gLoss: r.gLoss, ...(r.quality ? { quality: r.quality } : {}) };
    } finally {
      await Promise.all(inFlight);
    }
  };

  /** Forget everything in memory (after Delete my data). */
  async reset(): Promise<void> {
    this.hospital.dispose();
    await this.dataset.reset();
  }
}
