import * as tf from '@tensorflow/tfjs-core';
import { Rng } from '../../shared/rng.ts';
import { augmentBatch } from './augment.ts';
import { createTileClassifier, type TileClassifier } from './cnn.ts';

/** RGB tiles (`size × size × 3` bytes) with class indices. */
export interface LabelledTiles {
  pixels: readonly Uint8Array[];
  labels: readonly number[];
}

export interface TrainOptions {
  size: number;
  classes: number;
  epochs: number;
  batchSize: number;
  learningRate: number;
  seed: number;
  augment: boolean;
  channels?: number;
  batchNorm?: boolean;
  firstStride?: number;
  onEpoch?: (epoch: number, loss: number) => void;
}

function toTensor(pixels: readonly Uint8Array[], indices: readonly number[], size: number): tf.Tensor4D {
  const per = size * size * 3;
  const buf = new Float32Array(indices.length * per);
  indices.forEach((k, i) => {
    const t = pixels[k];
    if (t.length !== per) throw new Error(`classifier tile ${k} has ${t.length} bytes, expected ${per} (${size}×${size} RGB)`);
    for (let j = 0; j < per; j++) buf[i * per + j] = t[j] / 127.5 - 1;
  });
  return tf.tensor4d(buf, [indices.length, size, size, 3]);
}

/** Train the small CNN with Adam on softmax cross-entropy, augmenting every batch. */
export async function trainTileClassifier(data: LabelledTiles, opts: TrainOptions): Promise<TileClassifier> {
  if (data.pixels.length !== data.labels.length) throw new Error(`${data.pixels.length} tiles but ${data.labels.length} labels`);
  if (data.pixels.length === 0) throw new Error('no tiles to train the classifier on');
  const model = createTileClassifier({ size: opts.size, classes: opts.classes, channels: opts.channels, batchNorm: opts.batchNorm, firstStride: opts.firstStride, seed: opts.seed });
  const optimizer = tf.train.adam(opts.learningRate);
  const rng = new Rng(opts.seed).fork('classifier-batches');
  const order = Array.from({ length: data.pixels.length }, (_, i) => i);
  const vars = model.params.trainableVariables();
  for (let epoch = 0; epoch < opts.epochs; epoch++) {
    rng.shuffle(order);
    let lossSum = 0;
    let batches = 0;
    for (let start = 0; start < order.length; start += opts.batchSize) {
      const idx = order.slice(start, start + opts.batchSize);
      const raw = toTensor(data.pixels, idx, opts.size);
      const x = opts.augment ? augmentBatch(raw, rng) : raw;
      const y = tf.tidy(() => tf.oneHot(tf.tensor1d(idx.map((k) => data.labels[k]), 'int32'), opts.classes));
      const loss = optimizer.minimize(() => tf.losses.softmaxCrossEntropy(y, model.logits(x, true)) as tf.Scalar, true, vars);
      lossSum += (await loss!.data())[0];
      batches++;
      tf.dispose([raw, x, y, loss!]);
    }
    opts.onEpoch?.(epoch + 1, lossSum / batches);
  }
  optimizer.dispose();
  return model;
}

/** Softmax probability of class `positive` for each tile (no augmentation). */
export async function scoreTiles(model: TileClassifier, pixels: readonly Uint8Array[], positive: number, batchSize = 128): Promise<Float32Array> {
  const out = new Float32Array(pixels.length);
  for (let start = 0; start < pixels.length; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, pixels.length - start) }, (_, i) => start + i);
    const p = tf.tidy(() => tf.softmax(model.logits(toTensor(pixels, idx, model.size), false)).slice([0, positive], [idx.length, 1]));
    out.set(await p.data(), start);
    p.dispose();
  }
  return out;
}
