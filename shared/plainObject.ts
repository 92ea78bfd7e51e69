/** A JSON-style object (not null, not an array): what a config section, a codec header or a summary is read as. */
export function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
