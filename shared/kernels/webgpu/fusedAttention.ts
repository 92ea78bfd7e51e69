import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { attentionScores, tfjsAttentionCore, type AttentionCore, type AttentionCoreOptions } from '../../nn/attentionCore.ts';
import { installWebGPUKernels, type Restore } from './overrides.ts';

/**
 * Multi-head softmax attention (the core between the projections, attentionCore.ts) as fused webgpu
 * kernels. Per item b, head h (d features each), with q already scaled:
 *
 *   s_ij = q_i·k_j + bias_h[i, j] + mask[i, j],   P = softmax_j(s),   O_i = Σ_j P_ij v_j
 *
 * read straight from q, k, v in their [B, N, heads·d] token layout and written the same way (no head
 * split or merge transposes). Forward: one dispatch, one thread per (b, h, i) row, two passes over j
 * (row maximum, then exp-sum and the weighted sum of v, q_i and the sum in registers).
 *
 * Backward (FedganAttentionGrad, one kernel with three outputs), with G = ∂L/∂O:
 *   stats:  L_i = log Σ_j exp s_ij (so P_ij = exp(s_ij − L_i)) and δ_i = G_i·O_i      one thread per row
 *   dq_i = Σ_j dS_ij k_j,  dS_ij = P_ij (G_i·v_j − δ_i)                                one thread per row
 *   dk_j = Σ_i dS_ij q_i,  dv_j = Σ_i P_ij G_i                                         one thread per column each
 * four dispatches; the bias's gradient (Σ over the items sharing it of dS) is a separate kernel,
 * FedganAttentionBiasGrad (stats + one thread per bias element), run only when the bias needs a gradient.
 * Scores are recomputed, never stored: no [B·heads, N, N] tensor exists on this path.
 *
 * Second order (WGAN-GP's penalty differentiates the critic's input gradient): the backward kernels'
 * gradients are the exact vector–Jacobian products of the backward map (derivation at `attentionGradVjp`,
 * which writes them in tfjs ops and is the formula's tested reference), run as one more kernel,
 * FedganAttentionVjp: two concats packing q, k, v and the cotangents, then a statistics pass and one
 * dispatch per input gradient (dy, q, k, v, bias), seven or eight in all, where tfjs's second derivative of
 * the composition takes about fifty. FedganAttentionVjp has no gradient: third order through the fused
 * attention fails with tfjs's "gradient function not found" (as the layer norm's NGX).
 *
 * Used for float32 with head width d ≤ MAX_HEAD_DIM (the row lives in registers); anything else, and
 * every other backend, runs the tfjs composition (tfjsAttentionCore).
 */
export const ATTENTION = 'FedganAttention';
export const ATTENTION_GRAD = 'FedganAttentionGrad';
export const ATTENTION_BIAS_GRAD = 'FedganAttentionBiasGrad';
/** Second order: the backward kernels' vector–Jacobian product (no gradient of its own: third order is not supported). */
export const ATTENTION_VJP = 'FedganAttentionVjp';
export const MAX_HEAD_DIM = 128;

/** Kernel-name suffix per optional input: tfjs saves inputs for the gradient by name, so each input set is its own kernel. */
const suffix = (bias: boolean, mask: boolean) => (bias ? 'Bias' : '') + (mask ? 'Mask' : '');
const VARIANTS: [boolean, boolean][] = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

interface Attrs {
  heads: number;
}

type Mode = 'forward' | 'stats' | 'dq' | 'dk' | 'dv' | 'dbias';

/** One thread per row (b, h, i) (per column (b, h, j) for dk and dv, per bias element for dbias). */
class AttentionProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  uniforms = 'threads : i32, n : i32, heads : i32, per : i32, groups : i32,';
  variableNames: string[];
  constructor(
    private readonly mode: Mode,
    outputShape: number[],
    threads: number,
    private readonly d: number,
    private readonly bias: boolean,
    private readonly mask: boolean,
  ) {
    // Every binding must be used (the pipeline's layout is derived from the shader): dv never reads v.
    this.variableNames = programInputs(mode, ['dys', 'qs', 'ks', 'vs', 'stats', ...(bias ? ['biases'] : []), ...(mask ? ['masks'] : [])]);
    this.outputShape = outputShape;
    this.shaderKey = `fedganAttention_${mode}_d${d}${bias ? '_bias' : ''}${mask ? '_mask' : ''}`;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.dispatch = [Math.ceil(threads / 64), 1, 1];
  }

  getUserCode(): string {
    const D = this.d;
    const extra = [
      this.bias ? '        s = s + biases[(((b / uniforms.per) * uniforms.heads + h) * uniforms.n + i) * uniforms.n + j];' : '',
      this.mask ? '        s = s + masks[((b % uniforms.groups) * uniforms.n + i) * uniforms.n + j];' : '',
    ].join('\n');
    const helpers = `
      const HD = ${D};
      // Offset of token t's head h in a [B, N, heads·D] tensor.
      fn attnTok(b : i32, t : i32, h : i32) -> i32 { return (b * uniforms.n + t) * (uniforms.heads * HD) + h * HD; }
      // bias + mask of pair (i, j) of item b, head h.
      fn attnExtra(b : i32, h : i32, i : i32, j : i32) -> f32 {
        var s = 0.0;
${extra}
        return s;
      }`;
    // Row thread: b, h, i and q_i in registers.
    const row = `
        let n = uniforms.n;
        let i = t % n;
        let bh = t / n;
        let h = bh % uniforms.heads;
        let b = bh / uniforms.heads;
        let qo = attnTok(b, i, h);
        var qr : array<f32, HD>;
        for (var c = 0; c < HD; c = c + 1) { qr[c] = qs[qo + c]; }`;
    // Softmax of row i: its maximum m, then l = Σ exp(s − m) and acc = Σ exp(s − m) v_j.
    const softmaxRow = `
        var m = -3.402823e+38;
        for (var j = 0; j < n; j = j + 1) {
          let ko = attnTok(b, j, h);
          var s = attnExtra(b, h, i, j);
          for (var c = 0; c < HD; c = c + 1) { s = s + qr[c] * ks[ko + c]; }
          m = max(m, s);
        }
        var l = 0.0;
        var acc : array<f32, HD>;
        for (var j = 0; j < n; j = j + 1) {
          let ko = attnTok(b, j, h);
          var s = attnExtra(b, h, i, j);
          for (var c = 0; c < HD; c = c + 1) { s = s + qr[c] * ks[ko + c]; }
          let p = exp(s - m);
          l = l + p;
          for (var c = 0; c < HD; c = c + 1) { acc[c] = acc[c] + p * vs[ko + c]; }
        }`;
    let body: string;
    switch (this.mode) {
      case 'forward':
        body = `${row}${softmaxRow}
        for (var c = 0; c < HD; c = c + 1) { setOutputAtIndex(qo + c, acc[c] / l); }`;
        break;
      case 'stats':
        body = `${row}${softmaxRow}
        var delta = 0.0;
        for (var c = 0; c < HD; c = c + 1) { delta = delta + dys[qo + c] * (acc[c] / l); }
        setOutputAtIndex(2 * t, m + log(l));
        setOutputAtIndex(2 * t + 1, delta);`;
        break;
      case 'dq':
        body = `${row}
        var gr : array<f32, HD>;
        for (var c = 0; c < HD; c = c + 1) { gr[c] = dys[qo + c]; }
        let lse = stats[2 * t];
        let delta = stats[2 * t + 1];
        var acc : array<f32, HD>;
        for (var j = 0; j < n; j = j + 1) {
          let ko = attnTok(b, j, h);
          var s = attnExtra(b, h, i, j);
          var dp = 0.0;
          for (var c = 0; c < HD; c = c + 1) {
            s = s + qr[c] * ks[ko + c];
            dp = dp + gr[c] * vs[ko + c];
          }
          let ds = exp(s - lse) * (dp - delta);
          for (var c = 0; c < HD; c = c + 1) { acc[c] = acc[c] + ds * ks[ko + c]; }
        }
        for (var c = 0; c < HD; c = c + 1) { setOutputAtIndex(qo + c, acc[c]); }`;
        break;
      case 'dk':
      case 'dv': {
        const dk = this.mode === 'dk';
        body = `
        let n = uniforms.n;
        let j = t % n;
        let bh = t / n;
        let h = bh % uniforms.heads;
        let b = bh / uniforms.heads;
        let ko = attnTok(b, j, h);
        var kr : array<f32, HD>;
        ${dk ? 'var vr : array<f32, HD>;' : ''}
        for (var c = 0; c < HD; c = c + 1) {
          kr[c] = ks[ko + c];
          ${dk ? 'vr[c] = vs[ko + c];' : ''}
        }
        var acc : array<f32, HD>;
        for (var i = 0; i < n; i = i + 1) {
          let qo = attnTok(b, i, h);
          let r = bh * n + i;
          var s = attnExtra(b, h, i, j);
          ${dk ? 'var dp = 0.0;' : ''}
          for (var c = 0; c < HD; c = c + 1) {
            s = s + qs[qo + c] * kr[c];
            ${dk ? 'dp = dp + dys[qo + c] * vr[c];' : ''}
          }
          let p = exp(s - stats[2 * r]);
          ${dk ? 'let ds = p * (dp - stats[2 * r + 1]);' : ''}
          for (var c = 0; c < HD; c = c + 1) { acc[c] = acc[c] + ${dk ? 'ds * qs[qo + c]' : 'p * dys[qo + c]'}; }
        }
        for (var c = 0; c < HD; c = c + 1) { setOutputAtIndex(ko + c, acc[c]); }`;
        break;
      }
      case 'dbias':
        // Element (e, h, i, j) of the bias: Σ over the items b of example e of dS_ij.
        body = `
        let n = uniforms.n;
        let j = t % n;
        let i = (t / n) % n;
        let h = (t / (n * n)) % uniforms.heads;
        let e = t / (n * n * uniforms.heads);
        var sum = 0.0;
        for (var b = e * uniforms.per; b < (e + 1) * uniforms.per; b = b + 1) {
          let qo = attnTok(b, i, h);
          let ko = attnTok(b, j, h);
          let r = (b * uniforms.heads + h) * n + i;
          var s = attnExtra(b, h, i, j);
          var dp = 0.0;
          for (var c = 0; c < HD; c = c + 1) {
            s = s + qs[qo + c] * ks[ko + c];
            dp = dp + dys[qo + c] * vs[ko + c];
          }
          sum = sum + exp(s - stats[2 * r]) * (dp - stats[2 * r + 1]);
        }
        setOutputAtIndex(t, sum);`;
        break;
    }
    return `${helpers}
      fn main(t : i32) {
        if (t >= uniforms.threads) { return; }
        ${body}
      }`;
  }
}

/** The inputs a mode's program reads, from [dy, q, k, v, stats, bias?, mask?] (names or tensors). */
function programInputs<T>(mode: Mode, all: T[]): T[] {
  const drop = new Set(mode === 'forward' ? [0, 4] : mode === 'stats' ? [4] : mode === 'dv' ? [3] : []);
  return all.filter((_, i) => !drop.has(i));
}

type VjpMode = 'stats' | 'gq' | 'gdy' | 'gk' | 'gv' | 'gbias';

/**
 * The second-order kernels: the vector–Jacobian product of the backward map (attentionGradVjp's formulas)
 * against cotangents abc = [a | bk | c] (of dq, dk, dv, packed along the features) and/or e (of dbias),
 * with q, k, v packed as qkv = [q | k | v]: at most eight storage buffers. Per pair (i, j) of item b,
 * head h the scalars P, dP = G_i·v_j, H = a_i·k_j + q_i·bk_j + e_ij and G_i·c_j are recomputed; per row
 *
 *   stats: L_i, δ_i, γ_i = Σ_j P H and ρ_i = Σ_j P gP = Σ_j P H dP − 2γ_iδ_i + Σ_j P (G_i·c_j)
 *
 * then gS = P (gP − ρ_i), gP = H (dP − δ_i) − γ_i dP + G_i·c_j, dS = P (dP − δ_i), gdP = P (H − γ_i) and
 *
 *   gq_i = Σ_j gS k_j + dS bk_j,  gdy_i = Σ_j gdP v_j + P c_j   (one thread per row)
 *   gk_j = Σ_i gS q_i + dS a_i,   gv_j = Σ_i gdP G_i            (one thread per column)
 *   gbias = Σ over the items sharing the bias of gS                 (one thread per bias element)
 */
class VjpProgram implements WebGPUProgram {
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  uniforms = 'threads : i32, n : i32, heads : i32, per : i32, groups : i32,';
  variableNames: string[];
  constructor(
    private readonly mode: VjpMode,
    outputShape: number[],
    threads: number,
    private readonly d: number,
    private readonly abc: boolean,
    private readonly e: boolean,
    private readonly bias: boolean,
    private readonly mask: boolean,
  ) {
    this.variableNames = ['dys', 'qkv', ...(abc ? ['abc'] : []), ...(e ? ['ecot'] : []), ...(mode === 'stats' ? [] : ['stats']), ...(bias ? ['biases'] : []), ...(mask ? ['masks'] : [])];
    this.outputShape = outputShape;
    this.shaderKey = `fedganAttentionVjp_${mode}_d${d}${abc ? '_abc' : ''}${e ? '_e' : ''}${bias ? '_bias' : ''}${mask ? '_mask' : ''}`;
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.dispatch = [Math.ceil(threads / 64), 1, 1];
  }

  getUserCode(): string {
    const { abc, e } = this;
    const extra = [
      this.bias ? '        s = s + biases[(((b / uniforms.per) * uniforms.heads + h) * uniforms.n + i) * uniforms.n + j];' : '',
      this.mask ? '        s = s + masks[((b % uniforms.groups) * uniforms.n + i) * uniforms.n + j];' : '',
    ].join('\n');
    const helpers = `
      const HD = ${this.d};
      // Offsets: token t's head h in [B, N, heads·HD] (G) and part p (0 q/a, 1 k/bk, 2 v/c) in [B, N, 3·heads·HD].
      fn vjpTok(b : i32, t : i32, h : i32) -> i32 { return (b * uniforms.n + t) * (uniforms.heads * HD) + h * HD; }
      fn vjpPart(b : i32, t : i32, h : i32, p : i32) -> i32 { return (b * uniforms.n + t) * (3 * uniforms.heads * HD) + (p * uniforms.heads + h) * HD; }
      struct VjpPair { s : f32, dp : f32, hh : f32, gc : f32 }
      // Score s (with bias and mask), dP = G_i·v_j, H = a_i·k_j + q_i·bk_j + e_ij and G_i·c_j.
      fn vjpPair(b : i32, h : i32, i : i32, j : i32) -> VjpPair {
        var s = 0.0;
${extra}
        var dp = 0.0;
        var hh = ${e ? 'ecot[(((b / uniforms.per) * uniforms.heads + h) * uniforms.n + i) * uniforms.n + j]' : '0.0'};
        var gc = 0.0;
        let gi = vjpTok(b, i, h);
        let qi = vjpPart(b, i, h, 0);
        let kj = vjpPart(b, j, h, 1);
        let vj = vjpPart(b, j, h, 2);
        for (var c = 0; c < HD; c = c + 1) {
          let g = dys[gi + c];
          s = s + qkv[qi + c] * qkv[kj + c];
          dp = dp + g * qkv[vj + c];
          ${abc ? 'hh = hh + abc[qi + c] * qkv[kj + c] + qkv[qi + c] * abc[kj + c];' : ''}
          ${abc ? 'gc = gc + g * abc[vj + c];' : ''}
        }
        return VjpPair(s, dp, hh, gc);
      }
      ${this.mode === 'stats' ? '' : `// The pair's second-order coefficients from its row's statistics (L, δ, γ, ρ) at stats[4r].
      struct VjpCoef { p : f32, gs : f32, ds : f32, gdp : f32 }
      fn vjpCoef(x : VjpPair, r : i32) -> VjpCoef {
        let p = exp(x.s - stats[4 * r]);
        let delta = stats[4 * r + 1];
        let gamma = stats[4 * r + 2];
        let gp = x.hh * (x.dp - delta) - gamma * x.dp + x.gc;
        return VjpCoef(p, p * (gp - stats[4 * r + 3]), p * (x.dp - delta), p * (x.hh - gamma));
      }`}`;
    const rowIds = `
        let n = uniforms.n;
        let i = t % n;
        let bh = t / n;
        let h = bh % uniforms.heads;
        let b = bh / uniforms.heads;`;
    const colIds = `
        let n = uniforms.n;
        let j = t % n;
        let bh = t / n;
        let h = bh % uniforms.heads;
        let b = bh / uniforms.heads;`;
    let body: string;
    switch (this.mode) {
      case 'stats':
        body = `${rowIds}
        var m = -3.402823e+38;
        for (var j = 0; j < n; j = j + 1) { m = max(m, vjpPair(b, h, i, j).s); }
        var l = 0.0;
        var o : array<f32, HD>;
        for (var j = 0; j < n; j = j + 1) {
          let p = exp(vjpPair(b, h, i, j).s - m);
          l = l + p;
          let vj = vjpPart(b, j, h, 2);
          for (var c = 0; c < HD; c = c + 1) { o[c] = o[c] + p * qkv[vj + c]; }
        }
        let lse = m + log(l);
        var delta = 0.0;
        let gi = vjpTok(b, i, h);
        for (var c = 0; c < HD; c = c + 1) { delta = delta + dys[gi + c] * (o[c] / l); }
        var gamma = 0.0;
        var tau = 0.0;
        var sigma = 0.0;
        for (var j = 0; j < n; j = j + 1) {
          let x = vjpPair(b, h, i, j);
          let p = exp(x.s - lse);
          gamma = gamma + p * x.hh;
          tau = tau + p * x.hh * x.dp;
          sigma = sigma + p * x.gc;
        }
        setOutputAtIndex(4 * t, lse);
        setOutputAtIndex(4 * t + 1, delta);
        setOutputAtIndex(4 * t + 2, gamma);
        setOutputAtIndex(4 * t + 3, tau - 2.0 * gamma * delta + sigma);`;
        break;
      case 'gq':
      case 'gdy': {
        const gq = this.mode === 'gq';
        body = `${rowIds}
        var acc : array<f32, HD>;
        for (var j = 0; j < n; j = j + 1) {
          let w = vjpCoef(vjpPair(b, h, i, j), t);
          let kj = vjpPart(b, j, h, ${gq ? 1 : 2});
          for (var c = 0; c < HD; c = c + 1) {
            acc[c] = acc[c] + ${gq ? 'w.gs * qkv[kj + c]' : 'w.gdp * qkv[kj + c]'}${abc ? (gq ? ' + w.ds * abc[kj + c]' : ' + w.p * abc[kj + c]') : ''};
          }
        }
        let out = vjpTok(b, i, h);
        for (var c = 0; c < HD; c = c + 1) { setOutputAtIndex(out + c, acc[c]); }`;
        break;
      }
      case 'gk':
      case 'gv': {
        const gk = this.mode === 'gk';
        body = `${colIds}
        var acc : array<f32, HD>;
        for (var i = 0; i < n; i = i + 1) {
          let w = vjpCoef(vjpPair(b, h, i, j), bh * n + i);
          ${gk ? 'let qi = vjpPart(b, i, h, 0);' : 'let gi = vjpTok(b, i, h);'}
          for (var c = 0; c < HD; c = c + 1) {
            acc[c] = acc[c] + ${gk ? `w.gs * qkv[qi + c]${abc ? ' + w.ds * abc[qi + c]' : ''}` : 'w.gdp * dys[gi + c]'};
          }
        }
        let out = vjpTok(b, j, h);
        for (var c = 0; c < HD; c = c + 1) { setOutputAtIndex(out + c, acc[c]); }`;
        break;
      }
      case 'gbias':
        body = `
        let n = uniforms.n;
        let j = t % n;
        let i = (t / n) % n;
        let h = (t / (n * n)) % uniforms.heads;
        let e = t / (n * n * uniforms.heads);
        var sum = 0.0;
        for (var b = e * uniforms.per; b < (e + 1) * uniforms.per; b = b + 1) {
          sum = sum + vjpCoef(vjpPair(b, h, i, j), (b * uniforms.heads + h) * n + i).gs;
        }
        setOutputAtIndex(t, sum);`;
        break;
    }
    return `${helpers}
      fn main(t : i32) {
        if (t >= uniforms.threads) { return; }
        ${body}
      }`;
  }
}

interface Geometry {
  b: number;
  n: number;
  heads: number;
  d: number;
  /** Items per bias example (B / E; B for a bias shared by every item). */
  per: number;
  groups: number;
}

function geometry(q: TensorInfo, heads: number, bias: TensorInfo | undefined, mask: TensorInfo | undefined): Geometry {
  const [b, n, dim] = q.shape;
  const e = bias && bias.shape.length === 4 ? bias.shape[0] : 1;
  return { b, n, heads, d: dim / heads, per: b / e, groups: mask ? mask.shape[0] : 1 };
}

function run(backend: unknown, mode: Mode, g: Geometry, inputs: TensorInfo[], outputShape: number[], threads: number, bias: boolean, mask: boolean): TensorInfo {
  const program = new AttentionProgram(mode, outputShape, threads, g.d, bias, mask);
  return (backend as WebGPUBackend).runWebGPUProgram(program, inputs, 'float32', [
    { type: 'int32', data: [threads] },
    { type: 'int32', data: [g.n] },
    { type: 'int32', data: [g.heads] },
    { type: 'int32', data: [g.per] },
    { type: 'int32', data: [g.groups] },
  ]);
}

type KernelArgs = { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap };
const headsOf = (attrs?: tf.NamedAttrMap) => (attrs as unknown as Attrs).heads;
const optional = (inputs: tf.NamedTensorInfoMap) => [inputs.bias, inputs.mask].filter((t): t is TensorInfo => t != null);

function forwardKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { q, k, v, bias, mask } = inputs as Record<string, TensorInfo | undefined>;
  const g = geometry(q!, headsOf(attrs), bias, mask);
  return run(backend, 'forward', g, [q!, k!, v!, ...optional(inputs)], q!.shape, g.b * g.heads * g.n, bias != null, mask != null);
}

/** L_i and δ_i per row, [B·heads·N, 2]; the caller disposes it. */
function statsOf(backend: unknown, g: Geometry, inputs: tf.NamedTensorInfoMap): TensorInfo {
  const { dy, q, k, v, bias, mask } = inputs as Record<string, TensorInfo>;
  const rows = g.b * g.heads * g.n;
  return run(backend, 'stats', g, [dy, q, k, v, ...optional(inputs)], [rows, 2], rows, bias != null, mask != null);
}

function gradKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { dy, q, k, v, bias, mask } = inputs as Record<string, TensorInfo>;
  const g = geometry(q, headsOf(attrs), bias, mask);
  const stats = statsOf(backend, g, inputs);
  const rows = g.b * g.heads * g.n;
  const ins = [dy, q, k, v, stats, ...optional(inputs)];
  const out = (['dq', 'dk', 'dv'] as const).map((mode) => run(backend, mode, g, programInputs(mode, ins), q.shape, rows, bias != null, mask != null));
  (backend as WebGPUBackend).disposeData(stats.dataId);
  return out;
}

function biasGradKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo {
  const { dy, q, k, v, bias, mask } = inputs as Record<string, TensorInfo>;
  const g = geometry(q, headsOf(attrs), bias, mask);
  const stats = statsOf(backend, g, inputs);
  const out = run(backend, 'dbias', g, [dy, q, k, v, stats, ...optional(inputs)], bias.shape, tf.util.sizeFromShape(bias.shape), true, mask != null);
  (backend as WebGPUBackend).disposeData(stats.dataId);
  return out;
}

/** The second-order kernel: inputs dy, qkv, abc?, e?, bias?, mask?; outputs [gdy, gq, gk, gv] and gbias with a bias. */
function vjpKernel({ inputs, backend, attrs }: KernelArgs): TensorInfo[] {
  const { dy, qkv, abc, e, bias, mask } = inputs as Record<string, TensorInfo | undefined>;
  const g = geometry(dy!, headsOf(attrs), bias, mask);
  const rows = g.b * g.heads * g.n;
  const flags = [abc != null, e != null, bias != null, mask != null] as const;
  const base = [dy!, qkv!, ...(abc ? [abc] : []), ...(e ? [e] : [])];
  const tail = optional(inputs);
  const program = (mode: VjpMode, ins: TensorInfo[], shape: number[], threads: number) =>
    (backend as WebGPUBackend).runWebGPUProgram(new VjpProgram(mode, shape, threads, g.d, ...flags), ins, 'float32', [
      { type: 'int32', data: [threads] },
      { type: 'int32', data: [g.n] },
      { type: 'int32', data: [g.heads] },
      { type: 'int32', data: [g.per] },
      { type: 'int32', data: [g.groups] },
    ]);
  const stats = program('stats', [...base, ...tail], [rows, 4], rows);
  const ins = [...base, stats, ...tail];
  const out = (['gdy', 'gq', 'gk', 'gv'] as const).map((mode) => program(mode, ins, dy!.shape, rows));
  if (bias) out.push(program('gbias', ins, bias.shape, tf.util.sizeFromShape(bias.shape)));
  (backend as WebGPUBackend).disposeData(stats.dataId);
  return out;
}

/** Inputs of a kernel call, the optional ones only when present (the kernel name says which). */
function named(base: Record<string, tf.Tensor>, opts: AttentionCoreOptions): Record<string, tf.Tensor> {
  const r = { ...base };
  if (opts.bias) r.bias = opts.bias;
  if (opts.mask) r.mask = opts.mask;
  return r;
}

const attrsOf = (heads: number) => ({ heads }) as unknown as tf.NamedAttrMap;

/**
 * Gradients of the attention core's backward map (dy, q, k, v, bias) ↦ (dq, dk, dv[, dbias]) against
 * cotangents a (of dq), bk (of dk), c (of dv) and e (of dbias), any of them absent (zero), in tfjs ops,
 * per item and head (matrices N×d and N×N; G = dy, S the scores, P = softmax(S)):
 *
 *   dP = G Vᵀ,  δ = rowsum(P ⊙ dP),  dS = P ⊙ (dP − δ),  dq = dS K,  dk = dSᵀ Q,  dv = Pᵀ G,  dbias = Σ dS
 *
 * The cotangent reaching dS is H = a Kᵀ + Q bkᵀ + e, with γ = rowsum(H ⊙ P):
 *
 *   ∂/∂dP = P ⊙ (H − γ)                                 (=: gdP)
 *   ∂/∂P  = H ⊙ (dP − δ) − γ ⊙ dP + G cᵀ               (=: gP; the last term from dv = Pᵀ G)
 *   ∂/∂S  = P ⊙ (gP − rowsum(P ⊙ gP))                   (=: gS, through the softmax)
 *
 *   ∂/∂q = gS K + dS bk,   ∂/∂k = gSᵀ Q + dSᵀ a,   ∂/∂v = gdPᵀ G,   ∂/∂dy = gdP V + P c,   ∂/∂bias = Σ gS
 *
 * (sums over the items sharing a bias). Each is a function of tfjs ops, so third order exists too.
 */
export function attentionGradVjp(
  dy: tf.Tensor3D,
  q: tf.Tensor3D,
  k: tf.Tensor3D,
  v: tf.Tensor3D,
  heads: number,
  opts: AttentionCoreOptions,
  cot: { a?: tf.Tensor3D | null; bk?: tf.Tensor3D | null; c?: tf.Tensor3D | null; e?: tf.Tensor | null },
): { dy: tf.Tensor3D; q: tf.Tensor3D; k: tf.Tensor3D; v: tf.Tensor3D; bias: tf.Tensor | null } {
  const [b, n, dim] = q.shape;
  const d = dim / heads;
  const split = (t: tf.Tensor3D) => tf.reshape(tf.transpose(tf.reshape(t, [b, n, heads, d]), [0, 2, 1, 3]), [b * heads, n, d]) as tf.Tensor3D;
  const merge = (t: tf.Tensor3D) => tf.reshape(tf.transpose(tf.reshape(t, [b, heads, n, d]), [0, 2, 1, 3]), [b, n, dim]) as tf.Tensor3D;
  const rowsum = (t: tf.Tensor) => tf.sum(t, -1, true);
  const Q = split(q);
  const K = split(k);
  const V = split(v);
  const G = split(dy);
  const P = tf.softmax(attentionScores(Q, K, heads, opts)) as tf.Tensor3D;
  const dP = tf.matMul(G, V, false, true);
  const dPc = tf.sub(dP, rowsum(tf.mul(P, dP)));
  const dS = tf.mul(P, dPc) as tf.Tensor3D;
  const A = cot.a ? split(cot.a) : null;
  const Bk = cot.bk ? split(cot.bk) : null;
  const C = cot.c ? split(cot.c) : null;
  // H: the cotangent of dS, [B·heads, N, N].
  const terms: tf.Tensor[] = [];
  if (A) terms.push(tf.matMul(A, K, false, true));
  if (Bk) terms.push(tf.matMul(Q, Bk, false, true));
  if (cot.e) terms.push(biasBroadcast(cot.e, b, heads, n));
  const zero = tf.zerosLike(P);
  const H = terms.length ? terms.reduce((s, t) => tf.add(s, t)) : zero;
  const gamma = rowsum(tf.mul(H, P));
  const gdP = tf.mul(P, tf.sub(H, gamma)) as tf.Tensor3D;
  let gP = tf.sub(tf.mul(H, dPc), tf.mul(gamma, dP));
  if (C) gP = tf.add(gP, tf.matMul(G, C, false, true));
  const gS = tf.mul(P, tf.sub(gP, rowsum(tf.mul(P, gP)))) as tf.Tensor3D;
  let gq = tf.matMul(gS, K) as tf.Tensor3D;
  if (Bk) gq = tf.add(gq, tf.matMul(dS, Bk)) as tf.Tensor3D;
  let gk = tf.matMul(gS, Q, true, false) as tf.Tensor3D;
  if (A) gk = tf.add(gk, tf.matMul(dS, A, true, false)) as tf.Tensor3D;
  const gv = tf.matMul(gdP, G, true, false) as tf.Tensor3D;
  let gdy = tf.matMul(gdP, V) as tf.Tensor3D;
  if (C) gdy = tf.add(gdy, tf.matMul(P, C)) as tf.Tensor3D;
  return { dy: merge(gdy), q: merge(gq), k: merge(gk), v: merge(gv), bias: opts.bias ? biasReduce(gS, opts.bias.shape, b, heads, n) : null };
}

/** A bias-shaped tensor ([heads, N, N] or [E, heads, N, N]) repeated per item: [B·heads, N, N]. */
function biasBroadcast(e: tf.Tensor, b: number, heads: number, n: number): tf.Tensor3D {
  if (e.rank === 4) {
    const ex = e.shape[0];
    return tf.reshape(tf.tile(tf.reshape(e, [ex, 1, heads * n, n]), [1, b / ex, 1, 1]), [b * heads, n, n]);
  }
  return tf.reshape(tf.tile(tf.reshape(e, [1, heads * n, n]), [b, 1, 1]), [b * heads, n, n]);
}

/** Σ over the items sharing each bias element: [B·heads, N, N] → the bias's shape. */
function biasReduce(t: tf.Tensor3D, shape: number[], b: number, heads: number, n: number): tf.Tensor {
  if (shape.length === 4) {
    const ex = shape[0];
    return tf.reshape(tf.sum(tf.reshape(t, [ex, b / ex, heads * n, n]), 1), shape);
  }
  return tf.reshape(tf.sum(tf.reshape(t, [b, heads * n, n]), 0), shape);
}

function gradConfigs(): tf.GradConfig[] {
  const configs: tf.GradConfig[] = [];
  for (const [hasBias, hasMask] of VARIANTS) {
    const sfx = suffix(hasBias, hasMask);
    const names = ['q', 'k', 'v', ...(hasBias ? ['bias'] : []), ...(hasMask ? ['mask'] : [])];
    const unpack = (saved: tf.Tensor[], offset: number) => {
      const [q, k, v] = saved.slice(offset, offset + 3) as tf.Tensor3D[];
      const rest = saved.slice(offset + 3);
      const opts: AttentionCoreOptions = {};
      if (hasBias) opts.bias = rest.shift() as tf.Tensor3D | tf.Tensor4D;
      if (hasMask) opts.mask = rest.shift() as tf.Tensor3D;
      return { q, k, v, opts };
    };
    type Grads = Record<string, () => tf.Tensor>;
    // The mask is a constant (never on a gradient's path); a gradient for completeness.
    const maskGrad = (opts: AttentionCoreOptions): Grads => (hasMask ? { mask: () => tf.zerosLike(opts.mask!) } : {});
    configs.push({
      kernelName: ATTENTION + sfx,
      inputsToSave: names,
      gradFunc: (dy, saved, attrs) => {
        const { q, k, v, opts } = unpack(saved, 0);
        const heads = headsOf(attrs);
        // The three input gradients come from one kernel call (they share its statistics pass).
        const [dq, dk, dv] = tf.engine().runKernel(ATTENTION_GRAD + sfx, named({ dy: dy as tf.Tensor, q, k, v }, opts), attrsOf(heads)) as tf.Tensor[];
        const grads: Grads = {
          q: () => dq,
          k: () => dk,
          v: () => dv,
          ...(hasBias ? { bias: () => tf.engine().runKernel(ATTENTION_BIAS_GRAD + sfx, named({ dy: dy as tf.Tensor, q, k, v }, opts), attrsOf(heads)) as tf.Tensor } : {}),
          ...maskGrad(opts),
        };
        return grads;
      },
    });
    // Second order: the fused VJP kernels (q, k, v and the cotangents packed: eight storage buffers at most).
    const second = (saved: tf.Tensor[], attrs: tf.NamedAttrMap | undefined, cot: { abc?: tf.Tensor; e?: tf.Tensor }) => {
      const dy = saved[0] as tf.Tensor3D;
      const { q, k, v, opts } = unpack(saved, 1);
      const base: Record<string, tf.Tensor> = { dy, qkv: tf.concat([q, k, v], 2) };
      if (cot.abc) base.abc = cot.abc;
      if (cot.e) base.e = cot.e;
      const [gdy, gq, gk, gv, gbias] = tf.engine().runKernel(ATTENTION_VJP, named(base, opts), attrsOf(headsOf(attrs))) as tf.Tensor[];
      const grads: Grads = { dy: () => gdy, q: () => gq, k: () => gk, v: () => gv, ...(hasBias ? { bias: () => gbias } : {}), ...maskGrad(opts) };
      return grads;
    };
    configs.push({
      kernelName: ATTENTION_GRAD + sfx,
      inputsToSave: ['dy', ...names],
      gradFunc: (dys, saved, attrs) => {
        return second(saved, attrs, { abc: tf.concat(dys as tf.Tensor3D[], 2) });
      },
    });
    if (hasBias) {
      configs.push({
        kernelName: ATTENTION_BIAS_GRAD + sfx,
        inputsToSave: ['dy', ...names],
        gradFunc: (e, saved, attrs) => second(saved, attrs, { e: e as tf.Tensor }),
      });
    }
  }
  return configs;
}

/** Whether the fused kernels take this call: webgpu, float32, a head width that fits in registers. */
function usable(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: number, opts: AttentionCoreOptions): boolean {
  if (tf.getBackend() !== 'webgpu') return false;
  const ts: (tf.Tensor | undefined)[] = [q, k, v, opts.bias, opts.mask];
  if (!ts.every((t) => t == null || t.dtype === 'float32')) return false;
  const [b, n, dim] = q.shape;
  const d = dim / heads;
  return Number.isInteger(d) && d >= 1 && d <= MAX_HEAD_DIM && b * n > 0;
}

/** The attention core: fused kernels on webgpu where usable, the tfjs composition otherwise. */
export const webgpuAttentionCore: AttentionCore = (q, k, v, heads, opts) => {
  if (!usable(q, k, v, heads, opts)) return tfjsAttentionCore(q, k, v, heads, opts);
  const sfx = suffix(opts.bias != null, opts.mask != null);
  return tf.engine().runKernel(ATTENTION + sfx, named({ q, k, v }, opts), attrsOf(heads)) as tf.Tensor3D;
};

export function installFusedAttention(): Restore {
  const kernels: Record<string, unknown> = {};
  for (const [hasBias, hasMask] of VARIANTS) {
    const sfx = suffix(hasBias, hasMask);
    kernels[ATTENTION + sfx] = forwardKernel;
    kernels[ATTENTION_GRAD + sfx] = gradKernel;
    if (hasBias) kernels[ATTENTION_BIAS_GRAD + sfx] = biasGradKernel;
  }
  kernels[ATTENTION_VJP] = vjpKernel;
  return installWebGPUKernels(kernels, gradConfigs());
}
