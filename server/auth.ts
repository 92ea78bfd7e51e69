import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, parseWith } from '../shared/config/configError.ts';
import { DEFAULTS, ENV, TOKENS_FILE_FORMAT } from './config.ts';
import { writeFileAtomic } from './atomicFile.ts';
import { upgradeKeyFromTokenHash } from '../shared/protocol/upgradeAuth.ts';

/** Hospital authentication: tokens are kept only as SHA-256 hashes. */

export function sha256Hex(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}

const entrySchema = z
  .object({
    hospital: z.string().regex(TOKENS_FILE_FORMAT.hospitalPattern, 'must be 1–64 of A–Z a–z 0–9 . _ -').optional(),
    /** Instead of `hospital`: the operator's token, for the full /api/status (server/http.ts); never a hospital's. */
    operator: z.string().regex(TOKENS_FILE_FORMAT.hospitalPattern, 'must be 1–64 of A–Z a–z 0–9 . _ -').optional(),
    token: z.string().min(TOKENS_FILE_FORMAT.minTokenLength, `must be at least ${TOKENS_FILE_FORMAT.minTokenLength} characters`).optional(),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'must be 64 hex digits')
      .optional(),
    /** The most examples this hospital's updates count with in the average (FedAvg weight); a larger claim is clipped to it. */
    maxExamples: z.number().int('must be a whole number').min(1, 'must be at least 1').optional(),
  })
  .strict()
  .refine((e) => (e.token === undefined) !== (e.sha256 === undefined), 'needs exactly one of "token" or "sha256"')
  .refine((e) => (e.hospital === undefined) !== (e.operator === undefined), 'needs exactly one of "hospital" or "operator"')
  .refine((e) => e.operator === undefined || e.maxExamples === undefined, '"maxExamples" is for hospitals, not the operator');

export const tokensFileSchema = z.array(entrySchema).min(1, 'must list at least one hospital (the server never runs open)');
export type TokensFileEntry = z.infer<typeof entrySchema>;

export class TokenStore {
  /** sha256(token) → hospital. */
  private readonly byHash = new Map<string, string>();
  /** upgrade key (shared/protocol/upgradeAuth.ts) → hospital. */
  private readonly byUpgradeKey = new Map<string, string>();
  /** hospital → its `maxExamples`, for the hospitals that have one. */
  private readonly exampleCaps = new Map<string, number>();
  /** SHA-256 (hex) of the operator tokens of `operator` entries: they read the full /api/status and never sign in as a hospital. */
  readonly operatorSha256: readonly string[];

  constructor(entries: { hospital: string; sha256: string; maxExamples?: number }[], operatorSha256: readonly string[] = []) {
    for (const e of entries) {
      this.byHash.set(e.sha256.toLowerCase(), e.hospital);
      this.byUpgradeKey.set(upgradeKeyFromTokenHash(e.sha256), e.hospital);
      if (e.maxExamples !== undefined) this.exampleCaps.set(e.hospital, e.maxExamples);
    }
    this.operatorSha256 = operatorSha256.map((h) => h.toLowerCase());
  }

  /** The `maxExamples` of `hospital`'s entry: the most examples its updates count with; undefined when it has none. */
  maxExamples(hospital: string): number | undefined {
    return this.exampleCaps.get(hospital);
  }

  /** Parse a tokens file's text (YAML or JSON); throws ConfigError naming the bad entry. */
  static parse(text: string, source: string): TokenStore {
    let raw: unknown;
    try {
      raw = parseYaml(text);
    } catch (e) {
      throw new ConfigError(source, [{ path: '', message: `not valid YAML or JSON: ${(e as Error).message.split('\n')[0]}` }]);
    }
    const entries = parseWith(tokensFileSchema, raw ?? [], source);
    const problems: { path: string; message: string }[] = [];
    const names = new Set<string>();
    const hashes = new Set<string>();
    const out: { hospital: string; sha256: string; maxExamples?: number }[] = [];
    const operators: string[] = [];
    entries.forEach((e, i) => {
      const sha256 = (e.sha256 ?? sha256Hex(e.token!)).toLowerCase();
      if (hashes.has(sha256)) problems.push({ path: `${i}`, message: 'duplicate token' });
      hashes.add(sha256);
      if (e.operator !== undefined) return void operators.push(sha256);
      const hospital = e.hospital!;
      if (names.has(hospital)) problems.push({ path: `${i}.hospital`, message: `duplicate hospital "${hospital}"` });
      names.add(hospital);
      out.push({ hospital, sha256, ...(e.maxExamples !== undefined ? { maxExamples: e.maxExamples } : {}) });
    });
    if (!out.length) problems.push({ path: '', message: 'must list at least one hospital (the server never runs open)' });
    if (problems.length) throw new ConfigError(source, problems);
    return new TokenStore(out, operators);
  }

  static fromFile(path: string): TokenStore {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      throw new ConfigError('environment', [{ path: ENV.TOKENS_FILE, message: `cannot read ${path}: ${(e as Error).message}` }]);
    }
    return TokenStore.parse(text, `${ENV.TOKENS_FILE} ${path}`);
  }

  /**
   * Add a hospital, or give a known one a new token (SHA-256 hex): its old token and upgrade key stop
   * working at once (the operator console: server/console/hospitals.ts).
   */
  set(hospital: string, sha256: string): void {
    this.remove(hospital);
    this.byHash.set(sha256.toLowerCase(), hospital);
    this.byUpgradeKey.set(upgradeKeyFromTokenHash(sha256), hospital);
  }

  /** Forget a hospital's token (revoked): it no longer signs in. Returns whether it had one. */
  remove(hospital: string): boolean {
    let had = false;
    for (const [h, name] of this.byHash) if (name === hospital) (this.byHash.delete(h), (had = true));
    for (const [k, name] of this.byUpgradeKey) if (name === hospital) this.byUpgradeKey.delete(k);
    return had;
  }

  /** The SHA-256 (hex) of a hospital's token, or undefined. */
  sha256Of(hospital: string): string | undefined {
    for (const [h, name] of this.byHash) if (name === hospital) return h;
    return undefined;
  }

  /** The hospital a token belongs to, or undefined. The lookup is by SHA-256, so its timing reveals nothing about tokens. */
  authenticate(token: string): string | undefined {
    return this.byHash.get(sha256Hex(token));
  }

  /** The hospital whose upgrade key (the `fedgan.auth.` subprotocol, docs/protocol.md §5.1) this is, or undefined. */
  hospitalOfUpgradeKey(key: string): string | undefined {
    return this.byUpgradeKey.get(key);
  }

  get hospitals(): string[] {
    return [...this.byHash.values()];
  }
}

export function generateToken(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * Without TOKENS_FILE: load the demo tokens kept in STATE_DIR, generating them on the first start.
 * Returns the plain tokens too, so the caller can print join links.
 */
export async function loadOrCreateDemoTokens(stateDir: string): Promise<{ store: TokenStore; path: string; created: boolean; tokens: { hospital: string; token: string }[] }> {
  const path = join(stateDir, DEFAULTS.demoTokensFile);
  let created = false;
  if (!existsSync(path)) {
    mkdirSync(stateDir, { recursive: true });
    const entries = DEFAULTS.demoHospitals.map((hospital) => ({ hospital, token: generateToken() }));
    const text = '# Demo hospital tokens generated by the federation server (format: server/config.ts TOKENS_FILE_FORMAT).\n' + stringifyYaml(entries);
    await writeFileAtomic(path, text, 0o600);
    created = true;
  }
  const text = readFileSync(path, 'utf8');
  const store = TokenStore.parse(text, path);
  const raw = (parseYaml(text) ?? []) as { hospital?: string; token?: string }[];
  const tokens = raw.filter((e) => typeof e.token === 'string' && typeof e.hospital === 'string').map((e) => ({ hospital: e.hospital!, token: e.token! }));
  return { store, path, created, tokens };
}
