/**
 * Architecture fingerprints: a short, stable identifier of a model's weight layout, so that weights
 * produced by one architecture are never loaded into (or averaged with) another.
 *
 * The fingerprint is the 64-bit FNV-1a hash (as 16 lower-case hex digits) of the UTF-8 bytes of a
 * canonical description of the layout:
 *
 *     "<name>":[d0,d1,…];"<name>":[…];…|<extra>
 *
 * Names are JSON-quoted so that names containing `:`, `;` or `|` cannot make two different layouts
 * describe the same way. The hash depends on every name, every dimension, the tensor order and
 * `extra` (e.g. a hash of the hyper-parameters that change the meaning of the weights).
 * An absent `extra` is the same as the empty string.
 */

const FNV64_OFFSET = 0xcbf29ce484222325n;
const FNV64_PRIME = 0x100000001b3n;
const MASK64 = 0xffffffffffffffffn;

/** 64-bit FNV-1a of the UTF-8 bytes of `text`, as 16 lower-case hex digits. */
export function fnv1a64Hex(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let h = FNV64_OFFSET;
  for (let i = 0; i < bytes.length; i++) {
    h ^= BigInt(bytes[i]);
    h = (h * FNV64_PRIME) & MASK64;
  }
  return h.toString(16).padStart(16, '0');
}

/** The exact string that `architectureFingerprint` hashes (useful when debugging a mismatch). */
export function canonicalArchitecture(
  tensors: readonly { name: string; shape: readonly number[] }[],
  extra = '',
): string {
  const parts = tensors.map((t) => {
    for (const d of t.shape) {
      if (!Number.isSafeInteger(d) || d < 0) {
        throw new RangeError(`tensor ${t.name} has an invalid dimension ${d} in shape [${t.shape.join(', ')}]`);
      }
    }
    return `${JSON.stringify(t.name)}:[${t.shape.join(',')}]`;
  });
  return `${parts.join(';')}|${extra}`;
}

/** Stable 64-bit fingerprint (16 hex digits) of an ordered list of named tensor shapes plus `extra`. */
export function architectureFingerprint(
  tensors: readonly { name: string; shape: readonly number[] }[],
  extra?: string,
): string {
  return fnv1a64Hex(canonicalArchitecture(tensors, extra));
}
