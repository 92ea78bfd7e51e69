import * as tf from '@tensorflow/tfjs-core';
import type { NamedTensor } from '../weights.ts';

export type Init = 'glorot' | 'zeros' | 'ones' | { uniform: number } | { normal: number; mean?: number };

/**
 * What a layer computes with in place of a weight matrix (spectral normalisation: shared/nn/spectralNorm.ts).
 * `wrap` may create state of its own in the store (after the weight, so creation order stays deterministic)
 * and returns the tensor to use, recomputed on each call so that it follows the weight as it trains.
 */
export interface WeightTransform {
  wrap(p: ParamStore, name: string, weight: tf.Variable): () => tf.Tensor;
}

/** A layer's weight matrix: the variable (what trains and travels) and the tensor the layer computes with. */
export interface MatrixWeight {
  readonly variable: tf.Variable;
  value(): tf.Tensor;
}

interface Entry {
  name: string;
  variable: tf.Variable;
  trainable: boolean;
}

/**
 * The variables of one network, in creation order. Creation order is the weight order everywhere
 * (codec, aggregation, checkpoints), so it must be deterministic for a given config.
 * Initialisation is seeded: the same config and seed give the same weights.
 */
export class ParamStore {
  private readonly entries: Entry[] = [];
  private counter = 0;

  constructor(
    readonly prefix: string,
    private readonly seed: number,
    /** Applied to every weight matrix made with `matrix` (dense, conv and embedding layers); none by default. */
    readonly transform: WeightTransform | null = null,
  ) {}

  create(name: string, shape: number[], init: Init, trainable = true): tf.Variable {
    const full = `${this.prefix}/${name}`;
    if (this.entries.some((e) => e.name === full)) throw new Error(`duplicate parameter name ${full}`);
    const seed = this.seed * 7919 + ++this.counter;
    const value = tf.tidy(() => initialValue(shape, init, seed));
    const variable = tf.variable(value, trainable, `${full}#${uniqueSuffix()}`);
    value.dispose();
    this.entries.push({ name: full, variable, trainable });
    return variable;
  }

  /**
   * A weight matrix (a dense or conv kernel, an embedding table): created like `create`, and computed with
   * through the store's transform when it has one (its value is then W transformed, e.g. W / σ(W)).
   */
  matrix(name: string, shape: number[], init: Init): MatrixWeight {
    const variable = this.create(name, shape, init);
    const value = this.transform?.wrap(this, name, variable) ?? (() => variable);
    return { variable, value };
  }

  trainableVariables(): tf.Variable[] {
    return this.entries.filter((e) => e.trainable).map((e) => e.variable);
  }

  all(): readonly Entry[] {
    return this.entries;
  }

  /** Synchronous read (fine on CPU; prefer readAsync on GPU backends). */
  read(): NamedTensor[] {
    return this.entries.map((e) => ({ name: e.name, shape: e.variable.shape.slice(), data: e.variable.dataSync() as Float32Array }));
  }

  async readAsync(): Promise<NamedTensor[]> {
    const datas = await Promise.all(this.entries.map((e) => e.variable.data()));
    return this.entries.map((e, i) => ({ name: e.name, shape: e.variable.shape.slice(), data: datas[i] as Float32Array }));
  }

  /** Assign values by name; every parameter must be present with the exact shape. */
  write(tensors: readonly NamedTensor[]): void {
    const byName = new Map(tensors.map((t) => [t.name, t]));
    for (const e of this.entries) {
      const t = byName.get(e.name);
      if (!t) throw new Error(`weights lack parameter ${e.name}`);
      if (t.shape.length !== e.variable.shape.length || t.shape.some((d, i) => d !== e.variable.shape[i])) {
        throw new Error(`parameter ${e.name} has shape [${t.shape}] but the model expects [${e.variable.shape}]`);
      }
      tf.tidy(() => e.variable.assign(tf.tensor(t.data, t.shape, 'float32')));
    }
  }

  dispose(): void {
    for (const e of this.entries) e.variable.dispose();
    this.entries.length = 0;
  }
}

let uid = 0;
function uniqueSuffix(): number {
  return ++uid;
}

function initialValue(shape: number[], init: Init, seed: number): tf.Tensor {
  if (init === 'zeros') return tf.zeros(shape);
  if (init === 'ones') return tf.ones(shape);
  if (init === 'glorot') {
    // Glorot/Xavier uniform, with fan-in/fan-out as Keras computes them for dense and conv kernels.
    const receptive = shape.length > 2 ? shape.slice(0, -2).reduce((a, b) => a * b, 1) : 1;
    const fanIn = (shape.length >= 2 ? shape[shape.length - 2] : shape[0]) * receptive;
    const fanOut = shape[shape.length - 1] * receptive;
    const limit = Math.sqrt(6 / (fanIn + fanOut));
    return tf.randomUniform(shape, -limit, limit, 'float32', seed);
  }
  if ('uniform' in init) return tf.randomUniform(shape, -init.uniform, init.uniform, 'float32', seed);
  return tf.randomNormal(shape, init.mean ?? 0, init.normal, 'float32', seed);
}
