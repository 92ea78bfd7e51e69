import { existsSync, readFileSync, statSync } from 'node:fs';
import { decodeWeights } from '../shared/codec/weightsCodec.ts';
import { parseGanConfig, type GanConfig } from '../shared/config/ganConfig.ts';
import { createGan, generate, type Gan } from '../shared/gan/gan.ts';
import { toRgbBytes } from '../shared/image/grid.ts';
import { EvalError } from './evalError.ts';

export interface LoadedCheckpoint {
  gan: Gan;
  config: GanConfig;
  meta: Record<string, unknown>;
}

/**
 * Rebuild the GAN from a checkpoint written by the simulation or the server:
 * `encodeWeights(gan.getWeights(), {config: GanConfig, round, …})`.
 */
export function loadCheckpoint(path: string): LoadedCheckpoint {
  if (!existsSync(path)) throw new EvalError(`checkpoint ${path} does not exist (pass --checkpoint FILE, e.g. the checkpoint.fgw written by npm run simulate)`);
  if (!statSync(path).isFile()) throw new EvalError(`checkpoint ${path} is not a file`);
  let decoded: ReturnType<typeof decodeWeights>;
  try {
    decoded = decodeWeights(new Uint8Array(readFileSync(path)), { copy: true, requireFinite: true });
  } catch (e) {
    throw new EvalError(`checkpoint ${path} cannot be read: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (decoded.meta.config === undefined) throw new EvalError(`checkpoint ${path} has no GAN config in its metadata (meta.config); it was not written by this project's simulation or server`);
  let config: GanConfig;
  try {
    config = parseGanConfig(decoded.meta.config, `GAN config in ${path}`);
  } catch (e) {
    throw new EvalError(e instanceof Error ? e.message : String(e));
  }
  const gan = createGan(config);
  try {
    gan.setWeights(decoded.weights);
  } catch (e) {
    gan.dispose();
    throw new EvalError(`checkpoint ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return { gan, config, meta: decoded.meta };
}

/** Generate `perClass` tiles of every class as RGB bytes at the generator's size, in batches. */
export async function generateTiles(
  gan: Gan,
  perClass: number,
  opts: { seed: number; batchSize?: number; onProgress?: (done: number, total: number) => void },
): Promise<{ pixels: Uint8Array[]; labels: number[] }> {
  const classes = gan.cfg.classes.length;
  const labels: number[] = [];
  for (let c = 0; c < classes; c++) for (let i = 0; i < perClass; i++) labels.push(c);
  const size = gan.cfg.imageSize;
  const batchSize = opts.batchSize ?? 64;
  const pixels: Uint8Array[] = [];
  for (let start = 0, b = 0; start < labels.length; start += batchSize, b++) {
    const batch = labels.slice(start, start + batchSize);
    const images = generate(gan, batch, opts.seed * 1_000_003 + b);
    const data = (await images.data()) as Float32Array;
    images.dispose();
    pixels.push(...toRgbBytes(data, batch.length, size));
    opts.onProgress?.(Math.min(labels.length, start + batchSize), labels.length);
  }
  return { pixels, labels };
}
