import type { z } from 'zod';

/** A configuration error that names every bad field, e.g. `model.imageSize: must be a multiple of 8`. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: { path: string; message: string }[],
  ) {
    super(`invalid ${source}: ` + problems.map((p) => `${p.path || '(root)'}: ${p.message}`).join('; '));
    this.name = 'ConfigError';
  }
}

/** Parse `input` with a zod schema, turning failures into a ConfigError that names each field. */
export function parseWith<T extends z.ZodType>(schema: T, input: unknown, source: string, prefix = ''): z.output<T> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  throw new ConfigError(
    source,
    r.error.issues.map((i) => {
      const path = [prefix, ...i.path.map(String)].filter(Boolean).join('.');
      const keys = (i as { keys?: string[] }).keys;
      return { path, message: keys ? `unknown field(s) ${keys.map((k) => `"${k}"`).join(', ')}` : i.message };
    }),
  );
}
