import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { TensorInfo } from '@tensorflow/tfjs-core';

/**
 * Convolutions (NHWC, dilation 1, float32) on webgpu as implicit GEMMs with workgroup-shared tiles and
 * register blocking: the forward pass, the input gradient and the filter gradient are each one matrix
 * product C[M, N] = Σ_k A[m, k] · B[k, n] whose operands are read straight from the tensors (no im2col
 * buffer):
 *
 *   forward       y[m, n]  = Σ_k x(m, k) · W[k, n]           m = (b, oy, ox), n = co, k = (kh, kw, ci)
 *   input grad    dx[m, n] = Σ_k dy(m, k) · W(k, n)          m = (b, iy, ix) of one stride phase, n = ci,
 *                                                            k = (kh, kw, co) over the taps of that phase
 *   filter grad   dW[m, n] = Σ_r x(r, m) · dy[r, n]          m = (kh, kw, ci), n = co, r = (b, oy, ox),
 *                                                            r split into slices summed by a second pass
 *
 * A workgroup of wx × wy threads computes a BM × BN block of C (BM = wy·tm, BN = wx·tn): each thread
 * keeps tm × tn accumulators in registers (rows ty + i·wy, columns tx + j·wx, so neighbouring threads
 * store neighbouring outputs). Per step of BK along k the workgroup loads the A and B tiles into
 * workgroup memory, four consecutive elements per load (one vec4 load where the channel count is a
 * multiple of 4), then every thread runs BK rank-1 updates from it.
 *
 * The input gradient of a strided convolution is split by stride phase (iy mod s, ix mod s): within one
 * phase the filter taps that reach it are fixed (kh ≡ iy + pad (mod s)), so only those are summed, s²
 * fewer terms than walking all taps and skipping zeros. The phases are the z dimension of one dispatch.
 *
 * The forward epilogue adds the bias and applies the activation (FusedConv2D: linear, relu, relu6,
 * leakyrelu, elu, sigmoid). Accumulation is fp32 throughout.
 */

export type ConvMode = 'forward' | 'inputGrad' | 'filterGrad';

/** A tile configuration: wx × wy threads, each computing tm × tn outputs, bk deep per shared tile. */
export interface TileConfig {
  name: string;
  wx: number;
  wy: number;
  tm: number;
  tn: number;
  bk: number;
  /**
   * Subgroup variant (subgroupGemmCode): the workgroup is `lanes` invocations, the adapter's fixed
   * subgroup size (wx·wy = lanes), exchanging tile values by subgroupShuffle instead of workgroup memory.
   */
  lanes?: number;
}

/** The configurations the tuner chooses among (convTuner.ts). All keep bk, BM and BN multiples of 4. */
export const TILE_CONFIGS: readonly TileConfig[] = [
  { name: 't64x64', wx: 16, wy: 16, tm: 4, tn: 4, bk: 16 },
  { name: 't128x64', wx: 16, wy: 16, tm: 8, tn: 4, bk: 16 },
  { name: 't128x128', wx: 16, wy: 16, tm: 8, tn: 8, bk: 8 },
  { name: 't64x32', wx: 8, wy: 16, tm: 4, tn: 4, bk: 16 },
  { name: 't128x16', wx: 4, wy: 32, tm: 4, tn: 4, bk: 16 },
  { name: 't32x32', wx: 8, wy: 8, tm: 4, tn: 4, bk: 16 },
];

export function tileConfig(name: string): TileConfig {
  const c = TILE_CONFIGS.find((t) => t.name === name);
  if (!c) throw new Error(`unknown convolution tile configuration "${name}" (known: ${TILE_CONFIGS.map((t) => t.name).join(', ')})`);
  return c;
}

/** Names of the subgroup configurations (per-thread tile tm × tn); their lane grid follows the subgroup size. */
export const SUBGROUP_TILE_NAMES: readonly string[] = ['sg4x4', 'sg8x4'];

/**
 * The subgroup configurations for a fixed subgroup size (a power of two from 4 to 128; none otherwise):
 * lanes as a wx × wy grid (4: 2×2, 32: 8×4), each lane tm × tn outputs, bk = 4·max(wx, wy) so that every
 * lane's share of a k step is a whole number of vec4 loads.
 */
export function subgroupTileConfigs(lanes: number): TileConfig[] {
  if (!(Number.isInteger(lanes) && lanes >= 4 && lanes <= 128 && (lanes & (lanes - 1)) === 0)) return [];
  const wy = 1 << Math.floor(Math.log2(lanes) / 2);
  const wx = lanes / wy;
  const bk = 4 * Math.max(wx, wy);
  return [
    { name: 'sg4x4', wx, wy, tm: 4, tn: 4, bk, lanes },
    { name: 'sg8x4', wx, wy, tm: 8, tn: 4, bk, lanes },
  ];
}

/**
 * Tests only: make the subgroup programs take their in-shader fallback (each lane reads its own operands,
 * no shuffles), the path a workgroup that is not one whole subgroup takes. Set through a uniform, so the
 * same pipeline serves both.
 */
let subgroupFallbackForced = false;
export function forceSubgroupFallback(on: boolean): void {
  subgroupFallbackForced = on;
}

/** Shapes and strides of one convolution, as tfjs's Conv2DInfo (NHWC, dilation 1). */
export interface ConvGeometry {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  outH: number;
  outW: number;
  outC: number;
  kH: number;
  kW: number;
  strideH: number;
  strideW: number;
  padTop: number;
  padLeft: number;
}

export function geometryOf(info: tf.backend_util.Conv2DInfo): ConvGeometry {
  return {
    batch: info.batchSize,
    inH: info.inHeight,
    inW: info.inWidth,
    inC: info.inChannels,
    outH: info.outHeight,
    outW: info.outWidth,
    outC: info.outChannels,
    kH: info.filterHeight,
    kW: info.filterWidth,
    strideH: info.strideHeight,
    strideW: info.strideWidth,
    padTop: info.padInfo.top,
    padLeft: info.padInfo.left,
  };
}

/** The GEMM a convolution pass is: M × N outputs, K deep (per phase for the input gradient: the largest phase). */
export function gemmDims(mode: ConvMode, g: ConvGeometry): { m: number; n: number; k: number } {
  if (mode === 'forward') return { m: g.batch * g.outH * g.outW, n: g.outC, k: g.kH * g.kW * g.inC };
  if (mode === 'inputGrad') {
    return { m: g.batch * Math.ceil(g.inH / g.strideH) * Math.ceil(g.inW / g.strideW), n: g.inC, k: Math.ceil(g.kH / g.strideH) * Math.ceil(g.kW / g.strideW) * g.outC };
  }
  return { m: g.kH * g.kW * g.inC, n: g.outC, k: g.batch * g.outH * g.outW };
}

export type Activation = 'linear' | 'relu' | 'relu6' | 'leakyrelu' | 'elu' | 'sigmoid';
export const EPILOGUE_ACTIVATIONS: readonly Activation[] = ['linear', 'relu', 'relu6', 'leakyrelu', 'elu', 'sigmoid'];

function activationSnippet(a: Activation): string {
  switch (a) {
    case 'linear':
      return 'v';
    case 'relu':
      return 'max(v, 0.0)';
    case 'relu6':
      return 'clamp(v, 0.0, 6.0)';
    case 'leakyrelu':
      return 'select(uniforms.alpha * v, v, v >= 0.0)';
    case 'elu':
      return 'select(exp(v) - 1.0, v, v >= 0.0)';
    case 'sigmoid':
      return '1.0 / (1.0 + exp(-v))';
  }
}

export interface ConvProgramOptions {
  mode: ConvMode;
  tile: TileConfig;
  /** x bound as vec4 (inC % 4 == 0). */
  vecX: boolean;
  /** W and dy bound as vec4 (outC % 4 == 0). */
  vecOut: boolean;
  /** Forward: bias input present. */
  bias?: boolean;
  activation?: Activation;
  /** Filter gradient: partial sums per slice (output [splits, M, N]) instead of dW. */
  partial?: boolean;
}

/**
 * Uniforms (after tfjs's shapes): xs = (B, IH, IW, IC), ys = (B, OH, OW, OC), kf = (KH, KW, SH, SW),
 * pd = (padTop, padLeft, M, K), ex = forward/input grad: (N, 0, 0, f); filter grad: (N, rowsPerSlice, R, f)
 * (f = 1: a subgroup program takes its in-shader fallback, forceSubgroupFallback);
 * alpha = LeakyReLU slope.
 */
const UNIFORMS = 'xs : vec4<i32>, ys : vec4<i32>, kf : vec4<i32>, pd : vec4<i32>, ex : vec4<i32>, alpha : f32,';

export class ConvGemmProgram implements WebGPUProgram {
  variableNames: string[];
  variableComponents: number[];
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  uniforms = UNIFORMS;
  private readonly o: Required<ConvProgramOptions>;

  constructor(o: ConvProgramOptions, outputShape: number[], dispatch: [number, number, number]) {
    this.o = { bias: false, activation: 'linear', partial: false, ...o };
    const { mode, tile, vecX, vecOut } = this.o;
    if (mode === 'forward') {
      this.variableNames = this.o.bias ? ['x', 'W', 'bias'] : ['x', 'W'];
      this.variableComponents = this.o.bias ? [vecX ? 4 : 1, vecOut ? 4 : 1, 1] : [vecX ? 4 : 1, vecOut ? 4 : 1];
    } else if (mode === 'inputGrad') {
      this.variableNames = ['dy', 'W'];
      this.variableComponents = [vecOut ? 4 : 1, vecOut ? 4 : 1];
    } else {
      this.variableNames = ['x', 'dy'];
      this.variableComponents = [vecX ? 4 : 1, vecOut ? 4 : 1];
    }
    this.outputShape = outputShape;
    this.workgroupSize = [tile.wx, tile.wy, 1];
    this.dispatchLayout = { x: outputShape.map((_, i) => i) };
    this.dispatch = dispatch;
    this.shaderKey = `fedganConvGemm_${mode}_${tile.name}${tile.lanes ? `l${tile.lanes}` : ''}_${vecX ? 'x4' : 'x1'}${vecOut ? 'o4' : 'o1'}_${this.o.bias ? 'b' : ''}${this.o.activation}_${this.o.partial ? 'p' : ''}`;
  }

  getUserCode(): string {
    if (this.o.tile.lanes) return this.subgroupCode();
    const { mode, tile } = this.o;
    const { wx, wy, tm, tn, bk } = tile;
    const bm = wy * tm;
    const bn = wx * tn;
    const threads = wx * wy;
    // Which operand dimension is contiguous in memory: A along k (forward, input grad) or m (filter grad);
    // B along n (forward, filter grad) or k (input grad).
    const aAlongK = mode !== 'filterGrad';
    const bAlongN = mode !== 'inputGrad';
    const loadA = aAlongK
      ? `for (var v = tid; v < ${(bm * bk) / 4}; v = v + ${threads}) {
          let ml = v / ${bk / 4};
          let kl = (v % ${bk / 4}) * 4;
          let a = loadA4(m0 + ml, k0 + kl);
          fgA[kl * ${bm} + ml] = a.x;
          fgA[(kl + 1) * ${bm} + ml] = a.y;
          fgA[(kl + 2) * ${bm} + ml] = a.z;
          fgA[(kl + 3) * ${bm} + ml] = a.w;
        }`
      : `for (var v = tid; v < ${(bm * bk) / 4}; v = v + ${threads}) {
          let kl = v / ${bm / 4};
          let ml = (v % ${bm / 4}) * 4;
          let a = loadA4(m0 + ml, k0 + kl);
          let o = kl * ${bm} + ml;
          fgA[o] = a.x;
          fgA[o + 1] = a.y;
          fgA[o + 2] = a.z;
          fgA[o + 3] = a.w;
        }`;
    const loadB = bAlongN
      ? `for (var v = tid; v < ${(bn * bk) / 4}; v = v + ${threads}) {
          let kl = v / ${bn / 4};
          let nl = (v % ${bn / 4}) * 4;
          let b = loadB4(k0 + kl, n0 + nl);
          let o = kl * ${bn} + nl;
          fgB[o] = b.x;
          fgB[o + 1] = b.y;
          fgB[o + 2] = b.z;
          fgB[o + 3] = b.w;
        }`
      : `for (var v = tid; v < ${(bn * bk) / 4}; v = v + ${threads}) {
          let nl = v / ${bk / 4};
          let kl = (v % ${bk / 4}) * 4;
          let b = loadB4(k0 + kl, n0 + nl);
          fgB[kl * ${bn} + nl] = b.x;
          fgB[(kl + 1) * ${bn} + nl] = b.y;
          fgB[(kl + 2) * ${bn} + nl] = b.z;
          fgB[(kl + 3) * ${bn} + nl] = b.w;
        }`;
    const rows = Array.from({ length: tm }, (_, i) => i);
    const cols = Array.from({ length: tn }, (_, j) => j);
    const accDecl = rows.flatMap((i) => cols.map((j) => `var c${i}_${j} = 0.0;`)).join(' ');
    const inner = [
      ...rows.map((i) => `let a${i} = fgA[kk * ${bm} + ty + ${i * wy}];`),
      ...cols.map((j) => `let b${j} = fgB[kk * ${bn} + tx + ${j * wx}];`),
      ...rows.flatMap((i) => cols.map((j) => `c${i}_${j} = fma(a${i}, b${j}, c${i}_${j});`)),
    ].join('\n            ');
    const stores = rows
      .flatMap((i) => cols.map((j) => `store(m0 + ty + ${i * wy}, n0 + tx + ${j * wx}, c${i}_${j});`))
      .join('\n        ');
    const { setup, loop } = this.loopRange(bk);
    return `
      var<workgroup> fgA : array<f32, ${bm * bk}>;
      var<workgroup> fgB : array<f32, ${bn * bk}>;
      var<workgroup> fgRange : vec2<i32>;
      ${this.modeCode()}
      fn main(_i : i32) {
        let tx = i32(localId.x);
        let ty = i32(localId.y);
        let tid = ty * ${wx} + tx;
        // x runs over N tiles, then (when M has more than 65,535 tiles) over groups of numWorkgroups.y M tiles.
        let nTiles = (uniforms.ex.x + ${bn - 1}) / ${bn};
        let n0 = (i32(workgroupId.x) % nTiles) * ${bn};
        let m0 = ((i32(workgroupId.x) / nTiles) * i32(numWorkgroups.y) + i32(workgroupId.y)) * ${bm};
        ${setup}
        ${accDecl}
        ${loop} {
          ${loadA}
          ${loadB}
          workgroupBarrier();
          for (var kk = 0; kk < ${bk}; kk = kk + 1) {
            ${inner}
          }
          workgroupBarrier();
        }
        ${stores}
      }`;
  }

  /**
   * The subgroup variant (`enable subgroups;`, hoisted to the top of the module by webgpuDevice.ts): one
   * workgroup of `lanes` invocations, the adapter's fixed subgroup size, computes a BM × BN block
   * (BM = wy·tm, BN = wx·tn) with tm × tn fp32 accumulators per lane. Lanes are numbered by their rank in
   * the subgroup (subgroupExclusiveAdd(1), which is subgroup_invocation_id when all lanes are active), so
   * nothing depends on how local invocation indices map to subgroup lanes; lane = ly·wx + lx.
   *
   * Per step of bk along k, the wx lanes of a row group split the A tile's k range (bk/wx each) and the wy
   * lanes of a column group split the B tile's (bk/wy each), loading four consecutive elements per load as
   * the shared-memory kernels do. Then for each k every lane takes its tm A values and tn B values from the
   * lane that loaded them (subgroupShuffle: the register is fixed per k, the source lane per lane), and
   * runs a rank-1 update: no workgroup memory, no barriers.
   *
   * If the workgroup is not one whole subgroup (subgroupAdd(1) != lanes: WebGPU does not promise it, even
   * with a fixed subgroup size), every lane reads its own operands instead (same outputs, no exchange).
   */
  private subgroupCode(): string {
    const { mode, tile } = this.o;
    const { wx, wy, tm, tn, bk } = tile;
    const lanes = tile.lanes!;
    const bm = wy * tm;
    const bn = wx * tn;
    const kqA = bk / wx;
    const kqB = bk / wy;
    const aAlongK = mode !== 'filterGrad';
    const bAlongN = mode !== 'inputGrad';
    const xyzw = 'xyzw';
    const rows = Array.from({ length: tm }, (_, i) => i);
    const cols = Array.from({ length: tn }, (_, j) => j);
    // Block row of a lane's output i, block column of its output j: strided where the operand is read
    // along k, contiguous (whole vec4 loads) where it is read along m or n.
    const rowOf = (i: number) => (aAlongK ? `ly + ${i * wy}` : `ly * ${tm} + ${i}`);
    const colOf = (j: number) => (bAlongN ? `lx * ${tn} + ${j}` : `lx + ${j * wx}`);
    const loadsA = aAlongK
      ? rows.flatMap((i) => Array.from({ length: kqA / 4 }, (_, p) => `let va${i}_${p} = loadA4(m0 + ${rowOf(i)}, k0 + lx * ${kqA} + ${4 * p});`))
      : Array.from({ length: tm / 4 }, (_, p) => Array.from({ length: kqA }, (_, q) => `let va${p}_${q} = loadA4(m0 + ly * ${tm} + ${4 * p}, k0 + lx * ${kqA} + ${q});`)).flat();
    const regA = (i: number, q: number) => (aAlongK ? `va${i}_${q >> 2}.${xyzw[q & 3]}` : `va${i >> 2}_${q}.${xyzw[i & 3]}`);
    const loadsB = bAlongN
      ? Array.from({ length: kqB }, (_, q) => Array.from({ length: tn / 4 }, (_, p) => `let vb${p}_${q} = loadB4(k0 + ly * ${kqB} + ${q}, n0 + lx * ${tn} + ${4 * p});`)).flat()
      : cols.flatMap((j) => Array.from({ length: kqB / 4 }, (_, p) => `let vb${j}_${p} = loadB4(k0 + ly * ${kqB} + ${4 * p}, n0 + ${colOf(j)});`));
    const regB = (j: number, q: number) => (bAlongN ? `vb${j >> 2}_${q}.${xyzw[j & 3]}` : `vb${j}_${q >> 2}.${xyzw[q & 3]}`);
    const fmas = rows.flatMap((i) => cols.map((j) => `c${i}_${j} = fma(a${i}, b${j}, c${i}_${j});`)).join(' ');
    const exchange = Array.from({ length: bk }, (_, kk) =>
      [
        '{',
        ...rows.map((i) => `let a${i} = subgroupShuffle(${regA(i, kk % kqA)}, sa${Math.floor(kk / kqA)});`),
        ...cols.map((j) => `let b${j} = subgroupShuffle(${regB(j, kk % kqB)}, sb${Math.floor(kk / kqB)});`),
        fmas,
        '}',
      ].join('\n            '),
    ).join('\n          ');
    const sources = [
      ...Array.from({ length: wx }, (_, c) => `let sa${c} = u32(ly * ${wx} + ${c});`),
      ...Array.from({ length: wy }, (_, d) => `let sb${d} = u32(${d * wx} + lx);`),
    ].join('\n          ');
    const accDecl = rows.flatMap((i) => cols.map((j) => `var c${i}_${j} = 0.0;`)).join(' ');
    const stores = rows.flatMap((i) => cols.map((j) => `store(m0 + ${rowOf(i)}, n0 + ${colOf(j)}, c${i}_${j});`)).join('\n        ');
    const aElem = aAlongK ? 'let v = loadA4(m, k - k % 4); return v[k % 4];' : 'let v = loadA4(m - m % 4, k); return v[m % 4];';
    const bElem = bAlongN ? 'let v = loadB4(k, n - n % 4); return v[n % 4];' : 'let v = loadB4(k - k % 4, n); return v[k % 4];';
    const { setup, loop } = this.loopRange(bk);
    return `
      enable subgroups;
      var<workgroup> fgRange : vec2<i32>;
      ${this.modeCode()}
      fn aElem(m : i32, k : i32) -> f32 { ${aElem} }
      fn bElem(k : i32, n : i32) -> f32 { ${bElem} }
      fn main(_i : i32) {
        let tid = i32(localIndex);
        let nTiles = (uniforms.ex.x + ${bn - 1}) / ${bn};
        let n0 = (i32(workgroupId.x) % nTiles) * ${bn};
        let m0 = ((i32(workgroupId.x) / nTiles) * i32(numWorkgroups.y) + i32(workgroupId.y)) * ${bm};
        ${setup}
        ${accDecl}
        var lx = tid % ${wx};
        var ly = tid / ${wx};
        let whole = subgroupAdd(1u) == ${lanes}u;
        let lane = i32(subgroupExclusiveAdd(1u));
        if (whole && uniforms.ex.w == 0) {
          lx = lane % ${wx};
          ly = lane / ${wx};
          ${sources}
          ${loop} {
            ${loadsA.join('\n            ')}
            ${loadsB.join('\n            ')}
          ${exchange}
          }
        } else {
          ${loop} {
            for (var kk = 0; kk < ${bk}; kk = kk + 1) {
              let k = k0 + kk;
              ${rows.map((i) => `let a${i} = aElem(m0 + ${rowOf(i)}, k);`).join(' ')}
              ${cols.map((j) => `let b${j} = bElem(k, n0 + ${colOf(j)});`).join(' ')}
              ${fmas}
            }
          }
        }
        ${stores}
      }`;
  }

  /**
   * The k range of this workgroup. Its bounds must be uniform across the workgroup for the barriers:
   * values derived from workgroupId (a private variable in tfjs's prelude) are not, to WGSL's analysis,
   * so per-phase and per-slice bounds pass through workgroupUniformLoad.
   */
  private loopRange(bk: number): { setup: string; loop: string } {
    if (this.o.mode === 'forward') return { setup: 'phaseSetup();', loop: `for (var k0 = 0; k0 < uniforms.pd.w; k0 = k0 + ${bk})` };
    if (this.o.mode === 'inputGrad') {
      return {
        setup: `phaseSetup();
        if (tid == 0) { fgRange = vec2<i32>(0, gK); }
        let range = workgroupUniformLoad(&fgRange);`,
        loop: `for (var k0 = range.x; k0 < range.y; k0 = k0 + ${bk})`,
      };
    }
    return {
      setup: `phaseSetup();
        if (tid == 0) { fgRange = vec2<i32>(gKStart, gKEnd); }
        let range = workgroupUniformLoad(&fgRange);`,
      loop: `for (var k0 = range.x; k0 < range.y; k0 = k0 + ${bk})`,
    };
  }

  private modeCode(): string {
    const { mode, vecX, vecOut } = this.o;
    const zero = 'vec4<f32>(0.0)';
    if (mode === 'forward') {
      const xAt = `
      fn xAt(b : i32, oy : i32, ox : i32, k : i32) -> f32 {
        if (k >= uniforms.pd.w) { return 0.0; }
        let cin = uniforms.xs.w;
        let ci = k % cin;
        let t = k / cin;
        let kw = t % uniforms.kf.y;
        let kh = t / uniforms.kf.y;
        let iy = oy * uniforms.kf.z + kh - uniforms.pd.x;
        let ix = ox * uniforms.kf.w + kw - uniforms.pd.y;
        if (iy < 0 || iy >= uniforms.xs.y || ix < 0 || ix >= uniforms.xs.z) { return 0.0; }
        return x[((b * uniforms.xs.y + iy) * uniforms.xs.z + ix) * cin + ci];
      }`;
      const loadA = vecX
        ? `
      fn loadA4(m : i32, k : i32) -> vec4<f32> {
        if (m >= uniforms.pd.z || k >= uniforms.pd.w) { return ${zero}; }
        let ox = m % uniforms.ys.z;
        let t = m / uniforms.ys.z;
        let oy = t % uniforms.ys.y;
        let b = t / uniforms.ys.y;
        let cin = uniforms.xs.w;
        let ci = k % cin;
        let t2 = k / cin;
        let kw = t2 % uniforms.kf.y;
        let kh = t2 / uniforms.kf.y;
        let iy = oy * uniforms.kf.z + kh - uniforms.pd.x;
        let ix = ox * uniforms.kf.w + kw - uniforms.pd.y;
        if (iy < 0 || iy >= uniforms.xs.y || ix < 0 || ix >= uniforms.xs.z) { return ${zero}; }
        return x[(((b * uniforms.xs.y + iy) * uniforms.xs.z + ix) * cin + ci) / 4];
      }`
        : `${xAt}
      fn loadA4(m : i32, k : i32) -> vec4<f32> {
        if (m >= uniforms.pd.z) { return ${zero}; }
        let ox = m % uniforms.ys.z;
        let t = m / uniforms.ys.z;
        let oy = t % uniforms.ys.y;
        let b = t / uniforms.ys.y;
        return vec4<f32>(xAt(b, oy, ox, k), xAt(b, oy, ox, k + 1), xAt(b, oy, ox, k + 2), xAt(b, oy, ox, k + 3));
      }`;
      const loadB = vecOut
        ? `
      fn loadB4(k : i32, n : i32) -> vec4<f32> {
        if (k >= uniforms.pd.w || n >= uniforms.ex.x) { return ${zero}; }
        return W[(k * uniforms.ex.x + n) / 4];
      }`
        : `
      fn wAt(k : i32, n : i32) -> f32 {
        if (n >= uniforms.ex.x) { return 0.0; }
        return W[k * uniforms.ex.x + n];
      }
      fn loadB4(k : i32, n : i32) -> vec4<f32> {
        if (k >= uniforms.pd.w) { return ${zero}; }
        return vec4<f32>(wAt(k, n), wAt(k, n + 1), wAt(k, n + 2), wAt(k, n + 3));
      }`;
      return `
      fn phaseSetup() {}
      ${loadA}
      ${loadB}
      fn store(m : i32, n : i32, acc : f32) {
        if (m >= uniforms.pd.z || n >= uniforms.ex.x) { return; }
        var v = acc;
        ${this.o.bias ? 'v = v + bias[n];' : ''}
        v = ${activationSnippet(this.o.activation)};
        result[m * uniforms.ex.x + n] = v;
      }`;
    }
    if (mode === 'inputGrad') {
      // Phase (py, px) = workgroupId.z; taps kh = rh + jh·SH (jh < nKh), kw likewise; rows (b, qy, qx), iy = qy·SH + py.
      const tap = `
      fn tap(k : i32) -> vec3<i32> {
        let co = k % uniforms.ys.w;
        let j = k / uniforms.ys.w;
        let kw = gRw + (j % gNkw) * uniforms.kf.w;
        let kh = gRh + (j / gNkw) * uniforms.kf.z;
        return vec3<i32>(kh, kw, co);
      }`;
      const dyAt = vecOut
        ? ''
        : `
      fn dyAt(b : i32, iy : i32, ix : i32, k : i32) -> f32 {
        if (k >= gK) { return 0.0; }
        let t = tap(k);
        let oy = (iy + uniforms.pd.x - t.x) / uniforms.kf.z;
        let ox = (ix + uniforms.pd.y - t.y) / uniforms.kf.w;
        if (oy < 0 || oy >= uniforms.ys.y || ox < 0 || ox >= uniforms.ys.z) { return 0.0; }
        return dy[((b * uniforms.ys.y + oy) * uniforms.ys.z + ox) * uniforms.ys.w + t.z];
      }
      fn wAt(k : i32, n : i32) -> f32 {
        if (k >= gK || n >= uniforms.xs.w) { return 0.0; }
        let t = tap(k);
        return W[((t.x * uniforms.kf.y + t.y) * uniforms.xs.w + n) * uniforms.ys.w + t.z];
      }`;
      const loadA = vecOut
        ? `
      fn loadA4(m : i32, k : i32) -> vec4<f32> {
        if (m >= gM || k >= gK) { return ${zero}; }
        let qx = m % gQw;
        let t = m / gQw;
        let qy = t % gQh;
        let b = t / gQh;
        let iy = qy * uniforms.kf.z + gPy;
        let ix = qx * uniforms.kf.w + gPx;
        let tp = tap(k);
        let oy = (iy + uniforms.pd.x - tp.x) / uniforms.kf.z;
        let ox = (ix + uniforms.pd.y - tp.y) / uniforms.kf.w;
        if (oy < 0 || oy >= uniforms.ys.y || ox < 0 || ox >= uniforms.ys.z) { return ${zero}; }
        return dy[(((b * uniforms.ys.y + oy) * uniforms.ys.z + ox) * uniforms.ys.w + tp.z) / 4];
      }`
        : `
      fn loadA4(m : i32, k : i32) -> vec4<f32> {
        if (m >= gM) { return ${zero}; }
        let qx = m % gQw;
        let t = m / gQw;
        let qy = t % gQh;
        let b = t / gQh;
        let iy = qy * uniforms.kf.z + gPy;
        let ix = qx * uniforms.kf.w + gPx;
        return vec4<f32>(dyAt(b, iy, ix, k), dyAt(b, iy, ix, k + 1), dyAt(b, iy, ix, k + 2), dyAt(b, iy, ix, k + 3));
      }`;
      const loadB = vecOut
        ? `
      fn loadB4(k : i32, n : i32) -> vec4<f32> {
        if (k >= gK || n >= uniforms.xs.w) { return ${zero}; }
        let t = tap(k);
        return W[(((t.x * uniforms.kf.y + t.y) * uniforms.xs.w + n) * uniforms.ys.w + t.z) / 4];
      }`
        : `
      fn loadB4(k : i32, n : i32) -> vec4<f32> {
        return vec4<f32>(wAt(k, n), wAt(k + 1, n), wAt(k + 2, n), wAt(k + 3, n));
      }`;
      return `
      var<private> gPy : i32;
      var<private> gPx : i32;
      var<private> gRh : i32;
      var<private> gRw : i32;
      var<private> gNkw : i32;
      var<private> gQh : i32;
      var<private> gQw : i32;
      var<private> gM : i32;
      var<private> gK : i32;
      fn phaseSetup() {
        let sh = uniforms.kf.z;
        let sw = uniforms.kf.w;
        let phase = i32(workgroupId.z);
        gPy = phase / sw;
        gPx = phase % sw;
        gRh = (gPy + uniforms.pd.x) % sh;
        gRw = (gPx + uniforms.pd.y) % sw;
        let nKh = max(0, (uniforms.kf.x - gRh + sh - 1) / sh);
        gNkw = max(0, (uniforms.kf.y - gRw + sw - 1) / sw);
        gQh = max(0, (uniforms.xs.y - gPy + sh - 1) / sh);
        gQw = max(0, (uniforms.xs.z - gPx + sw - 1) / sw);
        gM = uniforms.xs.x * gQh * gQw;
        gK = nKh * gNkw * uniforms.ys.w;
      }
      ${tap}
      ${dyAt}
      ${loadA}
      ${loadB}
      fn store(m : i32, n : i32, acc : f32) {
        if (m >= gM || n >= uniforms.xs.w) { return; }
        let qx = m % gQw;
        let t = m / gQw;
        let qy = t % gQh;
        let b = t / gQh;
        let iy = qy * uniforms.kf.z + gPy;
        let ix = qx * uniforms.kf.w + gPx;
        result[((b * uniforms.xs.y + iy) * uniforms.xs.z + ix) * uniforms.xs.w + n] = acc;
      }`;
    }
    // Filter gradient: rows m = (kh, kw, ci), reduction r = (b, oy, ox) over this slice.
    const xAt = `
      fn xAt(m : i32, r : i32) -> f32 {
        if (m >= uniforms.pd.z) { return 0.0; }
        let cin = uniforms.xs.w;
        let ci = m % cin;
        let t = m / cin;
        let kw = t % uniforms.kf.y;
        let kh = t / uniforms.kf.y;
        let ox = r % uniforms.ys.z;
        let t2 = r / uniforms.ys.z;
        let oy = t2 % uniforms.ys.y;
        let b = t2 / uniforms.ys.y;
        let iy = oy * uniforms.kf.z + kh - uniforms.pd.x;
        let ix = ox * uniforms.kf.w + kw - uniforms.pd.y;
        if (iy < 0 || iy >= uniforms.xs.y || ix < 0 || ix >= uniforms.xs.z) { return 0.0; }
        return x[((b * uniforms.xs.y + iy) * uniforms.xs.z + ix) * cin + ci];
      }`;
    const loadA = vecX
      ? `
      fn loadA4(m : i32, r : i32) -> vec4<f32> {
        if (m >= uniforms.pd.z || r >= gKEnd) { return ${zero}; }
        let cin = uniforms.xs.w;
        let ci = m % cin;
        let t = m / cin;
        let kw = t % uniforms.kf.y;
        let kh = t / uniforms.kf.y;
        let ox = r % uniforms.ys.z;
        let t2 = r / uniforms.ys.z;
        let oy = t2 % uniforms.ys.y;
        let b = t2 / uniforms.ys.y;
        let iy = oy * uniforms.kf.z + kh - uniforms.pd.x;
        let ix = ox * uniforms.kf.w + kw - uniforms.pd.y;
        if (iy < 0 || iy >= uniforms.xs.y || ix < 0 || ix >= uniforms.xs.z) { return ${zero}; }
        return x[(((b * uniforms.xs.y + iy) * uniforms.xs.z + ix) * cin + ci) / 4];
      }`
      : `${xAt}
      fn loadA4(m : i32, r : i32) -> vec4<f32> {
        if (r >= gKEnd) { return ${zero}; }
        return vec4<f32>(xAt(m, r), xAt(m + 1, r), xAt(m + 2, r), xAt(m + 3, r));
      }`;
    const loadB = vecOut
      ? `
      fn loadB4(r : i32, n : i32) -> vec4<f32> {
        if (r >= gKEnd || n >= uniforms.ex.x) { return ${zero}; }
        return dy[(r * uniforms.ex.x + n) / 4];
      }`
      : `
      fn dyAt(r : i32, n : i32) -> f32 {
        if (n >= uniforms.ex.x) { return 0.0; }
        return dy[r * uniforms.ex.x + n];
      }
      fn loadB4(r : i32, n : i32) -> vec4<f32> {
        if (r >= gKEnd) { return ${zero}; }
        return vec4<f32>(dyAt(r, n), dyAt(r, n + 1), dyAt(r, n + 2), dyAt(r, n + 3));
      }`;
    return `
      var<private> gKStart : i32;
      var<private> gKEnd : i32;
      var<private> gSlice : i32;
      fn phaseSetup() {
        gSlice = i32(workgroupId.z);
        gKStart = gSlice * uniforms.ex.y;
        gKEnd = min(gKStart + uniforms.ex.y, uniforms.ex.z);
      }
      ${loadA}
      ${loadB}
      fn store(m : i32, n : i32, acc : f32) {
        if (m >= uniforms.pd.z || n >= uniforms.ex.x) { return; }
        result[(gSlice * uniforms.pd.z + m) * uniforms.ex.x + n] = acc;
      }`;
  }
}

/** One class per pass, so GPU timelines (pipelines are labelled by class name) tell the passes apart. */
export class ConvForwardProgram extends ConvGemmProgram {}
export class ConvInputGradProgram extends ConvGemmProgram {}
export class ConvFilterGradProgram extends ConvGemmProgram {}

/** out[i] = Σ_s partial[s, i]: the second pass of the filter gradient when the reduction is split. */
export class SumSlicesProgram implements WebGPUProgram {
  variableNames = ['partial'];
  variableComponents?: number[];
  outputComponent?: number;
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  uniforms = 'splits : i32, stride : i32,';
  size = true;

  constructor(outShape: number[], vec: boolean) {
    this.outputShape = outShape;
    if (vec) {
      this.variableComponents = [4];
      this.outputComponent = 4;
    }
    this.shaderKey = `fedganSumSlices_${vec ? 'v4' : 's'}`;
    this.dispatchLayout = { x: outShape.map((_, i) => i) };
    const n = tf.util.sizeFromShape(outShape) / (vec ? 4 : 1);
    this.dispatch = [Math.ceil(n / this.workgroupSize[0]), 1, 1];
  }

  getUserCode(): string {
    const t = this.outputComponent === 4 ? 'vec4<f32>' : 'f32';
    return `
      fn main(i : i32) {
        if (i >= uniforms.size) { return; }
        var s = ${t}(0.0);
        for (var j = 0; j < uniforms.splits; j = j + 1) {
          s = s + partial[j * uniforms.stride + i];
        }
        setOutputAtIndex(i, s);
      }`;
  }
}

/** Workgroups for an M × N GEMM: x = N tiles (times a fold when M has more tiles than a dimension may hold), y = M tiles. */
export function gemmDispatch(m: number, n: number, tile: TileConfig, z: number): [number, number, number] {
  const nTiles = Math.ceil(n / (tile.wx * tile.tn));
  const mTiles = Math.ceil(m / (tile.wy * tile.tm));
  const fold = Math.ceil(mTiles / 65535);
  return [nTiles * fold, Math.ceil(mTiles / fold), z];
}

/** ex.w: 1 makes a subgroup program take its in-shader fallback (forceSubgroupFallback, tests). */
const fallbackFlag = (tile: TileConfig) => (tile.lanes && subgroupFallbackForced ? 1 : 0);

function geometryUniforms(g: ConvGeometry, pdZ: number, pdW: number, ex: [number, number, number, number], alpha = 0) {
  return [
    { type: 'int32', data: [g.batch, g.inH, g.inW, g.inC] },
    { type: 'int32', data: [g.batch, g.outH, g.outW, g.outC] },
    { type: 'int32', data: [g.kH, g.kW, g.strideH, g.strideW] },
    { type: 'int32', data: [g.padTop, g.padLeft, pdZ, pdW] },
    { type: 'int32', data: ex },
    { type: 'float32', data: [alpha] },
  ];
}

/** y = act(conv(x, W) + bias): one dispatch. */
export function convForward(backend: WebGPUBackend, x: TensorInfo, w: TensorInfo, bias: TensorInfo | null, g: ConvGeometry, tile: TileConfig, activation: Activation = 'linear', alpha = 0): TensorInfo {
  const { m, n, k } = gemmDims('forward', g);
  const program = new ConvForwardProgram(
    { mode: 'forward', tile, vecX: g.inC % 4 === 0, vecOut: g.outC % 4 === 0, bias: bias != null, activation },
    [g.batch, g.outH, g.outW, g.outC],
    gemmDispatch(m, n, tile, 1),
  );
  return backend.runWebGPUProgram(program, bias ? [x, w, bias] : [x, w], 'float32', geometryUniforms(g, m, k, [n, 0, 0, fallbackFlag(tile)], alpha));
}

/** dx of a convolution from dy and W: one dispatch, the stride phases in its z dimension. */
export function convInputGrad(backend: WebGPUBackend, dy: TensorInfo, w: TensorInfo, g: ConvGeometry, tile: TileConfig): TensorInfo {
  const { m, n } = gemmDims('inputGrad', g);
  const vec = g.outC % 4 === 0;
  const program = new ConvInputGradProgram({ mode: 'inputGrad', tile, vecX: false, vecOut: vec }, [g.batch, g.inH, g.inW, g.inC], gemmDispatch(m, n, tile, g.strideH * g.strideW));
  return backend.runWebGPUProgram(program, [dy, w], 'float32', geometryUniforms(g, 0, 0, [n, 0, 0, fallbackFlag(tile)]));
}

/** Partial sums kept at most: 8 M floats (32 MB). */
const MAX_PARTIAL = 8 << 20;

/**
 * Slices of the filter gradient's reduction: enough workgroups to fill `targetWorkgroups`, at most 256
 * slices, each at least 4 tiles deep, and at most MAX_PARTIAL partial sums in all.
 */
export function chooseSlices(g: ConvGeometry, tile: TileConfig, targetWorkgroups: number): { slices: number; rowsPerSlice: number } {
  const { m, n, k: r } = gemmDims('filterGrad', g);
  const tiles = Math.ceil(m / (tile.wy * tile.tm)) * Math.ceil(n / (tile.wx * tile.tn));
  const maxSlices = Math.max(1, Math.min(256, Math.ceil(r / (tile.bk * 4)), Math.floor(MAX_PARTIAL / (m * n))));
  const want = Math.max(1, Math.min(maxSlices, Math.round(targetWorkgroups / tiles)));
  const rowsPerSlice = Math.ceil(r / want / tile.bk) * tile.bk;
  return { slices: Math.ceil(r / rowsPerSlice), rowsPerSlice };
}

/** dW of a convolution from x and dy: one dispatch, plus one summing the slices when there are several. */
export function convFilterGrad(backend: WebGPUBackend, x: TensorInfo, dy: TensorInfo, g: ConvGeometry, tile: TileConfig, targetWorkgroups: number): TensorInfo {
  const { m, n, k: r } = gemmDims('filterGrad', g);
  const { slices, rowsPerSlice } = chooseSlices(g, tile, targetWorkgroups);
  const filterShape = [g.kH, g.kW, g.inC, g.outC];
  const program = new ConvFilterGradProgram(
    { mode: 'filterGrad', tile, vecX: g.inC % 4 === 0, vecOut: g.outC % 4 === 0, partial: slices > 1 },
    slices > 1 ? [slices, m, n] : filterShape,
    gemmDispatch(m, n, tile, slices),
  );
  const uniforms = geometryUniforms(g, m, 0, [n, rowsPerSlice, r, fallbackFlag(tile)]);
  if (slices === 1) return backend.runWebGPUProgram(program, [x, dy], 'float32', uniforms);
  const partial = backend.runWebGPUProgram(program, [x, dy], 'float32', uniforms);
  const vec = (m * n) % 4 === 0;
  const out = backend.runWebGPUProgram(new SumSlicesProgram(filterShape, vec), [partial], 'float32', [
    { type: 'int32', data: [slices] },
    { type: 'int32', data: [(m * n) / (vec ? 4 : 1)] },
  ]);
  backend.disposeData(partial.dataId);
  return out;
}
