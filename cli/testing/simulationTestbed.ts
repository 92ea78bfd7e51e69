import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { tinyConfig } from '../../shared/gan/testConfig.ts';
import { writeSyntheticTiles } from '../../node/testing/syntheticTiles.ts';
import { readTileFolder, type FolderTile } from '../../node/tileFolder.ts';
import type { SimulationOptions } from '../simulation.ts';

export interface SimulationTestbed {
  /** The temporary folder (set in beforeAll). */
  readonly dir: string;
  /** 6 synthetic 16 px tiles per class, read as the simulation reads them (set in beforeAll). */
  readonly tiles: FolderTile[];
  readonly model: SimulationOptions['model'];
  /** A tiny federation writing into `dir/out`: 2 hospitals, iid, 3 rounds of 1 step, batch norm averaged, FedAvg. */
  options(out: string, over?: Partial<SimulationOptions>): SimulationOptions;
}

/** The tiny in-process federation the cli/ tests train, in a temporary folder removed after the file's tests. */
export function simulationTestbed(prefix: string): SimulationTestbed {
  let dir = '';
  let tiles: FolderTile[] = [];
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
    writeSyntheticTiles(join(dir, 'tiles'), { perClass: 6, size: 16 });
    tiles = readTileFolder(join(dir, 'tiles'), { classes: ['MSIH', 'nonMSIH'], size: 16 });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const model = tinyConfig('acgan', { batchSize: 4 });
  return {
    get dir() {
      return dir;
    },
    get tiles() {
      return tiles;
    },
    model,
    options: (out, over = {}) => ({
      clients: 2,
      rounds: 3,
      localSteps: 1,
      fraction: 1,
      partition: { kind: 'iid' },
      model,
      batchNorm: 'average',
      aggregator: { type: 'fedavg' },
      out: join(dir, out),
      samplesPerClass: 1,
      ...over,
    }),
  };
}
