import { describe, expect, it } from 'vitest';
import { parseCases, parseTorchResults } from '../../bench/ganCli.ts';
import { speedTable } from '../../bench/ganReport.ts';
import type { BenchRow } from '../../bench/ganBench.ts';

describe('GAN benchmark command line and report', () => {
  it('parses cases with an optional discriminator, and names what is wrong', () => {
    expect(parseCases('acgan:64:64,wgan-gp:64:256:vit,acgan:32:8:cnn')).toEqual([
      { gan: 'acgan', size: 64, batch: 64 },
      { gan: 'wgan-gp', size: 64, batch: 256, disc: 'vit' },
      { gan: 'acgan', size: 32, batch: 8 },
    ]);
    expect(() => parseCases('acgan:64:64:swin')).toThrow(/acgan:64:64:swin.*disc cnn or vit/);
    expect(() => parseCases('acgan:64')).toThrow(/gan:size:batch/);
  });

  it("reads PyTorch's RESULT lines among other output, and refuses a result without a time", () => {
    const log = [
      'some warning',
      'RESULT torch-gan {"gan": "acgan", "disc": "cnn", "size": 64, "batch": 64, "msPerStep": 11.5, "imgsPerSec": 5565.2}',
      'RESULT torch 64 64 {...}',
      'RESULT torch-gan {"gan": "wgan-gp", "disc": "vit", "size": 64, "batch": 64, "msPerStep": 20}',
    ].join('\n');
    expect(parseTorchResults(log)).toEqual([
      { gan: 'acgan', disc: 'cnn', size: 64, batch: 64, msPerStep: 11.5 },
      { gan: 'wgan-gp', disc: 'vit', size: 64, batch: 64, msPerStep: 20 },
    ]);
    expect(() => parseTorchResults('RESULT torch-gan {"gan": "acgan", "disc": "cnn", "size": 64, "batch": 64}', 'torch.log')).toThrow(/torch.log, result 1: .*msPerStep/);
  });

  it("gives every row its speed-up over stock and its share of PyTorch's speed for the same case", () => {
    const row = (variant: string, msPerStep: number, disc?: 'vit'): BenchRow => ({ gan: 'acgan', size: 64, batch: 64, ...(disc ? { disc } : {}), variant, steps: 5, msPerStep, hostMsPerStep: 1, imgsPerSec: 1 });
    const table = speedTable([row('stock', 400), row('fast', 20), row('fast', 40, 'vit')], [{ gan: 'acgan', disc: 'cnn', size: 64, batch: 64, msPerStep: 10 }]);
    const lines = table.split('\n');
    expect(lines[0]).toMatch(/PyTorch ms\/step \| share of PyTorch/);
    // this project at 20 ms against PyTorch's 10 ms: half as fast; 20× stock.
    expect(lines[3]).toMatch(/this project .*\| 20\.00× +\| 10 +\| 50 %/);
    // no PyTorch figure for the ViT case
    expect(lines[4]).toMatch(/vit .*\| – +\| – +\|$/);
  });
});
