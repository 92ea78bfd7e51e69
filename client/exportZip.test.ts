import { strFromU8, unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { architectureKey, createGan } from '../shared/gan/gan.ts';
import { tinyConfig } from '../shared/gan/testConfig.ts';
import { buildExportZip, csvField, exportLimitReason, MAX_EXPORT_PER_CLASS, type ModelCard } from './exportZip.ts';
import { isCancelled } from './job.ts';
import { encodePngRgb } from './png.ts';
import { checkExportSeed, exportSynthetic, randomExportSeed, type ExportFederation } from './syntheticExport.ts';
import type { StoredModel } from './tileStore.ts';

describe('buildExportZip', () => {
  it('holds one PNG per image in <class>/ folders, labels.csv and model-card.json', () => {
    const png = encodePngRgb(new Uint8Array(4 * 4 * 3).fill(200), 4, 4);
    const card: ModelCard = {
      kind: 'fedgan-crc synthetic H&E tiles',
      date: '2026-01-02T03:04:05.000Z',
      round: 7,
      federation: { server: 'http://fed.example', hospital: 'hospital-a', fingerprint: 'abc', rounds: 20 },
      config: { gan: 'acgan', imageSize: 4 },
      counts: { MSIH: 3, nonMSIH: 2 },
      imageSize: 4,
      seed: 1,
      seedSource: 'random',
      verdict: { level: 'not-yet', headline: 'These images are not yet usable.', reasons: ['because'] },
      intendedUse: 'research',
    };
    const zip = unzipSync(buildExportZip([{ label: 'MSIH', pngs: [png, png, png] }, { label: 'nonMSIH', pngs: [png, png] }], card));
    const names = Object.keys(zip).sort();
    expect(names).toEqual(['MSIH/MSIH_0001.png', 'MSIH/MSIH_0002.png', 'MSIH/MSIH_0003.png', 'labels.csv', 'model-card.json', 'nonMSIH/nonMSIH_0001.png', 'nonMSIH/nonMSIH_0002.png']);
    expect(Array.from(zip['MSIH/MSIH_0002.png'])).toEqual(Array.from(png));
    expect(strFromU8(zip['labels.csv'])).toBe(
      'file,label\nMSIH/MSIH_0001.png,MSIH\nMSIH/MSIH_0002.png,MSIH\nMSIH/MSIH_0003.png,MSIH\nnonMSIH/nonMSIH_0001.png,nonMSIH\nnonMSIH/nonMSIH_0002.png,nonMSIH\n',
    );
    expect(JSON.parse(strFromU8(zip['model-card.json']))).toEqual(card);
  });

  it('quotes CSV fields that need it', () => {
    expect(csvField('plain')).toBe('plain');
    expect(csvField('a,b')).toBe('"a,b"');
    expect(csvField('say "hi"')).toBe('"say ""hi"""');
  });
});

describe('exportSynthetic', () => {
  const cfg = tinyConfig('acgan');
  const gan = createGan(cfg);
  const stored: StoredModel = { round: 2, bytes: new Uint8Array(0), fingerprint: architectureKey(cfg), config: { ...cfg }, savedAt: 0 };
  const model = { withGlobalModel: <T>(_bn: unknown, job: (g: typeof gan, s: StoredModel, c: typeof cfg) => Promise<T>) => job(gan, stored, cfg) };
  const federation: ExportFederation = { server: 'http://fed.example', hospital: 'hospital-a', rounds: 2, localSteps: 3, batchNorm: 'average' };
  const at = (iso: string) => () => new Date(iso);
  const perClass = { [cfg.classes[0]]: 3, [cfg.classes[1]]: 2 };
  const pngEntries = (bytes: Uint8Array) => Object.entries(unzipSync(bytes)).filter(([n]) => n !== 'model-card.json');

  it('draws a new random seed per export: two default exports hold different images, and the card records each seed', async () => {
    const a = await exportSynthetic(model, perClass, federation, () => {}, { now: at('2026-12-02T10:00:00Z') });
    const b = await exportSynthetic(model, perClass, federation, () => {}, { now: at('2026-12-02T10:00:00Z') });
    expect(a.card.seed).not.toBe(b.card.seed);
    expect(a.card.seedSource).toBe('random');
    const za = unzipSync(a.bytes);
    const zb = unzipSync(b.bytes);
    const first = `${cfg.classes[0]}/${cfg.classes[0]}_0001.png`;
    expect(Array.from(za[first])).not.toEqual(Array.from(zb[first]));
    expect(JSON.parse(strFromU8(za['model-card.json'])).seed).toBe(a.card.seed);
  });

  it('reproduces an export byte for byte from its seed (the card’s date apart)', async () => {
    const first = await exportSynthetic(model, perClass, federation, () => {}, { now: at('2026-12-02T10:00:00Z') });
    const again = await exportSynthetic(model, perClass, federation, () => {}, { seed: first.card.seed, now: at('2026-12-02T10:00:00Z') });
    expect(again.card.seedSource).toBe('chosen');
    // The card says how the seed came about; with the same card the ZIPs are identical.
    const sameCard = await exportSynthetic(model, perClass, federation, () => {}, { seed: first.card.seed, now: at('2026-12-02T10:00:00Z') });
    expect(Buffer.from(sameCard.bytes).equals(Buffer.from(again.bytes))).toBe(true);
    expect(pngEntries(again.bytes).map(([n, v]) => [n, Buffer.from(v).toString('base64')])).toEqual(pngEntries(first.bytes).map(([n, v]) => [n, Buffer.from(v).toString('base64')]));
    const later = await exportSynthetic(model, perClass, federation, () => {}, { seed: first.card.seed, now: at('2027-01-01T00:00:00Z') });
    expect(pngEntries(later.bytes).map(([n, v]) => [n, Buffer.from(v).toString('base64')])).toEqual(pngEntries(first.bytes).map(([n, v]) => [n, Buffer.from(v).toString('base64')]));
  });

  it('puts the plain-language verdict in the model card', async () => {
    const r = await exportSynthetic(model, perClass, federation, () => {}, { seed: 7 });
    const card = JSON.parse(strFromU8(unzipSync(r.bytes)['model-card.json'])) as ModelCard;
    expect(card.verdict).toEqual({
      level: 'not-yet',
      headline: 'These images are not yet usable: the model has trained only 6 steps, too few to draw tissue.',
      reasons: ['It is barely trained: 6 of the 6 generator steps the federation plans; under 1,000 steps this project’s models still draw blobs, not tissue.'],
    });
    expect(card.seed).toBe(7);
  });

  it('stops at the next batch when cancelled, with nothing returned', async () => {
    const ctl = new AbortController();
    let batches = 0;
    const run = exportSynthetic(model, { [cfg.classes[0]]: 200 }, federation, (done) => {
      if (done > 0 && ++batches === 2) ctl.abort();
    }, { signal: ctl.signal });
    const e = await run.then(() => undefined, (err: unknown) => err);
    expect(isCancelled(e)).toBe(true);
    expect((e as Error).message).toBe('the export was cancelled');
    expect(batches).toBe(2);
  });

  it('bounds the export at 20,000 images per class and checks a typed seed', async () => {
    expect(MAX_EXPORT_PER_CLASS).toBe(20_000);
    await expect(exportSynthetic(model, { [cfg.classes[0]]: 20_001 }, federation, () => {})).rejects.toThrow(`the count for ${cfg.classes[0]} must be a whole number from 0 to 20,000 (got 20001)`);
    expect(() => checkExportSeed(-1)).toThrow('the seed must be a whole number from 0 to 4,503,599,627,370,495 (got -1)');
    expect(() => checkExportSeed(1.5)).toThrow('the seed must be a whole number');
    expect(checkExportSeed(42)).toBe(42);
    // 2 copies × 20,000 × 2 classes × 64 × 64 × 3 bytes = 983 MB
    expect(exportLimitReason(64, 2)).toBe(
      'At most 20,000 images per class in one export: the ZIP is built in this browser’s memory (up to 983 MB at the peak for 64 px images, as every image is held twice while the ZIP is packed) and generating that many takes tens of minutes. For more, export several times: each export draws new images.',
    );
    expect(exportLimitReason(128, 2)).toContain('(up to 3.9 GB at the peak for 128 px images');
  });

  it('draws random seeds below 2^52 that differ', () => {
    const seeds = Array.from({ length: 50 }, randomExportSeed);
    expect(new Set(seeds).size).toBe(50);
    for (const s of seeds) expect(Number.isSafeInteger(s) && s >= 0 && s < 2 ** 52).toBe(true);
  });
});
