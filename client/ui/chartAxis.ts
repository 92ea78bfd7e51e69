/**
 * The value axis of the page's charts (loss and quality): round tick values, 1, 2 or 5 times a power of
 * ten, about `target` intervals over [min, max], each labelled with as many decimals as its step needs,
 * so a KID axis reads 0, 0.005, 0.010 … rather than 0, 0.099, 0.20 ….
 */

/** The smallest of 1, 2, 5 or 10 × 10ᵏ at least `raw`. */
export function niceStep(raw: number): number {
  const p = Math.pow(10, Math.floor(Math.log10(Math.max(raw, 1e-12))));
  const m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

/** Tick values (multiples of a nice step inside [min, max]) and their labels. */
export function axisTicks(min: number, max: number, target = 4): { value: number; label: string }[] {
  if (!(Number.isFinite(min) && Number.isFinite(max) && max > min)) return [];
  const step = niceStep((max - min) / target);
  const decimals = Math.min(12, Math.max(0, -Math.floor(Math.log10(step) + 1e-9)));
  const ticks: { value: number; label: string }[] = [];
  for (let i = Math.ceil(min / step - 1e-9); i * step <= max + step * 1e-9; i++) {
    const value = i * step + 0; // + 0: no -0 (Math.ceil of a tiny negative)
    ticks.push({ value, label: value.toFixed(decimals) });
  }
  return ticks;
}
