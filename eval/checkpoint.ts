import { existsSync, readFileSync, statSync } from 'node:fs';
import { CheckpointError, decodeCheckpoint, type CheckpointMeta } from '../shared/checkpoint.ts';
import { parseFedConfigText } from '../shared/config/fedConfig.ts';
import type { GanConfig } from '../shared/config/ganConfig.ts';
import type { BatchNormPolicy } from '../shared/fed/batchNormPolicy.ts';
import { createGan, generate, type Gan } from '../shared/gan/gan.ts';
import { recalibrateGeneratorBatchNorm, type RecalibrationSummary } from '../shared/gan/recalibrateBatchNorm.ts';
import { toRgbBytes } from '../shared/image/grid.ts';
import { EvalError } from './evalError.ts';

export interface LoadedCheckpoint {
  gan: Gan;
  config: GanConfig;
  meta: CheckpointMeta;
  /** The layout version the file was written in (shared/checkpoint.ts). */
  fileVersion: number;
  /** The generator's batch-norm statistics were recalibrated (FedBN checkpoints), or null. */
  recalibrated: RecalibrationSummary | null;
}

export interface LoadCheckpointOptions {
  /**
   * The server's FED_CONFIG file (JSON or YAML): supplies the model and batch-norm policy of a version-1
   * server checkpoint, which does not record them. Not used for checkpoints that record their config.
   */
  fedConfig?: string;
  log?: (line: string) => void;
}

/**
 * Rebuild the GAN from a checkpoint in the project's format (shared/checkpoint.ts), written by the
 * simulation, the remote hospitals or the server (STATE_DIR/checkpoints/round-NNNNNN.fgw). When the
 * checkpoint's batch-norm policy is 'local' (FedBN), its generator's batch-norm statistics are those of
 * round 0 by design, so they are recalibrated data-free (shared/gan/recalibrateBatchNorm.ts) before any
 * tile is generated.
 */
export function loadCheckpoint(path: string, opts: LoadCheckpointOptions = {}): LoadedCheckpoint {
  if (!existsSync(path)) throw new EvalError(`checkpoint ${path} does not exist (pass --checkpoint FILE, e.g. the checkpoint.fgw written by npm run simulate or a server's STATE_DIR/checkpoints/round-NNNNNN.fgw)`);
  if (!statSync(path).isFile()) throw new EvalError(`checkpoint ${path} is not a file`);
  const legacy = opts.fedConfig === undefined ? undefined : readFedConfig(opts.fedConfig);
  let decoded: ReturnType<typeof decodeCheckpoint>;
  try {
    decoded = decodeCheckpoint(new Uint8Array(readFileSync(path)), { copy: true, requireFinite: true, legacy, name: `checkpoint ${path}` });
  } catch (e) {
    if (e instanceof CheckpointError) throw new EvalError(e.message);
    throw new EvalError(`checkpoint ${path} cannot be read: ${e instanceof Error ? e.message : String(e)}`);
  }
  const { meta } = decoded;
  if (legacy && decoded.fileVersion !== 1) opts.log?.(`--fed-config not needed: ${path} records its own GAN config and batch-norm policy, which are used`);
  const gan = createGan(meta.config);
  let recalibrated: RecalibrationSummary | null = null;
  try {
    gan.setWeights(decoded.weights);
    if (meta.batchNorm === 'local') {
      recalibrated = recalibrateGeneratorBatchNorm(gan);
      opts.log?.(
        `batch-norm policy "local" (FedBN): the global generator's batch-norm statistics are untrained by design; recalibrated them from ` +
          `${recalibrated.batches} × ${recalibrated.batchSize} generated samples (seed ${recalibrated.seed}, no tiles)`,
      );
    }
  } catch (e) {
    gan.dispose();
    throw new EvalError(`checkpoint ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return { gan, config: meta.config, meta, fileVersion: decoded.fileVersion, recalibrated };
}

function readFedConfig(file: string): { config: GanConfig; batchNorm: BatchNormPolicy } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new EvalError(`--fed-config ${file} cannot be read: ${(e as Error).message}`);
  }
  try {
    const fed = parseFedConfigText(text, `--fed-config ${file}`);
    return { config: fed.model, batchNorm: fed.batchNorm };
  } catch (e) {
    throw new EvalError(e instanceof Error ? e.message : String(e));
  }
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
