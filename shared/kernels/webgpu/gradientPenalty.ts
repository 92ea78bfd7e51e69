import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { FusedPenalty } from '../../gan/losses.ts';
import { installWebGPUKernels, type Restore } from './overrides.ts';
import { ElementwiseProgram } from './elementwiseProgram.ts';

/**
 * WGAN-GP's gradient penalty around the critic, in five webgpu dispatches instead of ~25 (issue 19):
 *
 *   FedganGpInterpolate(ε, real, fake) = ε_b·real + (1 − ε_b)·fake           one dispatch (tfjs: 4)
 *   FedganGpNorms(g)                   = ‖g_b‖ = √(Σ g_b² + 1e-12), [B]       one dispatch, a workgroup per sample
 *   FedganGpPenalty(‖g‖)               = λ·mean_b (‖g_b‖ − 1)²                 one dispatch (one thread)
 *
 * and backward: FedganGpPenalty's gradient is d‖g_b‖ = dy·2λ(‖g_b‖ − 1)/B, elementwise over [B], and
 * FedganGpNorms's is dg = d‖g_b‖·g/‖g_b‖ (one dispatch each). tfjs composes the same from Square, Sum, Add,
 * Sqrt, Sub, Square, Mean and Multiply forward and about a dozen ops backward. The penalty's own
 * gradient is all the critic update needs: the second-order part runs through the critic's kernels.
 * Neither backward kernel has a gradient of its own (a third derivative would fail in tfjs's tape with
 * "gradient function not found"); the interpolation's gradients are tfjs ops (not taken in a GAN step:
 * x̂ is the variable of the inner gradient).
 *
 * Numerically the same formula as shared/gan/losses.ts's tfjs ops; sums run in a different order
 * (a 64-lane tree per sample), so results agree to float32 rounding, not bit for bit.
 */
export const GP_INTERPOLATE = 'FedganGpInterpolate';
export const GP_NORMS = 'FedganGpNorms';
export const GP_NORMS_GRAD = 'FedganGpNormsGrad';
export const GP_PENALTY = 'FedganGpPenalty';
export const GP_PENALTY_GRAD = 'FedganGpPenaltyGrad';

const NORM_EPS = 1e-12;
const LANES = 64;

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };

/** One thread per element over `shape`, reading per-sample values `[i / uniforms.n]` where asked (`b`). */
class PerSampleProgram extends ElementwiseProgram {
  constructor(variableNames: string[], shape: number[], shaderKey: string, uniforms: string, private readonly statements: string) {
    super(variableNames, shape, shaderKey, uniforms, '');
  }
  protected override body(): string {
    return `let b = i / uniforms.n;
        ${this.statements}`;
  }
}

/** ‖g_b‖ for each sample b: one workgroup of 64 lanes per sample, strided partial sums, then a tree. */
class NormsProgram implements WebGPUProgram {
  outputShape: number[];
  dispatchLayout = { x: [0] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [LANES, 1, 1];
  variableNames = ['g'];
  uniforms = 'n : i32, eps : f32,';
  shaderKey = 'fedganGpNorms';
  constructor(batch: number) {
    this.outputShape = [batch];
    this.dispatch = [batch, 1, 1];
  }
  getUserCode(): string {
    return `
      var<workgroup> fgPartial : array<f32, ${LANES}>;
      fn main(_i : i32) {
        let lane = i32(localId.x);
        let b = i32(workgroupId.x);
        let base = b * uniforms.n;
        var s = 0.0;
        for (var j = lane; j < uniforms.n; j = j + ${LANES}) {
          let v = g[base + j];
          s = s + v * v;
        }
        fgPartial[lane] = s;
        workgroupBarrier();
        for (var w = ${LANES / 2}; w > 0; w = w / 2) {
          if (lane < w) { fgPartial[lane] = fgPartial[lane] + fgPartial[lane + w]; }
          workgroupBarrier();
        }
        if (lane == 0) { setOutputAtIndex(b, sqrt(fgPartial[0] + uniforms.eps)); }
      }`;
  }
}

/** λ·mean((‖g_b‖ − 1)²): one thread. */
class PenaltyProgram implements WebGPUProgram {
  outputShape: number[] = [];
  dispatchLayout = { x: [] as number[] };
  dispatch: [number, number, number] = [1, 1, 1];
  workgroupSize: [number, number, number] = [1, 1, 1];
  variableNames = ['norms'];
  uniforms = 'batch : i32, lambda : f32,';
  shaderKey = 'fedganGpPenalty';
  getUserCode(): string {
    return `
      fn main(_i : i32) {
        var s = 0.0;
        for (var b = 0; b < uniforms.batch; b = b + 1) {
          let d = norms[b] - 1.0;
          s = s + d * d;
        }
        setOutputAtIndex(0, s / f32(uniforms.batch) * uniforms.lambda);
      }`;
  }
}

const run = (backend: unknown, program: WebGPUProgram, inputs: TensorInfo[], uniforms: { type: string; data: number[] }[]) => (backend as WebGPUBackend).runWebGPUProgram(program, inputs, 'float32', uniforms);

function interpolateKernel({ inputs, backend }: KernelArgs): TensorInfo {
  const { eps, real, fake } = inputs as { eps: TensorInfo; real: TensorInfo; fake: TensorInfo };
  const n = tf.util.sizeFromShape(real.shape) / real.shape[0];
  const program = new PerSampleProgram(['eps', 'real', 'fake'], real.shape, 'fedganGpInterpolate', 'n : i32,', 'let e = eps[b]; setOutputAtIndex(i, e * real[i] + (1.0 - e) * fake[i]);');
  return run(backend, program, [eps, real, fake], [{ type: 'int32', data: [n] }]);
}

function normsKernel({ inputs, backend }: KernelArgs): TensorInfo {
  const { g } = inputs as { g: TensorInfo };
  const n = tf.util.sizeFromShape(g.shape) / g.shape[0];
  return run(backend, new NormsProgram(g.shape[0]), [g], [
    { type: 'int32', data: [n] },
    { type: 'float32', data: [NORM_EPS] },
  ]);
}

function normsGradKernel({ inputs, backend }: KernelArgs): TensorInfo {
  const { dn, g, norms } = inputs as { dn: TensorInfo; g: TensorInfo; norms: TensorInfo };
  const n = tf.util.sizeFromShape(g.shape) / g.shape[0];
  const program = new PerSampleProgram(['dn', 'g', 'norms'], g.shape, 'fedganGpNormsGrad', 'n : i32,', 'setOutputAtIndex(i, dn[b] * g[i] / norms[b]);');
  return run(backend, program, [dn, g, norms], [{ type: 'int32', data: [n] }]);
}

function penaltyKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { norms } = inputs as { norms: TensorInfo };
  const { lambda } = attrs as unknown as { lambda: number };
  return run(backend, new PenaltyProgram(), [norms], [
    { type: 'int32', data: [norms.shape[0]] },
    { type: 'float32', data: [lambda] },
  ]);
}

function penaltyGradKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, norms } = inputs as { dy: TensorInfo; norms: TensorInfo };
  const { lambda } = attrs as unknown as { lambda: number };
  // d/d‖g_b‖ of λ/B·Σ(‖g_b‖ − 1)² = 2λ(‖g_b‖ − 1)/B, times the incoming scalar.
  const program = new PerSampleProgram(['dy', 'norms'], norms.shape, 'fedganGpPenaltyGrad', 'n : i32, scale : f32,', 'setOutputAtIndex(i, dy[0] * uniforms.scale * (norms[i] - 1.0));');
  return run(backend, program, [dy, norms], [
    { type: 'int32', data: [1] },
    { type: 'float32', data: [(2 * lambda) / norms.shape[0]] },
  ]);
}

const engine = () => tf.engine();
const runKernel = (name: string, inputs: Record<string, tf.Tensor>, attrs: Record<string, unknown> = {}) => engine().runKernel(name, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor;

const usable = (...ts: tf.Tensor[]) => tf.getBackend() === 'webgpu' && ts.every((t) => t.dtype === 'float32') && tf.getKernel(GP_NORMS, 'webgpu') != null;

/** The penalty's hooks for shared/gan/losses.ts: null (tfjs ops) off webgpu or for other dtypes/shapes. */
export const webgpuFusedPenalty: FusedPenalty = {
  interpolate(eps, real, fake) {
    if (!usable(eps, real, fake) || !tf.util.arraysEqual(real.shape, fake.shape) || eps.size !== real.shape[0] || real.shape[0] === 0) return null;
    return runKernel(GP_INTERPOLATE, { eps, real, fake }) as tf.Tensor4D;
  },
  penalty(g, lambda) {
    if (!usable(g) || g.rank < 2 || g.size === 0) return null;
    const norms = runKernel(GP_NORMS, { g });
    return runKernel(GP_PENALTY, { norms }, { lambda }) as tf.Scalar;
  },
};

export function installGradientPenalty(): Restore {
  return installWebGPUKernels(
    { [GP_INTERPOLATE]: interpolateKernel, [GP_NORMS]: normsKernel, [GP_NORMS_GRAD]: normsGradKernel, [GP_PENALTY]: penaltyKernel, [GP_PENALTY_GRAD]: penaltyGradKernel },
    [
      {
        kernelName: GP_INTERPOLATE,
        inputsToSave: ['eps', 'real', 'fake'],
        gradFunc: (dy, saved) => {
          const [eps, real, fake] = saved as tf.Tensor[];
          const d = dy as tf.Tensor;
          const axes = real.shape.map((_, i) => i).slice(1);
          return {
            eps: () => tf.reshape(tf.sum(tf.mul(d, tf.sub(real, fake)), axes), eps.shape),
            real: () => tf.mul(d, tf.reshape(eps, [real.shape[0], ...axes.map(() => 1)])),
            fake: () => tf.mul(d, tf.reshape(tf.sub(1, eps), [real.shape[0], ...axes.map(() => 1)])),
          };
        },
      },
      {
        kernelName: GP_NORMS,
        inputsToSave: ['g'],
        outputsToSave: [true],
        gradFunc: (dn, saved) => {
          const [g, norms] = saved as tf.Tensor[];
          return { g: () => runKernel(GP_NORMS_GRAD, { dn: dn as tf.Tensor, g, norms }) };
        },
      },
      {
        kernelName: GP_PENALTY,
        inputsToSave: ['norms'],
        gradFunc: (dy, saved, attrs) => {
          const [norms] = saved as tf.Tensor[];
          const { lambda } = attrs as unknown as { lambda: number };
          return { norms: () => runKernel(GP_PENALTY_GRAD, { dy: dy as tf.Tensor, norms }, { lambda }) };
        },
      },
    ],
  );
}
