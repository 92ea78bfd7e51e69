import type { BatchNormPolicy } from '../shared/fed/batchNormPolicy.ts';
import { generate } from '../shared/gan/gan.ts';
import { toRgbBytes } from '../shared/image/grid.ts';
import { buildExportZip, type ModelCard, type SyntheticClass } from './exportZip.ts';
import type { GlobalModel } from './globalModel.ts';
import { encodePngRgb } from './png.ts';

/** The Export panel: labelled synthetic tiles from the stored global model, packed as a ZIP with a model card. */

const EXPORT_SEED = 20240601;
const EXPORT_BATCH = 32;

export interface ExportFederation {
  server: string;
  hospital?: string;
  rounds?: number;
  batchNorm: BatchNormPolicy;
}

/** Generate `perClass[c]` synthetic tiles per class from the stored global model and pack the export ZIP. */
export function exportSynthetic(
  model: GlobalModel,
  perClass: Record<string, number>,
  federation: ExportFederation,
  onProgress: (done: number, total: number, stage: string) => void,
): Promise<{ bytes: Uint8Array; counts: Record<string, number>; round: number; card: ModelCard }> {
  return model.withGlobalModel(federation.batchNorm, async (gan, stored, cfg) => {
    const counts: Record<string, number> = {};
    for (const c of cfg.classes) {
      const n = perClass[c] ?? 0;
      if (!Number.isInteger(n) || n < 0 || n > 100_000) throw new Error(`the count for ${c} must be a whole number from 0 to 100000 (got ${n})`);
      counts[c] = n;
    }
    const unknown = Object.keys(perClass).filter((k) => !cfg.classes.includes(k));
    if (unknown.length) throw new Error(`unknown class(es) ${unknown.join(', ')}: the model generates ${cfg.classes.join(', ')}`);
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    if (total === 0) throw new Error('choose at least one image to generate');
    let done = 0;
    onProgress(0, total, 'generating');
    const classes: SyntheticClass[] = [];
    let batchIndex = 0;
    for (const [ci, label] of cfg.classes.entries()) {
      const pngs: Uint8Array[] = [];
      for (let start = 0; start < counts[label]; start += EXPORT_BATCH) {
        const n = Math.min(EXPORT_BATCH, counts[label] - start);
        const t = generate(gan, new Array<number>(n).fill(ci), EXPORT_SEED + batchIndex++);
        const data = (await t.data()) as Float32Array;
        t.dispose();
        for (const rgb of toRgbBytes(data, n, cfg.imageSize)) pngs.push(encodePngRgb(rgb, cfg.imageSize, cfg.imageSize));
        done += n;
        onProgress(done, total, 'generating');
        await new Promise((r) => setTimeout(r, 0));
      }
      classes.push({ label, pngs });
    }
    onProgress(done, total, 'packing the ZIP');
    const card: ModelCard = {
      kind: 'fedgan-crc synthetic H&E tiles',
      date: new Date().toISOString(),
      round: stored.round,
      federation: { server: federation.server, ...(federation.hospital ? { hospital: federation.hospital } : {}), fingerprint: stored.fingerprint, ...(federation.rounds ? { rounds: federation.rounds } : {}) },
      config: stored.config,
      counts,
      imageSize: cfg.imageSize,
      seed: EXPORT_SEED,
      intendedUse: 'Synthetic images for research and for training classifiers. Not real patient data and not for diagnosis.',
    };
    return { bytes: buildExportZip(classes, card), counts, round: stored.round, card };
  });
}
