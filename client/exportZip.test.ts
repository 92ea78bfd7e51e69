import { strFromU8, unzipSync } from 'fflate';
import { describe, expect, it } from 'vitest';
import { buildExportZip, csvField, type ModelCard } from './exportZip.ts';
import { encodePngRgb } from './png.ts';

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
