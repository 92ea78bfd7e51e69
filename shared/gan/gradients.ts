import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's own gradient definitions, loaded the way each host can (see package.json "imports").
import '#tfjs-gradients';

/**
 * Gradients that tfjs-core 4.22 lacks but second-order differentiation needs (WGAN-GP):
 *
 * - Comparison ops (`Greater` et al.) are piecewise constant: their gradient is zero almost everywhere.
 *   LeakyReLU's gradient is `where(x > 0, dy, α·dy)`, so differentiating it again reaches `Greater`.
 * - `ResizeNearestNeighborGrad(dy)` sums dy over the output pixels that copy each input pixel: it is the
 *   adjoint (transpose) of nearest-neighbour resizing, so its own gradient with respect to dy is the
 *   forward resize of the incoming gradient back to dy's size. The images input only provides the shape.
 *
 * Each is registered only if tfjs has none, so a later tfjs that ships its own wins.
 */
const COMPARISONS = ['Greater', 'GreaterEqual', 'Less', 'LessEqual', 'Equal', 'NotEqual'];

let registered = false;

export function registerMissingGradients(): void {
  if (registered) return;
  registered = true;
  for (const kernelName of COMPARISONS) {
    if (tf.getGradient(kernelName)) continue;
    tf.registerGradient({
      kernelName,
      inputsToSave: ['a', 'b'],
      gradFunc: (_dy, saved) => {
        const [a, b] = saved as tf.Tensor[];
        return { a: () => tf.zerosLike(a), b: () => tf.zerosLike(b) };
      },
    });
  }
  if (!tf.getGradient('ResizeNearestNeighborGrad')) {
    tf.registerGradient({
      kernelName: 'ResizeNearestNeighborGrad',
      inputsToSave: ['images', 'dy'],
      gradFunc: (g, saved, attrs) => {
        const [images, dy] = saved as [tf.Tensor4D, tf.Tensor4D];
        const { alignCorners, halfPixelCenters } = attrs as unknown as { alignCorners: boolean; halfPixelCenters: boolean };
        return {
          images: () => tf.zerosLike(images),
          dy: () => tf.image.resizeNearestNeighbor(g as tf.Tensor4D, [dy.shape[1], dy.shape[2]], alignCorners, halfPixelCenters),
        };
      },
    });
  }
  registerSoftmaxGradient();
}

/**
 * tfjs's own Softmax gradient, dx = y⊙dy − y·Σ(y⊙dy), reads the *saved output* y. tfjs saves an output
 * by cloning it, and the clone's tape node is recorded before the Softmax node itself, so a second
 * backward pass visits the clone too late: the part of the second derivative that flows through y is
 * silently dropped (the GP gradient of an attention critic came out wrong by ~2×; Exp, Tanh and Sigmoid
 * share the flaw). This replacement saves the input and recomputes y, so the second pass reaches the
 * logits through an ordinary Softmax node. First-order values are unchanged; it costs one extra softmax
 * in the backward pass. Registered unconditionally: a tfjs that fixes the tape order loses nothing.
 */
function registerSoftmaxGradient(): void {
  tf.registerGradient({
    kernelName: 'Softmax',
    inputsToSave: ['logits'],
    gradFunc: (dy, saved, attrs) => {
      const [logits] = saved as [tf.Tensor];
      const { dim } = attrs as unknown as { dim: number };
      return {
        logits: () => {
          const y = tf.softmax(logits, dim);
          const dyTimesY = tf.mul(dy as tf.Tensor, y);
          return tf.sub(dyTimesY, tf.mul(tf.sum(dyTimesY, [dim], true), y));
        },
      };
    },
  });
}
