import { afterEach, describe, expect, it } from 'vitest';
import { chooseSlices, gemmDims, gemmDispatch, subgroupTileConfigs, TILE_CONFIGS, tileConfig, type ConvGeometry } from './convGemm.ts';
import { candidateTiles, chooseTile, clearTunings, exportTunings, forceTile, heuristicTile, importTunings, setSubgroupLanes, setTunerAdapter, shapeKey, subgroupLanes } from './convTuner.ts';

// 3×3 'same' convolutions of the benchmark's models (64 px, batch 64).
const conv = (batch: number, size: number, inC: number, outC: number, stride: number): ConvGeometry => {
  const out = Math.ceil(size / stride);
  const pad = Math.max((out - 1) * stride + 3 - size, 0);
  return { batch, inH: size, inW: size, inC, outH: out, outW: out, outC, kH: 3, kW: 3, strideH: stride, strideW: stride, padTop: Math.floor(pad / 2), padLeft: Math.floor(pad / 2) };
};

describe('convolution tile choice', () => {
  afterEach(() => {
    clearTunings();
    forceTile(null);
    setTunerAdapter('unknown', 1024, false);
    setSubgroupLanes(0);
  });

  it('sizes the GEMM of each pass (input gradient per stride phase)', () => {
    const g = conv(64, 64, 32, 64, 2);
    expect(gemmDims('forward', g)).toEqual({ m: 64 * 32 * 32, n: 64, k: 9 * 32 });
    expect(gemmDims('inputGrad', g)).toEqual({ m: 64 * 32 * 32, n: 32, k: 2 * 2 * 64 });
    expect(gemmDims('filterGrad', g)).toEqual({ m: 9 * 32, n: 64, k: 64 * 32 * 32 });
  });

  it('heuristic: narrow tiles for few output channels, large tiles for large GEMMs, 32×32 on SwiftShader', () => {
    expect(heuristicTile('forward', conv(64, 64, 32, 3, 1)).name).toBe('t128x16'); // toRgb
    expect(heuristicTile('forward', conv(64, 64, 3, 32, 2)).name).toBe('t64x32');
    expect(heuristicTile('forward', conv(64, 32, 128, 128, 1)).name).toBe('t128x128'); // 512 workgroups
    expect(heuristicTile('forward', conv(64, 16, 128, 128, 1)).name).toBe('t128x64'); // 128×128 would give 128
    expect(heuristicTile('forward', conv(8, 4, 128, 256, 2)).name).toBe('t32x32');
    setTunerAdapter('google/swiftshader', 16, true);
    expect(heuristicTile('forward', conv(64, 32, 128, 128, 1)).name).toBe('t32x32');
  });

  it('a tuned choice applies to its adapter and shape only; import checks the names; forceTile overrides all', () => {
    const g = conv(64, 16, 128, 128, 1);
    setTunerAdapter('nvidia/hopper', 1024);
    importTunings({ [`nvidia/hopper|${shapeKey('forward', g)}`]: 't64x64' });
    expect(chooseTile('forward', g).name).toBe('t64x64');
    expect(chooseTile('inputGrad', g).name).toBe(heuristicTile('inputGrad', g).name);
    setTunerAdapter('amd/rdna3', 1024);
    expect(chooseTile('forward', g).name).toBe('t128x64');
    expect(exportTunings()).toEqual({ [`nvidia/hopper|${shapeKey('forward', g)}`]: 't64x64' });
    expect(() => importTunings({ x: 't7x7' })).toThrow(/tuning entry x: unknown tile configuration "t7x7"/);
    forceTile('t128x16');
    expect(chooseTile('forward', g).name).toBe('t128x16');
    expect(() => forceTile('nope')).toThrow(/unknown convolution tile configuration "nope"/);
  });

  it("filter gradient slices: cover the reduction exactly, each a whole number of tiles deep, partial sums bounded", () => {
    for (const g of [conv(64, 64, 3, 32, 2), conv(64, 8, 128, 256, 2), conv(1, 5, 3, 5, 1), conv(256, 128, 32, 64, 2)]) {
      for (const t of TILE_CONFIGS) {
        const { slices, rowsPerSlice } = chooseSlices(g, t, 1024);
        const { m, n, k } = gemmDims('filterGrad', g);
        expect(rowsPerSlice % t.bk).toBe(0);
        expect(slices * rowsPerSlice).toBeGreaterThanOrEqual(k);
        expect((slices - 1) * rowsPerSlice).toBeLessThan(k);
        expect(slices).toBeLessThanOrEqual(256);
        expect(slices === 1 || slices * m * n <= 8 << 20).toBe(true);
      }
    }
    expect(chooseSlices(conv(64, 64, 3, 32, 2), tileConfig('t64x32'), 1024).slices).toBeGreaterThan(100);
  });

  it('dispatch: N tiles in x, M tiles in y, folded into x when M has more than 65,535 tiles', () => {
    const t = tileConfig('t32x32');
    expect(gemmDispatch(1000, 70, t, 4)).toEqual([3, 32, 4]);
    const [x, y] = gemmDispatch(256 * 128 * 128, 64, t, 1); // 131,072 M tiles
    expect(y).toBeLessThanOrEqual(65535);
    expect(x % 2).toBe(0);
    expect((x / 2) * y).toBeGreaterThanOrEqual(131072);
  });

  it('subgroup configurations: a lane grid of the subgroup size, bk a whole number of vec4 loads per lane; none for sizes the design does not take', () => {
    for (const lanes of [4, 8, 16, 32, 64, 128]) {
      const ts = subgroupTileConfigs(lanes);
      expect(ts.map((t) => t.name)).toEqual(['sg4x4', 'sg8x4']);
      for (const t of ts) {
        expect(t.wx * t.wy).toBe(lanes);
        expect(t.lanes).toBe(lanes);
        expect((t.bk / t.wx) % 4).toBe(0);
        expect((t.bk / t.wy) % 4).toBe(0);
        expect(t.tm % 4 + t.tn % 4).toBe(0);
      }
    }
    expect(subgroupTileConfigs(32)[0]).toMatchObject({ wx: 8, wy: 4, bk: 32 });
    expect(subgroupTileConfigs(4)[0]).toMatchObject({ wx: 2, wy: 2, bk: 8 });
    for (const lanes of [0, 1, 2, 24, 256, 3.5]) expect(subgroupTileConfigs(lanes)).toEqual([]);
  });

  it('subgroup tiles: candidates only while the feature check passes, never the heuristic, and a tuned, imported or forced one falls back without it', () => {
    const g = conv(64, 16, 128, 128, 1);
    expect(subgroupLanes()).toBe(0);
    expect(candidateTiles().map((t) => t.name)).toEqual(TILE_CONFIGS.map((t) => t.name));
    setSubgroupLanes(32);
    expect(candidateTiles().filter((t) => t.lanes === 32).map((t) => t.name)).toEqual(['sg4x4', 'sg8x4']);
    expect(chooseTile('forward', g).name).toBe(heuristicTile('forward', g).name);
    expect(heuristicTile('forward', g).lanes).toBeUndefined();
    setTunerAdapter('nvidia/hopper', 1024);
    importTunings({ [`nvidia/hopper|${shapeKey('forward', g)}`]: 'sg8x4' });
    expect(chooseTile('forward', g)).toMatchObject({ name: 'sg8x4', lanes: 32, wx: 8, wy: 4 });
    forceTile('sg4x4');
    expect(chooseTile('inputGrad', g)).toMatchObject({ name: 'sg4x4', lanes: 32 });
    setSubgroupLanes(0);
    expect(chooseTile('inputGrad', g).name).toBe(heuristicTile('inputGrad', g).name);
    forceTile(null);
    expect(chooseTile('forward', g).name).toBe(heuristicTile('forward', g).name);
    expect(candidateTiles().some((t) => t.lanes)).toBe(false);
    expect(() => importTunings({ y: 'sg7x7' })).toThrow(/tuning entry y: unknown tile configuration "sg7x7"/);
  });
});
