import * as tf from '@tensorflow/tfjs-core';
import type { WebGPUBackend, WebGPUProgram } from '@tensorflow/tfjs-backend-webgpu';
import type { KernelFunc, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { SumSlicesProgram } from './convGemm.ts';

/**
 * Conv2DBackpropFilter for the webgpu backend (NHWC, dilation 1) as a split reduction.
 *
 *   dW[k, co] = Σ_m  im2col(x)[m, k] · dy[m, co],   k = (kh, kw, ci),  m = (b, oy, ox)
 *
 * Stock tfjs gives each of the K·CO filter elements one thread that walks all B·OH·OW positions
 * serially: 864 threads doing 65,536 steps each for the first layer of the discriminator, which made it
 * 600 ms of a 64 px batch-64 step on an H100. Here each thread accumulates a 4×4 block (4 filter rows ×
 * 4 output channels) over one slice of the (b, oy) rows, so the work spreads over S·(K/4)·(CO/4)
 * threads; a second dispatch sums the S partial results. No workgroup memory or barriers (SwiftShader
 * runs barrier-synchronised workgroups very slowly); neighbouring threads share x and read consecutive
 * dy, so loads coalesce and hit cache. Vectorised (vec4) when inC and outC are multiples of 4.
 */
interface Geometry {
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

/** Threads to aim for in the partial pass; SwiftShader (CPU) wants few, a discrete GPU many. */
let targetThreads = 1 << 17;
export function setBackpropFilterParallelism(threads: number): void {
  targetThreads = Math.max(1, Math.floor(threads));
}

/** At most this many slices: the second dispatch sums them serially per output element. */
const MAX_SPLITS = 256;

export function chooseSplits(g: Geometry): number {
  const k = g.kH * g.kW * g.inC;
  const blocks = Math.ceil(k / 4) * Math.ceil(g.outC / 4);
  const rows = g.batch * g.outH;
  return Math.max(1, Math.min(rows, MAX_SPLITS, Math.round(targetThreads / blocks)));
}

class BackpropFilterPartialProgram implements WebGPUProgram {
  variableNames = ['x', 'dy'];
  variableComponents?: number[];
  outputComponent?: number;
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number] = [64, 1, 1];
  uniforms =
    'inShape : vec4<i32>, outHW : vec2<i32>, kHW : vec2<i32>, strides : vec2<i32>, pads : vec2<i32>, outC : i32, kTotal : i32, kBlocks : i32, cBlocks : i32, rowsPerSplit : i32, totalRows : i32, threads : i32,';
  private readonly vec: boolean;

  constructor(splits: number, k: number, outC: number, vec: boolean, threads: number) {
    this.vec = vec;
    this.outputShape = [splits, k, outC];
    if (vec) {
      this.variableComponents = [4, 4];
      this.outputComponent = 4;
    }
    this.shaderKey = `fastBackpropFilterPartial_${vec ? 'v4' : 's'}`;
    this.dispatchLayout = { x: [0, 1, 2] };
    this.dispatch = [Math.ceil(threads / this.workgroupSize[0]), 1, 1];
  }

  getUserCode(): string {
    const common = `
        let cBlock = t % uniforms.cBlocks;
        let rest = t / uniforms.cBlocks;
        let kBlock = rest % uniforms.kBlocks;
        let split = rest / uniforms.kBlocks;
        let inH = uniforms.inShape.y;
        let inW = uniforms.inShape.z;
        let inC = uniforms.inShape.w;
        let outH = uniforms.outHW.x;
        let outW = uniforms.outHW.y;
        let rowStart = split * uniforms.rowsPerSplit;
        let rowEnd = min(rowStart + uniforms.rowsPerSplit, uniforms.totalRows);`;
    if (this.vec) {
      // k rows kBlock*4 .. +3 are 4 consecutive input channels at one (kh, kw): one vec4 of x.
      return `
      fn main(t : i32) {
        if (t >= uniforms.threads) { return; }
        ${common}
        let inC4 = inC / 4;
        let outC4 = uniforms.outC / 4;
        let ci4 = kBlock % inC4;
        let khw = kBlock / inC4;
        let kw = khw % uniforms.kHW.y;
        let kh = khw / uniforms.kHW.y;
        var acc0 = vec4<f32>(0.0);
        var acc1 = vec4<f32>(0.0);
        var acc2 = vec4<f32>(0.0);
        var acc3 = vec4<f32>(0.0);
        for (var row = rowStart; row < rowEnd; row = row + 1) {
          let b = row / outH;
          let oy = row - b * outH;
          let iy = oy * uniforms.strides.x + kh - uniforms.pads.x;
          if (iy < 0 || iy >= inH) { continue; }
          let xRow = (b * inH + iy) * inW;
          let dyRow = row * outW;
          for (var ox = 0; ox < outW; ox = ox + 1) {
            let ix = ox * uniforms.strides.y + kw - uniforms.pads.y;
            if (ix < 0 || ix >= inW) { continue; }
            let xv = x[(xRow + ix) * inC4 + ci4];
            let dv = dy[(dyRow + ox) * outC4 + cBlock];
            acc0 = fma(vec4<f32>(xv.x), dv, acc0);
            acc1 = fma(vec4<f32>(xv.y), dv, acc1);
            acc2 = fma(vec4<f32>(xv.z), dv, acc2);
            acc3 = fma(vec4<f32>(xv.w), dv, acc3);
          }
        }
        let k0 = kBlock * 4;
        let base = (split * uniforms.kTotal + k0) * outC4 + cBlock;
        setOutputAtIndex(base, acc0);
        setOutputAtIndex(base + outC4, acc1);
        setOutputAtIndex(base + 2 * outC4, acc2);
        setOutputAtIndex(base + 3 * outC4, acc3);
      }`;
    }
    return `
      fn main(t : i32) {
        if (t >= uniforms.threads) { return; }
        ${common}
        let outC = uniforms.outC;
        var kh : array<i32, 4>;
        var kw : array<i32, 4>;
        var ci : array<i32, 4>;
        var kOk : array<bool, 4>;
        for (var i = 0; i < 4; i = i + 1) {
          let k = kBlock * 4 + i;
          kOk[i] = k < uniforms.kTotal;
          let kk = min(k, uniforms.kTotal - 1);
          ci[i] = kk % inC;
          let khw = kk / inC;
          kw[i] = khw % uniforms.kHW.y;
          kh[i] = khw / uniforms.kHW.y;
        }
        let c0 = cBlock * 4;
        var cOk : array<bool, 4>;
        for (var j = 0; j < 4; j = j + 1) { cOk[j] = c0 + j < outC; }
        var acc : array<vec4<f32>, 4>;
        for (var i = 0; i < 4; i = i + 1) { acc[i] = vec4<f32>(0.0); }
        for (var row = rowStart; row < rowEnd; row = row + 1) {
          let b = row / outH;
          let oy = row - b * outH;
          let dyRow = row * outW;
          for (var ox = 0; ox < outW; ox = ox + 1) {
            let dOff = (dyRow + ox) * outC + c0;
            var dv = vec4<f32>(0.0);
            for (var j = 0; j < 4; j = j + 1) {
              if (cOk[j]) { dv[j] = dy[dOff + j]; }
            }
            for (var i = 0; i < 4; i = i + 1) {
              let iy = oy * uniforms.strides.x + kh[i] - uniforms.pads.x;
              let ix = ox * uniforms.strides.y + kw[i] - uniforms.pads.y;
              if (kOk[i] && iy >= 0 && iy < inH && ix >= 0 && ix < inW) {
                acc[i] = fma(vec4<f32>(x[((b * inH + iy) * inW + ix) * inC + ci[i]]), dv, acc[i]);
              }
            }
          }
        }
        for (var i = 0; i < 4; i = i + 1) {
          if (!kOk[i]) { continue; }
          let base = (split * uniforms.kTotal + kBlock * 4 + i) * outC + c0;
          for (var j = 0; j < 4; j = j + 1) {
            if (cOk[j]) { setOutputAtIndex(base + j, acc[i][j]); }
          }
        }
      }`;
  }
}

export function conv2dBackpropFilterNHWC(backend: WebGPUBackend, x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const g: Geometry = {
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
  const k = g.kH * g.kW * g.inC;
  const vec = g.inC % 4 === 0 && g.outC % 4 === 0;
  const splits = chooseSplits(g);
  const rows = g.batch * g.outH;
  const rowsPerSplit = Math.ceil(rows / splits);
  const used = Math.ceil(rows / rowsPerSplit);
  const kBlocks = Math.ceil(k / 4);
  const cBlocks = Math.ceil(g.outC / 4);
  const threads = used * kBlocks * cBlocks;
  const program = new BackpropFilterPartialProgram(used, k, g.outC, vec, threads);
  const uniforms = [
    { type: 'int32', data: [g.batch, g.inH, g.inW, g.inC] },
    { type: 'int32', data: [g.outH, g.outW] },
    { type: 'int32', data: [g.kH, g.kW] },
    { type: 'int32', data: [g.strideH, g.strideW] },
    { type: 'int32', data: [g.padTop, g.padLeft] },
    { type: 'int32', data: [g.outC] },
    { type: 'int32', data: [k] },
    { type: 'int32', data: [kBlocks] },
    { type: 'int32', data: [cBlocks] },
    { type: 'int32', data: [rowsPerSplit] },
    { type: 'int32', data: [rows] },
    { type: 'int32', data: [threads] },
  ];
  const filterShape = [g.kH, g.kW, g.inC, g.outC];
  if (used === 1) {
    program.outputShape = filterShape;
    return backend.runWebGPUProgram(program, [x, dy], 'float32', uniforms);
  }
  const partial = backend.runWebGPUProgram(program, [x, dy], 'float32', uniforms);
  const sum = new SumSlicesProgram(filterShape, vec);
  const out = backend.runWebGPUProgram(sum, [partial], 'float32', [
    { type: 'int32', data: [used] },
    { type: 'int32', data: [(k * g.outC) / (vec ? 4 : 1)] },
  ]);
  backend.disposeData(partial.dataId);
  return out;
}

/** Kernel function for tf.registerKernel; NCHW falls back to `fallback`. */
export function makeConv2dBackpropFilterKernel(fallback: KernelFunc): KernelFunc {
  return (args) => {
    const { inputs, backend, attrs } = args;
    const { x, dy } = inputs as { x: TensorInfo; dy: TensorInfo };
    const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as NamedAttrMap & {
      strides: [number, number] | number;
      pad: 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;
      dataFormat: 'NHWC' | 'NCHW';
      dimRoundingMode?: 'floor' | 'round' | 'ceil';
      filterShape: [number, number, number, number];
    };
    if (dataFormat === 'NCHW' || x.dtype !== 'float32') return fallback(args);
    const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, false, 'channelsLast');
    return conv2dBackpropFilterNHWC(backend as WebGPUBackend, x, dy, info);
  };
}
