/** The t-SNE embedding as an inline SVG scatter: colour = class, filled circle = real, hollow triangle = synthetic. */
export interface TsnePoint {
  x: number;
  y: number;
  classIndex: number;
  synthetic: boolean;
}

const COLOURS = ['#c2185b', '#1565c0', '#2e7d32', '#ef6c00', '#6a1b9a', '#00838f'];

export function tsneSvg(points: readonly TsnePoint[], classes: readonly string[], width = 560, height = 460): string {
  const pad = 20;
  const legendH = 28;
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x: number) => pad + ((x - x0) / (x1 - x0 || 1)) * (width - 2 * pad);
  const sy = (y: number) => legendH + pad + ((y - y0) / (y1 - y0 || 1)) * (height - legendH - 2 * pad);
  const marks = points
    .map((p) => {
      const c = COLOURS[p.classIndex % COLOURS.length];
      const x = sx(p.x).toFixed(1);
      const y = sy(p.y).toFixed(1);
      if (!p.synthetic) return `<circle cx="${x}" cy="${y}" r="3" fill="${c}" fill-opacity="0.6"/>`;
      const X = Number(x);
      const Y = Number(y);
      return `<polygon points="${X},${(Y - 4).toFixed(1)} ${(X - 3.5).toFixed(1)},${(Y + 2.5).toFixed(1)} ${(X + 3.5).toFixed(1)},${(Y + 2.5).toFixed(1)}" fill="none" stroke="${c}" stroke-width="1.2"/>`;
    })
    .join('');
  const legend = classes
    .flatMap((name, i) => {
      const c = COLOURS[i % COLOURS.length];
      const x = pad + i * 230;
      return [
        `<circle cx="${x + 5}" cy="14" r="4" fill="${c}" fill-opacity="0.6"/><text x="${x + 13}" y="18" font-size="12">${escapeXml(name)} real</text>`,
        `<polygon points="${x + 105},9 ${x + 100.5},17.5 ${x + 109.5},17.5" fill="none" stroke="${c}" stroke-width="1.2"/><text x="${x + 115}" y="18" font-size="12">${escapeXml(name)} synthetic</text>`,
      ];
    })
    .join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" role="img" aria-label="t-SNE of real and synthetic tile features"><rect width="100%" height="100%" fill="#fff" stroke="#ccc"/>${legend}${marks}</svg>`;
}

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch]!);
}
