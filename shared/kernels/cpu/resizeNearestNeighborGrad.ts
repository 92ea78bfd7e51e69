/**
 * A correct ResizeNearestNeighborGrad for the cpu backend.
 *
 * tfjs-backend-cpu 4.22's kernel offsets `dy` with the *images'* batch stride (and ignores
 * halfPixelCenters), so for batch > 1 every sample after the first reads the wrong gradient rows:
 * the generator's upsampling layers get wrong gradients on CPU. This kernel is the exact adjoint of the
 * forward ResizeNearestNeighbor: each output pixel's gradient is added to the input pixel it copied.
 */
export function sourceIndex(outIndex: number, inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean): number {
  const ratio = (alignCorners && outSize > 1 ? inSize - 1 : inSize) / (alignCorners && outSize > 1 ? outSize - 1 : outSize);
  const frac = halfPixelCenters ? ratio * (outIndex + 0.5) : ratio * outIndex;
  let src = Math.min(inSize - 1, alignCorners ? Math.round(frac) : Math.floor(frac));
  if (halfPixelCenters) src = Math.max(0, src);
  return src;
}

export function resizeNearestNeighborGradNHWC(
  dy: Float32Array,
  imagesShape: readonly number[],
  dyShape: readonly number[],
  alignCorners: boolean,
  halfPixelCenters: boolean,
): Float32Array {
  const [batch, inH, inW, ch] = imagesShape;
  const [, outH, outW] = dyShape;
  const dx = new Float32Array(batch * inH * inW * ch);
  const srcCol = Array.from({ length: outW }, (_, c) => sourceIndex(c, inW, outW, alignCorners, halfPixelCenters));
  for (let b = 0; b < batch; b++) {
    for (let r = 0; r < outH; r++) {
      const sr = sourceIndex(r, inH, outH, alignCorners, halfPixelCenters);
      for (let c = 0; c < outW; c++) {
        const d = ((b * inH + sr) * inW + srcCol[c]) * ch;
        const s = ((b * outH + r) * outW + c) * ch;
        for (let k = 0; k < ch; k++) dx[d + k] += dy[s + k];
      }
    }
  }
  return dx;
}
