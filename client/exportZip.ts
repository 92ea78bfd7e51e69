import { strToU8, zipSync, type Zippable } from 'fflate';

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
  /** Seed of the latent draws (the export is reproducible from the same weights). */
  seed: number;
  intendedUse: string;
}

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

/** Build the export ZIP. PNGs are stored (they are already compressed); the text files are deflated. */
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
  return zipSync(files, { level: 6, mtime: new Date(card.date) });
}
