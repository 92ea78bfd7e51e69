/**
 * Weight layouts: the ordered (name, shape) list of a weight set. Two weight sets can be exchanged,
 * averaged or merged only when their layouts are identical.
 */

export interface TensorSpec {
  name: string;
  shape: readonly number[];
}

function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Compares two layouts tensor by tensor. Returns `null` when they are identical, otherwise a
 * human-readable description of the first difference, e.g.
 * `tensor #3 is g/bn1/gamma [64] but g/bn1/gamma [128] was expected`.
 */
export function layoutMismatch(actual: readonly TensorSpec[], expected: readonly TensorSpec[]): string | null {
  const n = Math.min(actual.length, expected.length);
  for (let i = 0; i < n; i++) {
    const a = actual[i];
    const e = expected[i];
    if (a.name !== e.name || !sameShape(a.shape, e.shape)) {
      return `tensor #${i} is ${a.name} ${formatShape(a.shape)} but ${e.name} ${formatShape(e.shape)} was expected`;
    }
  }
  if (actual.length !== expected.length) {
    const extra =
      actual.length > expected.length
        ? `first unexpected tensor: ${actual[n].name}`
        : `first missing tensor: ${expected[n].name}`;
    return `${actual.length} tensors where ${expected.length} were expected (${extra})`;
  }
  return null;
}
