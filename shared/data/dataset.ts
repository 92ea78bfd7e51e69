import * as tf from '@tensorflow/tfjs-core';

/** A decoded tile at the training size: RGB bytes, row-major, `size × size × 3`, and its class index. */
export interface Tile {
  pixels: Uint8Array;
  label: number;
}

/** A hospital's training data on the device: images in [-1, 1] NHWC and int32 labels. */
export interface Dataset {
  readonly images: tf.Tensor4D;
  readonly labels: tf.Tensor1D;
  readonly count: number;
  readonly size: number;
  dispose(): void;
}

export function datasetFromTiles(tiles: readonly Tile[], size: number, numClasses: number): Dataset {
  if (tiles.length === 0) throw new Error('no tiles to train on');
  const per = size * size * 3;
  const buf = new Float32Array(tiles.length * per);
  const labels = new Int32Array(tiles.length);
  tiles.forEach((t, i) => {
    if (t.pixels.length !== per) throw new Error(`tile ${i} has ${t.pixels.length} bytes, expected ${per} (${size}×${size} RGB)`);
    if (!Number.isInteger(t.label) || t.label < 0 || t.label >= numClasses) throw new Error(`tile ${i} has label ${t.label}, expected 0..${numClasses - 1}`);
    const off = i * per;
    for (let j = 0; j < per; j++) buf[off + j] = t.pixels[j] / 127.5 - 1;
    labels[i] = t.label;
  });
  const images = tf.tensor4d(buf, [tiles.length, size, size, 3]);
  const lab = tf.tensor1d(labels, 'int32');
  return {
    images,
    labels: lab,
    count: tiles.length,
    size,
    dispose() {
      images.dispose();
      lab.dispose();
    },
  };
}

/** Count of tiles per class index. */
export function classCounts(labels: ArrayLike<number>, numClasses: number): number[] {
  const c = new Array<number>(numClasses).fill(0);
  for (let i = 0; i < labels.length; i++) c[labels[i]]++;
  return c;
}
