import * as tf from '@tensorflow/tfjs-core';
import { batchNorm, conv2d, dense, dropout, type Norm } from '../../shared/nn/layers.ts';
import { ParamStore } from '../../shared/nn/params.ts';

/**
 * The downstream classifier: a small CNN trained from scratch: four 3×3 conv + batch norm + ReLU
 * blocks, all of stride 2 (strided convs rather than max-pooling: the cpu backend's MaxPoolGrad is
 * slow), global average pooling, dropout, and a dense layer to class logits. Small on purpose: it has
 * to train 15 times (3 regimes × 5 seeds) on a CPU within minutes, and it only has to tell whether
 * synthetic tiles help, not to beat the paper's ResNet.
 *
 * The stride-2 stem matters for speed: at 64 px a stride-1 first block did 4× the work at full
 * resolution (its filter gradient alone was 12 % of a step) for the same accuracy on the crc-msi
 * tiles (real only, 3 seeds: balanced accuracy 0.589 vs 0.569, tile AUROC 0.626 vs 0.625;
 * docs/quality.md), and a step is 3.9× faster.
 */
export interface TileClassifier {
  readonly params: ParamStore;
  readonly size: number;
  /** x in [-1, 1], NHWC; returns logits [B, classes]. */
  logits(x: tf.Tensor4D, training: boolean): tf.Tensor2D;
  dispose(): void;
}

export function createTileClassifier(opts: { size: number; classes: number; channels?: number; dropout?: number; batchNorm?: boolean; /** Stride of the first conv (default 2). */ firstStride?: number; seed: number }): TileClassifier {
  const c = opts.channels ?? 8;
  const rate = opts.dropout ?? 0.3;
  const params = new ParamStore('clf', opts.seed);
  const convs = [
    conv2d(params, 'conv1', 3, c, { stride: opts.firstStride ?? 2 }),
    conv2d(params, 'conv2', c, 2 * c, { stride: 2 }),
    conv2d(params, 'conv3', 2 * c, 4 * c, { stride: 2 }),
    conv2d(params, 'conv4', 4 * c, 4 * c, { stride: 2 }),
  ];
  const norms: (Norm | null)[] = convs.map((conv, i) => (opts.batchNorm ? batchNorm(params, `bn${i + 1}`, conv.outChannels, 0.9) : null));
  const head = dense(params, 'dense', 4 * c, opts.classes);
  let dropSeed = opts.seed * 1000;
  return {
    params,
    size: opts.size,
    logits(x, training) {
      return tf.tidy(() => {
        let h: tf.Tensor4D = x;
        convs.forEach((conv, i) => {
          const z = conv.apply(h);
          h = tf.relu(norms[i] ? (norms[i].apply(z, training) as tf.Tensor4D) : z);
        });
        let pooled = tf.mean(h, [1, 2]) as tf.Tensor2D;
        pooled = dropout(pooled, rate, training, training ? ++dropSeed : undefined);
        return head.apply(pooled);
      });
    },
    dispose() {
      params.dispose();
    },
  };
}
