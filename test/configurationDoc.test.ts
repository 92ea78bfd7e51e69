import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { DEFAULTS, ENV } from '../server/config.ts';
import { fedConfigSchema, parseFedConfig, parseFedConfigText } from '../shared/config/fedConfig.ts';
import { ganConfigSchema } from '../shared/config/ganConfig.ts';

/**
 * docs/configuration.md is the operator's reference: every field of the federation config's schemas (the
 * GAN config's under `model.`) and every environment variable of server/config.ts has a row there, the
 * default the row quotes is the parsed default, and every example in it is a valid FED_CONFIG. A field
 * added to a schema without its row fails here.
 */

const ROOT = new URL('..', import.meta.url).pathname;
const DOC = readFileSync(join(ROOT, 'docs', 'configuration.md'), 'utf8');

/** Unwrap defaults, optionals, nullables and pipes down to the schema that says what the field is. */
function unwrap(s: z.ZodType): z.ZodType {
  let cur = s as unknown as { def: { type: string; innerType?: z.ZodType; in?: z.ZodType } };
  for (;;) {
    const t = cur.def.type;
    if (['default', 'prefault', 'optional', 'nullable', 'readonly', 'catch', 'nonoptional'].includes(t) && cur.def.innerType) cur = cur.def.innerType as never;
    else if (t === 'pipe' && cur.def.in) cur = cur.def.in as never;
    else return cur as unknown as z.ZodType;
  }
}

/** Dotted paths of every leaf field (an object field's own fields, recursively). */
function leafPaths(schema: z.ZodType, prefix = ''): string[] {
  const u = unwrap(schema) as unknown as { def: { type: string; shape?: Record<string, z.ZodType> } };
  if (u.def.type !== 'object' || !u.def.shape) return [prefix];
  return Object.entries(u.def.shape).flatMap(([k, v]) => leafPaths(v, prefix ? `${prefix}.${k}` : k));
}

const FED_FIELDS = leafPaths(fedConfigSchema).filter((p) => p !== 'model');
const MODEL_FIELDS = leafPaths(ganConfigSchema, 'model');

/** Table rows of the doc: first cell a code span → the row's cells. */
const ROWS = new Map<string, string[]>();
for (const line of DOC.split('\n')) {
  const m = /^\| `([^`]+)` \|(.*)\|\s*$/.exec(line);
  if (m) ROWS.set(m[1], m[2].split(' | ').map((c) => c.trim()));
}
const firstCode = (cell: string) => /`([^`]*)`/.exec(cell)?.[1];
const valueAt = (o: unknown, path: string) => path.split('.').reduce<unknown>((a, k) => (a == null ? a : (a as Record<string, unknown>)[k]), o);

describe('docs/configuration.md', () => {
  it('has a row for every field of the federation config and of the model (the GAN config)', () => {
    expect(FED_FIELDS.length).toBeGreaterThan(30);
    expect(MODEL_FIELDS.length).toBeGreaterThan(25);
    const missing = [...FED_FIELDS, ...MODEL_FIELDS].filter((p) => !ROWS.has(p));
    expect(missing, 'fields without a row in docs/configuration.md').toEqual([]);
  });

  it('documents no field that does not exist', () => {
    const known = new Set<string>([...FED_FIELDS, ...MODEL_FIELDS, ...Object.values(ENV)]);
    expect([...ROWS.keys()].filter((k) => !known.has(k))).toEqual([]);
  });

  it('quotes each default as parsed (the federation model with the small-data recipe)', () => {
    const parsed = parseFedConfig({});
    const wrong: string[] = [];
    for (const path of [...FED_FIELDS, ...MODEL_FIELDS]) {
      const quoted = firstCode(ROWS.get(path)![0]);
      const value = valueAt(parsed, path);
      const expected = typeof value === 'string' ? value : JSON.stringify(value);
      if (quoted !== expected) wrong.push(`${path}: the doc says ${quoted}, the default is ${expected}`);
    }
    expect(wrong).toEqual([]);
  });

  it('gives every field an example that is a valid FED_CONFIG', () => {
    const bad: string[] = [];
    for (const path of [...FED_FIELDS, ...MODEL_FIELDS]) {
      const example = /Example: `([^`]+)`/.exec(ROWS.get(path)![1])?.[1];
      if (!example) {
        bad.push(`${path}: no example`);
        continue;
      }
      try {
        parseFedConfigText(example, `example of ${path}`);
      } catch (e) {
        bad.push(`${path}: ${(e as Error).message}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('has a complete example config that parses', () => {
    const block = /```yaml\n(rounds:[\s\S]*?)```/.exec(DOC)?.[1];
    expect(block).toBeDefined();
    const fed = parseFedConfigText(block!, 'the example of docs/configuration.md');
    expect(fed).toMatchObject({ rounds: 20, localSteps: 100, roundDeadlineSeconds: 600, model: { imageSize: 32 } });
  });

  it('lists every environment variable of server/config.ts, with the defaults it has', () => {
    for (const name of Object.values(ENV)) expect(ROWS.has(name), name).toBe(true);
    expect(firstCode(ROWS.get(ENV.PORT)![0])).toBe(String(DEFAULTS.port));
    expect(firstCode(ROWS.get(ENV.HOST)![0])).toBe(DEFAULTS.host);
    expect(firstCode(ROWS.get(ENV.STATE_DIR)![0])).toBe(DEFAULTS.stateDir);
  });
});
