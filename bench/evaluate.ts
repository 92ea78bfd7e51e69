/**
 * Quality-report benchmark (`npm run bench:evaluate`): how long the report's feature-space part takes
 * for 1,000 synthetic against 1,000 real tiles at 64 px on this machine.
 *
 * 1. Generating the synthetic tiles (64 px generator, the default config, cpu backend with fast kernels).
 * 2. InceptionV3 features (nsfwjs weights, batches of 16): every tile is resized to
 *    299 px, so the cost per tile does not depend on the tile size. By default a subset (--measure,
 *    128 tiles of each kind) is timed after a warm-up batch and the full count is extrapolated from the
 *    measured rate; --measure 1000 times everything.
 * 3. FID, KID (100 subsets), nearest neighbours and diversity on 1,000 × 1,000 2048-d feature sets
 *    (measured in full; sets smaller than --tiles are padded with measured features plus noise).
 *
 * --engine picks what runs the network, as `npm run evaluate --feature-engine` does: onnx (ONNX Runtime's
 * native CPU kernels, --workers intra-op threads), wasm (tfjs wasm in --workers worker threads), or auto
 * (onnx when it loads, else wasm; the default). --workers defaults to 2.
 *
 *     npm run bench:evaluate -- [--tiles 1000] [--measure 128] [--batch 16] [--engine auto] [--workers 2] [--json out.json]
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-wasm';
import { initNodeBackend } from '../node/nodeBackend.ts';
import { decodeImage } from '../node/tileFolder.ts';
import { parseGanConfig } from '../shared/config/ganConfig.ts';
import { createGan } from '../shared/gan/gan.ts';
import { resizeToRGB } from '../shared/image/resize.ts';
import { features, type Features } from '../shared/metrics/features.ts';
import { computeQuality } from '../shared/metrics/quality.ts';
import { Rng } from '../shared/rng.ts';
import { generateTiles } from '../eval/checkpoint.ts';
import { createNodeNsfwjsExtractor, type FeatureEngine } from '../eval/features/nodeExtractor.ts';
import { withFeatureCache } from '../eval/features/featureCache.ts';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : def;
}
const TILES = Number(arg('tiles', '1000'));
const MEASURE = Math.min(TILES, Number(arg('measure', '128')));
const BATCH = Number(arg('batch', '16'));
const WORKERS = Number(arg('workers', '2'));
const ENGINE = arg('engine', 'auto') as FeatureEngine;
const JSON_OUT = arg('json', '');
const SIZE = 64;
const DATA = new URL('../../shared/data/crc-msi/train', import.meta.url).pathname;

const secs = (t0: number) => (performance.now() - t0) / 1000;
/** CPU seconds (user + system) of this process since `c0`: independent of other load on a shared machine. */
const cpuSecs = (c0: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(c0);
  return (d.user + d.system) / 1e6;
};

function realTiles(n: number): { tiles: Uint8Array[]; source: string } {
  if (existsSync(DATA)) {
    const files = ['MSIH', 'nonMSIH'].flatMap((c) => readdirSync(join(DATA, c)).sort().map((f) => join(DATA, c, f)));
    const pick = new Rng(1).shuffle(files).slice(0, n);
    return { tiles: pick.map((f) => { const img = decodeImage(f); return resizeToRGB(img.rgba, img.width, img.height, 4, SIZE); }), source: `${pick.length} tiles of ../shared/data/crc-msi/train` };
  }
  const rng = new Rng(2);
  return { tiles: Array.from({ length: n }, () => Uint8Array.from({ length: SIZE * SIZE * 3 }, () => 100 + rng.int(120))), source: 'random tiles (real data not found)' };
}

/** Pad measured features up to `n` rows with noisy copies (only for timing the metrics). */
function padFeatures(f: Features, n: number, seed: number): Features {
  if (f.rows >= n) return f;
  const rng = new Rng(seed);
  const data = new Float32Array(n * f.dim);
  for (let i = 0; i < n; i++) {
    const src = (i % f.rows) * f.dim;
    for (let j = 0; j < f.dim; j++) data[i * f.dim + j] = Math.max(0, f.data[src + j] * (1 + 0.1 * rng.normal()));
  }
  return features(data, n, f.dim);
}

const report: Record<string, unknown> = { machine: `${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}`, node: process.version, tiles: TILES, measured: MEASURE, size: SIZE, batch: BATCH, workers: WORKERS };

// 1. Generation
const backend = await initNodeBackend();
const gan = createGan(parseGanConfig({ imageSize: SIZE }));
let t0 = performance.now();
let c = process.cpuUsage();
const synthetic = await generateTiles(gan, TILES / 2, { seed: 1 });
report.generateSeconds = secs(t0);
report.generateCpuSeconds = cpuSecs(c);
gan.dispose();
console.log(`generate ${TILES} synthetic tiles at ${SIZE} px (default generator, ${backend.backend} backend): ${(report.generateSeconds as number).toFixed(1)} s wall, ${(report.generateCpuSeconds as number).toFixed(1)} s CPU`);

t0 = performance.now();
c = process.cpuUsage();
const real = realTiles(TILES);
report.readRealSeconds = secs(t0);
report.readRealCpuSeconds = cpuSecs(c);
console.log(`read and resize ${real.source}: ${(report.readRealSeconds as number).toFixed(1)} s wall, ${(report.readRealCpuSeconds as number).toFixed(1)} s CPU`);

// 2. Features (tfjs wasm loads the weights and preprocesses; the engine runs the network)
await tf.setBackend('wasm');
await tf.ready();
t0 = performance.now();
const onFallback = (reason: string) => console.log(`feature engine: ${reason}`);
const extractor = await createNodeNsfwjsExtractor('inception-v3', { engine: ENGINE, threads: WORKERS, onFallback });
report.loadModelSeconds = secs(t0);
report.featureEngine = extractor.engine;
console.log(`load InceptionV3 (nsfwjs) on ${extractor.engine}: ${(report.loadModelSeconds as number).toFixed(1)} s`);
await extractor.extract(real.tiles.slice(0, BATCH * WORKERS), SIZE, { batchSize: BATCH }); // warm-up
// Real tiles go through the report's feature cache (a fresh directory: a cold start), so the same run
// also times a warm start, where every real feature comes from the cache.
const cacheDir = mkdtempSync(join(tmpdir(), 'fedgan-bench-fcache-'));
const cachedExtractor = withFeatureCache(extractor, cacheDir);
t0 = performance.now();
const c0 = process.cpuUsage();
const realF = await cachedExtractor.extract(real.tiles.slice(0, MEASURE), SIZE, { batchSize: BATCH });
const realSeconds = secs(t0);
const t1 = performance.now();
const synthF = await extractor.extract(synthetic.pixels.slice(0, MEASURE), SIZE, { batchSize: BATCH });
const synthSeconds = secs(t1);
const measured = secs(t0);
const measuredCpu = cpuSecs(c0);
const t2 = performance.now();
const warmF = await cachedExtractor.extract(real.tiles.slice(0, MEASURE), SIZE, { batchSize: BATCH });
report.cacheReadSeconds = (secs(t2) * TILES) / MEASURE;
if (cachedExtractor.lastStats.hits !== MEASURE || warmF.data.some((v, i) => v !== realF.data[i])) throw new Error('feature cache did not return the features it stored');
rmSync(cacheDir, { recursive: true, force: true });
extractor.dispose();
report.realFeatureSeconds = (realSeconds * TILES) / MEASURE;
report.syntheticFeatureSeconds = (synthSeconds * TILES) / MEASURE;
console.log(`feature cache: ${MEASURE} real tiles read back in ${secs(t2).toFixed(2)} s (computed in ${realSeconds.toFixed(1)} s)`);
const perTile = measured / (2 * MEASURE);
const cpuPerTile = measuredCpu / (2 * MEASURE);
report.featureSecondsPerTile = perTile;
report.featureCpuSecondsPerTile = cpuPerTile;
report.loadAverage1min = loadavg()[0];
report.featureSecondsMeasured = measured;
report.featureSecondsFor2xTiles = perTile * 2 * TILES;
console.log(
  `InceptionV3 features, batch ${BATCH}, ${extractor.engine}: ${2 * MEASURE} tiles in ${measured.toFixed(1)} s wall (${measuredCpu.toFixed(1)} s CPU) = ${perTile.toFixed(3)} s/tile wall, ${cpuPerTile.toFixed(3)} s/tile CPU → ${(perTile * 2 * TILES).toFixed(0)} s wall (${(cpuPerTile * 2 * TILES).toFixed(0)} s CPU) for ${TILES} + ${TILES}${MEASURE < TILES ? ' (extrapolated)' : ''}; 1-min load average ${loadavg()[0].toFixed(1)}`,
);
// MobileNetV2 (the optional linear probe's features), same subset and workers.
{
  const mobile = await createNodeNsfwjsExtractor('mobilenet-v2', { engine: ENGINE, threads: WORKERS, onFallback });
  await mobile.extract(real.tiles.slice(0, BATCH * WORKERS), SIZE, { batchSize: BATCH });
  const m0 = performance.now();
  const mc0 = process.cpuUsage();
  await mobile.extract(real.tiles.slice(0, MEASURE), SIZE, { batchSize: BATCH });
  const wall = secs(m0) / MEASURE;
  const cpu = cpuSecs(mc0) / MEASURE;
  mobile.dispose();
  report.mobilenetSecondsPerTile = wall;
  report.mobilenetCpuSecondsPerTile = cpu;
  console.log(`MobileNetV2 features (linear probe): ${wall.toFixed(3)} s/tile wall, ${cpu.toFixed(3)} s/tile CPU`);
}
await tf.setBackend(backend.backend);

// 3. Metrics on full-size feature sets
const labels = (n: number) => Array.from({ length: n }, (_, i) => (i < n / 2 ? 0 : 1));
const realFull = padFeatures(realF, TILES, 3);
const synthFull = padFeatures(synthF, TILES, 4);
const control = padFeatures(realF, Math.round(TILES / 3), 5);
t0 = performance.now();
c = process.cpuUsage();
const q = computeQuality({ real: realFull, realLabels: labels(TILES), synthetic: synthFull, syntheticLabels: labels(TILES), classes: ['MSIH', 'nonMSIH'], control });
report.metricsSeconds = secs(t0);
report.metricsCpuSeconds = cpuSecs(c);
console.log(`FID + KID (100 subsets of ${q.kid.subsetSize}) + nearest neighbours + diversity on ${TILES} × ${TILES} 2048-d features: ${(report.metricsSeconds as number).toFixed(1)} s wall, ${(report.metricsCpuSeconds as number).toFixed(1)} s CPU`);

const common = (report.generateSeconds as number) + (report.readRealSeconds as number) + (report.loadModelSeconds as number) + (report.metricsSeconds as number);
const total = common + (report.featureSecondsFor2xTiles as number);
const warmTotal = common + (report.syntheticFeatureSeconds as number) + (report.cacheReadSeconds as number);
report.totalSeconds = total;
report.totalSecondsRealFeaturesCached = warmTotal;
const note = MEASURE < TILES ? ' (feature extraction extrapolated)' : '';
console.log(`total for ${TILES} synthetic vs ${TILES} real tiles at ${SIZE} px: ${(total / 60).toFixed(1)} min${note}`);
console.log(`same, real features already in the cache (every report after the first against the same real tiles): ${(warmTotal / 60).toFixed(1)} min${note}`);
if (JSON_OUT) writeFileSync(JSON_OUT, JSON.stringify(report, null, 2) + '\n');
