import { strToU8, zipSync, type Zippable } from 'fflate';
import type { Verdict } from '../shared/metrics/verdict.ts';

/**
 * The synthetic-image export: a ZIP holding `<class>/<class>_<nnnn>.png` for every generated tile,
 * `labels.csv` (file,label) and `model-card.json` describing the model that produced them. Pure: the
 * worker generates the pixels and calls this; Node tests call it too.
 */

export interface ModelCard {
  kind: 'fedgan-crc synthetic H&E tiles';
  /** ISO date of the export. */
  date: string;
  /** Federated rounds completed by the global model that generated the tiles. */
  round: number;
  federation: { server: string; hospital?: string; fingerprint: string; rounds?: number };
  /** The full GAN config (shared/config/ganConfig.ts). */
  config: Record<string, unknown>;
  counts: Record<string, number>;
  imageSize: number;
  /**
   * Seed of the latent draws: a new random one per export unless staff chose one. The same seed with the
   * same model (round and fingerprint above) gives the same images and labels.csv, byte for byte.
   */
  seed: number;
  /** 'random': drawn for this export (crypto.getRandomValues); 'chosen': typed in to reproduce an export. */
  seedSource: 'random' | 'chosen';
  /** Whether the images are usable, in plain words, from what was measured (shared/metrics/verdict.ts). */
  verdict: Verdict;
  /** This hospital's differential privacy (shared/privacy/budget.ts); absent in cards of older versions. */
  privacy?: ModelCardPrivacy;
  intendedUse: string;
}

/**
 * The privacy of the exporting hospital's tiles in the model that generated the images: whether it trained
 * with differential privacy, and the ε its tiles spent over all the rounds it trained with it, at δ.
 */
export interface ModelCardPrivacy {
  dp: boolean;
  /** ε spent by this hospital's tiles (null: it never trained with DP). */
  epsilon: number | null;
  delta: number | null;
  /** Rounds this hospital trained with DP. */
  rounds: number;
  /** σ and C of its last DP round. */
  noiseMultiplier: number | null;
  clipNorm: number | null;
  accountant: string;
  note: string;
}

/**
 * At most this many images per class in one export. The ZIP is built in the browser's memory: every
 * PNG is held while the ZIP is packed and again inside it, so the tab needs about twice the export's size
 * (a 64 px tile of noise is ~12 kB: 20,000 per class of two classes is ~1 GB at the peak), and generation
 * runs at tens of images a second on a laptop (the issue measured 14 a second), i.e. about 25 min per
 * 20,000. Larger sets: export several times; each export draws new images.
 */
export const MAX_EXPORT_PER_CLASS = 20_000;

/** Largest seed staff may type: seeds of an export's batches are seed + 0, 1, 2, … and must stay exact. */
export const MAX_EXPORT_SEED = 2 ** 52 - 1;

/** Why the export is bounded, in words, for the federation's image size and classes. */
export function exportLimitReason(imageSize: number, classes: number): string {
  // Raw RGB bytes (a PNG of noise barely compresses), twice: the PNGs and the ZIP that copies them.
  const bytes = 2 * MAX_EXPORT_PER_CLASS * Math.max(1, classes) * imageSize * imageSize * 3;
  const size = bytes >= 1e9 ? `${(bytes / 1e9).toFixed(1)} GB` : `${Math.max(1, Math.round(bytes / 1e6))} MB`;
  return (
    `At most ${MAX_EXPORT_PER_CLASS.toLocaleString('en-US')} images per class in one export: the ZIP is built in this browser’s memory ` +
    `(up to ${size} at the peak for ${imageSize} px images, as every image is held twice while the ZIP is packed) and generating that many takes tens of minutes. ` +
    'For more, export several times: each export draws new images.'
  );
}

/**
 * ZIP entry times: fixed (the ZIP format's first day; local time, as ZIP stores local time), so the same
 * seed gives the same bytes in any time zone; the card's `date` says when the export was made.
 */
const ZIP_MTIME = new Date(1980, 0, 1);

export interface SyntheticClass {
  label: string;
  /** PNG files (client/png.ts), one per image. */
  pngs: Uint8Array[];
}

export function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function syntheticFileName(label: string, index: number): string {
  return `${label}/${label}_${String(index + 1).padStart(4, '0')}.png`;
}

/**
 * Build the export ZIP. PNGs are stored (they are already compressed); the text files are deflated. Every
 * entry has the same fixed time, so the bytes depend only on the images and the card.
 */
export function buildExportZip(classes: readonly SyntheticClass[], card: ModelCard): Uint8Array {
  const files: Zippable = {};
  const csv = ['file,label'];
  for (const c of classes) {
    c.pngs.forEach((png, i) => {
      const name = syntheticFileName(c.label, i);
      files[name] = [png, { level: 0 }];
      csv.push(`${csvField(name)},${csvField(c.label)}`);
    });
  }
  files['labels.csv'] = strToU8(csv.join('\n') + '\n');
  files['model-card.json'] = strToU8(JSON.stringify(card, null, 2) + '\n');
  return zipSync(files, { level: 6, mtime: ZIP_MTIME });
}
