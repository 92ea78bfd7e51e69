import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';

/**
 * Write a small labelled tile folder `<dir>/<class>/<name>.png` with class-dependent colours and
 * per-tile noise, plus manifest.csv with patients and sites. Used wherever a test needs real files.
 */
export function writeSyntheticTiles(dir: string, opts: { classes?: string[]; perClass?: number; size?: number; sites?: string[]; seed?: number } = {}): { files: string[] } {
  const classes = opts.classes ?? ['MSIH', 'nonMSIH'];
  const perClass = opts.perClass ?? 8;
  const size = opts.size ?? 20;
  const sites = opts.sites ?? ['TCGA-AA', 'TCGA-CM'];
  let s = opts.seed ?? 7;
  const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const files: string[] = [];
  const rows = ['file,label,patient,site,split'];
  classes.forEach((c, ci) => {
    mkdirSync(join(dir, c), { recursive: true });
    for (let i = 0; i < perClass; i++) {
      const png = new PNG({ width: size, height: size });
      for (let p = 0; p < size * size; p++) {
        // purple-ish H&E tones, shifted by class, with noise and a stripe pattern per class
        const stripe = ((p % size) + ci * 3) % 6 < 3 ? 30 : 0;
        png.data[p * 4] = 150 + ci * 60 + stripe + rand() * 40;
        png.data[p * 4 + 1] = 60 + rand() * 40;
        png.data[p * 4 + 2] = 160 - ci * 50 + rand() * 40;
        png.data[p * 4 + 3] = 255;
      }
      const name = `tile-${c}-${i}.png`;
      writeFileSync(join(dir, c, name), PNG.sync.write(png));
      files.push(join(dir, c, name));
      rows.push(`train/${c}/${name},${c},P-${ci}-${i % 3},${sites[i % sites.length]},train`);
    }
  });
  writeFileSync(join(dir, 'manifest.csv'), rows.join('\n') + '\n');
  return { files };
}
