import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { K8sObject } from './kustomize.ts';

/**
 * Validation of Kubernetes objects against the API schemas, offline, with the `kubernetes-models`
 * packages: their compiled OpenAPI validators check types, required fields and enums. Those schemas allow
 * unknown fields (as the OpenAPI documents do), while the API server (kubectl's default field validation
 * is Strict) refuses them; so `unknownFields` also walks each object against the models' type
 * declarations and reports every field the API does not define: a typo such as `readOnlyRootFileSystem`
 * would otherwise pass.
 */

const ROOT = resolve(new URL('../..', import.meta.url).pathname);
const MODULES = join(ROOT, 'node_modules');

/** Module path (without extension) of the model of an apiVersion + kind. */
export function modelModule(apiVersion: string, kind: string): string {
  if (!/^[A-Za-z0-9]+$/.test(kind)) throw new Error(`bad kind "${kind}"`);
  if (apiVersion === 'monitoring.coreos.com/v1') return `@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${kind}`;
  if (!/^([a-z0-9.-]+\/)?v[0-9a-z]+$/.test(apiVersion)) throw new Error(`bad apiVersion "${apiVersion}"`);
  return `kubernetes-models/${apiVersion}/${kind}`;
}

/** Validate against the schema; returns the problems (empty when valid). */
export async function schemaProblems(o: K8sObject): Promise<string[]> {
  const mod = modelModule(o.apiVersion, o.kind);
  if (!existsSync(join(MODULES, `${mod}.d.ts`))) return [`no schema for ${o.apiVersion} ${o.kind}`];
  const m = (await import(mod)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = m[o.kind];
  if (typeof Model !== 'function') return [`${mod} exports no ${o.kind}`];
  try {
    new Model(structuredClone(o)).validate();
    return [];
  } catch (e) {
    return [(e as Error).message];
  }
}

// ---- type declarations → field trees ----

type TypeNode =
  | { t: 'leaf' }
  | { t: 'array'; of: TypeNode }
  | { t: 'map'; of: TypeNode }
  | { t: 'object'; props: Map<string, TypeNode> }
  | { t: 'ref'; file: string; name: string }
  | { t: 'union'; of: TypeNode[] };

const LEAVES = new Set(['string', 'number', 'boolean', 'any', 'unknown', 'object', 'null', 'undefined', 'true', 'false']);

function tokenize(src: string): string[] {
  const out: string[] = [];
  const re = /\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[A-Za-z_$][\w$]*|-?\d+(?:\.\d+)?|[{}[\]<>()|:;?,&=])/y;
  let m: RegExpExecArray | null;
  let i = 0;
  while (i < src.length) {
    re.lastIndex = i;
    m = re.exec(src);
    if (!m) {
      if (/^\s*$/.test(src.slice(i))) break;
      throw new Error(`cannot read type near "${src.slice(i, i + 40)}"`);
    }
    out.push(m[1]);
    i = re.lastIndex;
  }
  return out;
}

class TypeParser {
  private i = 0;
  constructor(
    private readonly tok: string[],
    private readonly file: string,
    private readonly imports: Map<string, string>,
  ) {}
  private peek(): string | undefined {
    return this.tok[this.i];
  }
  private next(expect?: string): string {
    const t = this.tok[this.i++];
    if (t === undefined || (expect !== undefined && t !== expect)) throw new Error(`${this.file}: expected ${expect ?? 'a token'}, got ${t}`);
    return t;
  }
  type(): TypeNode {
    const members = [this.postfix()];
    while (this.peek() === '|') {
      this.next();
      members.push(this.postfix());
    }
    return members.length === 1 ? members[0] : { t: 'union', of: members };
  }
  private postfix(): TypeNode {
    let n = this.primary();
    while (this.peek() === '[' && this.tok[this.i + 1] === ']') {
      this.i += 2;
      n = { t: 'array', of: n };
    }
    return n;
  }
  private primary(): TypeNode {
    const t = this.next();
    if (t === '(') {
      const n = this.type();
      this.next(')');
      return n;
    }
    if (t === '{') return this.objectBody();
    if (t.startsWith('"') || t.startsWith("'") || /^-?\d/.test(t) || LEAVES.has(t)) return { t: 'leaf' };
    if (t === 'Array') {
      this.next('<');
      const of = this.type();
      this.next('>');
      return { t: 'array', of };
    }
    if (/^[A-Za-z_$]/.test(t)) {
      const file = this.imports.get(t);
      if (!file) throw new Error(`${this.file}: type ${t} is not imported`);
      return { t: 'ref', file, name: t };
    }
    throw new Error(`${this.file}: unexpected "${t}" in a type`);
  }
  /** After `{`: either an index signature (a map) or properties. */
  objectBody(): TypeNode {
    if (this.peek() === '[') {
      this.next('[');
      this.next();
      this.next(':');
      this.next();
      this.next(']');
      this.next(':');
      const of = this.type();
      if (this.peek() === ';') this.next();
      this.next('}');
      return { t: 'map', of };
    }
    const props = new Map<string, TypeNode>();
    while (this.peek() !== '}') {
      const raw = this.next();
      const name = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
      if (this.peek() === '?') this.next();
      this.next(':');
      props.set(name, this.type());
      if (this.peek() === ';' || this.peek() === ',') this.next();
    }
    this.next('}');
    return { t: 'object', props };
  }
}

const fileCache = new Map<string, TypeNode>();

/** Index of the `}` closing the block whose `{` is just before `start`. */
function closingBrace(src: string, start: number): number {
  let depth = 1;
  for (let i = start; i < src.length; i++) {
    const c = src[i];
    if (c === '"') {
      for (i++; i < src.length && src[i] !== '"'; i++) if (src[i] === '\\') i++;
    } else if (c === '{') depth++;
    else if (c === '}' && --depth === 0) return i;
  }
  throw new Error('unbalanced braces');
}

/** The type a model declaration file declares first (its `export interface I…` or `export declare type I…`). */
function declaredType(file: string): TypeNode {
  const cached = fileCache.get(file);
  if (cached) return cached;
  const src = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
  const imports = new Map<string, string>();
  for (const m of src.matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g)) {
    const target = m[2].startsWith('.') ? resolve(dirname(file), m[2]) : join(MODULES, m[2]);
    const path = target.replace(/\.js$/, '') + '.d.ts';
    for (const n of m[1].split(',')) {
      const [orig, alias] = n.split(/\s+as\s+/).map((s) => s.trim());
      if (orig) imports.set(alias ?? orig, path);
    }
  }
  let node: TypeNode;
  const iface = /export\s+interface\s+\w+(?:\s+extends\s+[\w\s,]+)?\s*\{/.exec(src);
  const alias = /export\s+declare\s+type\s+\w+\s*=\s*/.exec(src);
  if (iface && (!alias || iface.index < alias.index)) {
    const start = iface.index + iface[0].length;
    node = new TypeParser(tokenize(src.slice(start, closingBrace(src, start) + 1)), file, imports).objectBody();
  } else if (alias) {
    const rest = src.slice(alias.index + alias[0].length);
    node = new TypeParser(tokenize(rest.slice(0, rest.indexOf(';'))), file, imports).type();
  } else throw new Error(`${file}: no exported interface or type`);
  fileCache.set(file, node);
  return node;
}

function deref(n: TypeNode): TypeNode {
  let cur = n;
  for (let depth = 0; cur.t === 'ref'; depth++) {
    if (depth > 20) throw new Error(`type reference loop at ${cur.name}`);
    cur = declaredType(cur.file);
  }
  return cur;
}

/** Fields of `value` (at `path`) that the API does not define, as dotted paths. */
function walk(value: unknown, type: TypeNode, path: string, out: string[]): void {
  const ty = deref(type);
  if (value === null || value === undefined) return;
  switch (ty.t) {
    case 'leaf':
      return;
    case 'array':
      if (Array.isArray(value)) value.forEach((v, i) => walk(v, ty.of, `${path}[${i}]`, out));
      return;
    case 'map':
      if (typeof value === 'object' && !Array.isArray(value)) for (const [k, v] of Object.entries(value)) walk(v, ty.of, `${path}.${k}`, out);
      return;
    case 'union': {
      const structured = ty.of.map(deref).find((m) => m.t !== 'leaf');
      if (structured) walk(value, structured, path, out);
      return;
    }
    case 'object':
      if (typeof value !== 'object' || Array.isArray(value)) return;
      for (const [k, v] of Object.entries(value)) {
        const p = path ? `${path}.${k}` : k;
        const sub = ty.props.get(k);
        if (!sub) out.push(p);
        else walk(v, sub, p, out);
      }
      return;
  }
}

/** Every field of the object that its kind does not define (empty when there are none). */
export function unknownFields(o: K8sObject): string[] {
  const file = join(MODULES, `${modelModule(o.apiVersion, o.kind)}.d.ts`);
  if (!existsSync(file)) return [`<no type declarations for ${o.apiVersion} ${o.kind}>`];
  const out: string[] = [];
  walk(o, declaredType(file), '', out);
  return out;
}
