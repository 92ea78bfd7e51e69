import type { BatchNormPolicy } from '../shared/fed/batchNormPolicy.ts';
import { generate } from '../shared/gan/gan.ts';
import { toRgbBytes } from '../shared/image/grid.ts';
import { judgeOutput, type CheckFigures, type ProbeFigure, type Verdict } from '../shared/metrics/verdict.ts';
import { buildExportZip, MAX_EXPORT_PER_CLASS, MAX_EXPORT_SEED, type ModelCard, type ModelCardPrivacy, type SyntheticClass } from './exportZip.ts';
import { epsilonSpent, type LedgerEntry } from '../shared/privacy/budget.ts';
import type { GlobalModel } from './globalModel.ts';
import { throwIfCancelled, yieldToEvents } from './job.ts';
import { encodePngRgb } from './png.ts';

/**
 * The Export panel: labelled synthetic tiles from the stored global model, packed as a ZIP with a model
 * card. Each export draws a new random seed (so two exports, or two hospitals' exports, hold different
 * images) unless staff give one to reproduce an earlier export; the card records it and the verdict.
 */

const EXPORT_BATCH = 32;

export interface ExportFederation {
  server: string;
  hospital?: string;
  rounds?: number;
  /** Generator steps per round (the verdict counts steps trained). */
  localSteps?: number;
  batchNorm: BatchNormPolicy;
  /** The federation's newest quality probe (shared/metrics/verdict.ts latestProbe). */
  probe?: ProbeFigure;
  /** The latest quality check in this browser, if any. */
  check?: CheckFigures;
  /** This hospital's differential privacy for the card (modelCardPrivacy). */
  privacy?: ModelCardPrivacy;
}

/**
 * The model card's `privacy` from this hospital's privacy ledger (the rounds it trained with DP) at δ:
 * ε composed over all of them by the RDP accountant (shared/privacy/accountant.ts).
 */
export function modelCardPrivacy(ledger: readonly LedgerEntry[], delta: number | null): ModelCardPrivacy {
  const last = ledger.at(-1);
  const dp = ledger.length > 0 && delta !== null;
  return {
    dp: ledger.length > 0,
    epsilon: dp ? epsilonSpent(ledger, delta) : null,
    delta: dp ? delta : null,
    rounds: ledger.length,
    noiseMultiplier: last?.noiseMultiplier ?? null,
    clipNorm: last?.clipNorm ?? null,
    accountant: 'Rényi DP of the Poisson-subsampled Gaussian mechanism (Mironov et al. 2019), composed over every DP round of this hospital, converted to (ε, δ) with Balle et al. 2020 (as Opacus and TensorFlow Privacy)',
    note: dp
      ? 'ε bounds what the model reveals about any one of this hospital’s tiles (example-level DP of everything this hospital sent); the other hospitals of the federation each have their own ε.'
      : 'This hospital did not train with differential privacy: no ε applies to its tiles.',
  };
}

export interface ExportOptions {
  /** Reproduce an export: its seed (a whole number from 0 to MAX_EXPORT_SEED). Default: a new random one. */
  seed?: number;
  /** Cancel: the export stops at the next batch with JobCancelled and returns nothing. */
  signal?: AbortSignal;
  /** The clock of the card's date (tests). */
  now?: () => Date;
  /** The random seed source (tests); default crypto.getRandomValues. */
  randomSeed?: () => number;
}

/** A new random seed below 2^52 from the browser's (or Node's) cryptographic generator. */
export function randomExportSeed(): number {
  const [hi, lo] = crypto.getRandomValues(new Uint32Array(2));
  return (hi & 0xfffff) * 2 ** 32 + lo;
}

/** Check a seed staff typed in; returns it. */
export function checkExportSeed(seed: number): number {
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > MAX_EXPORT_SEED) throw new Error(`the seed must be a whole number from 0 to ${MAX_EXPORT_SEED.toLocaleString('en-US')} (got ${seed})`);
  return seed;
}

/** Check the counts per class against the model's classes and the export bound; returns them complete. */
export function checkExportCounts(perClass: Record<string, number>, classes: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const c of classes) {
    const n = perClass[c] ?? 0;
    if (!Number.isInteger(n) || n < 0 || n > MAX_EXPORT_PER_CLASS) throw new Error(`the count for ${c} must be a whole number from 0 to ${MAX_EXPORT_PER_CLASS.toLocaleString('en-US')} (got ${n})`);
    counts[c] = n;
  }
  const unknown = Object.keys(perClass).filter((k) => !classes.includes(k));
  if (unknown.length) throw new Error(`unknown class(es) ${unknown.join(', ')}: the model generates ${classes.join(', ')}`);
  if (Object.values(counts).reduce((a, b) => a + b, 0) === 0) throw new Error('choose at least one image to generate');
  return counts;
}

/** Generate `perClass[c]` synthetic tiles per class from the stored global model and pack the export ZIP. */
export function exportSynthetic(
  model: Pick<GlobalModel, 'withGlobalModel'>,
  perClass: Record<string, number>,
  federation: ExportFederation,
  onProgress: (done: number, total: number, stage: string) => void,
  opts: ExportOptions = {},
): Promise<{ bytes: Uint8Array; counts: Record<string, number>; round: number; card: ModelCard; verdict: Verdict }> {
  const seed = opts.seed === undefined ? (opts.randomSeed ?? randomExportSeed)() : checkExportSeed(opts.seed);
  return model.withGlobalModel(federation.batchNorm, async (gan, stored, cfg) => {
    const counts = checkExportCounts(perClass, cfg.classes);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    let done = 0;
    onProgress(0, total, 'generating');
    const classes: SyntheticClass[] = [];
    let batchIndex = 0;
    for (const [ci, label] of cfg.classes.entries()) {
      const pngs: Uint8Array[] = [];
      for (let start = 0; start < counts[label]; start += EXPORT_BATCH) {
        throwIfCancelled(opts.signal, 'the export');
        const n = Math.min(EXPORT_BATCH, counts[label] - start);
        const t = generate(gan, new Array<number>(n).fill(ci), seed + batchIndex++);
        const data = (await t.data()) as Float32Array;
        t.dispose();
        for (const rgb of toRgbBytes(data, n, cfg.imageSize)) pngs.push(encodePngRgb(rgb, cfg.imageSize, cfg.imageSize));
        done += n;
        onProgress(done, total, 'generating');
        await yieldToEvents();
      }
      classes.push({ label, pngs });
    }
    throwIfCancelled(opts.signal, 'the export');
    onProgress(done, total, 'packing the ZIP');
    const rounds = federation.rounds ?? stored.round;
    const verdict = judgeOutput({
      model: { round: stored.round, rounds, ...(federation.localSteps !== undefined ? { localSteps: federation.localSteps } : {}) },
      ...(federation.probe ? { probe: federation.probe } : {}),
      ...(federation.check ? { check: federation.check } : {}),
    });
    const card: ModelCard = {
      kind: 'fedgan-crc synthetic H&E tiles',
      date: (opts.now ?? (() => new Date()))().toISOString(),
      round: stored.round,
      federation: { server: federation.server, ...(federation.hospital ? { hospital: federation.hospital } : {}), fingerprint: stored.fingerprint, ...(federation.rounds ? { rounds: federation.rounds } : {}) },
      config: stored.config,
      counts,
      imageSize: cfg.imageSize,
      seed,
      seedSource: opts.seed === undefined ? 'random' : 'chosen',
      verdict,
      ...(federation.privacy ? { privacy: federation.privacy } : {}),
      intendedUse: 'Synthetic images for research and for training classifiers. Not real patient data and not for diagnosis.',
    };
    return { bytes: buildExportZip(classes, card), counts, round: stored.round, card, verdict };
  });
}
