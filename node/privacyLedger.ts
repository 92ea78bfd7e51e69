import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { LedgerEntry, PrivacyLedgerStore } from '../shared/privacy/budget.ts';

/**
 * A Node hospital's privacy ledger (shared/privacy/budget.ts) in a JSON file: the rounds it trained with
 * differential privacy, so that the ε its tiles have spent survives a restart of the process (the web app
 * keeps the same ledger in IndexedDB). Each append rewrites the file atomically (temporary file, then
 * rename). A file that is not a ledger is an error naming the file, never silently reset: forgetting spent
 * ε would understate it.
 */
export function fileLedger(path: string): PrivacyLedgerStore {
  const read = (): LedgerEntry[] => {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (e) {
      throw new Error(`the privacy ledger ${path} is not valid JSON (${(e as Error).message}); it records the ε this hospital spent, so it is not reset: fix or remove it deliberately`);
    }
    const ok = (x: unknown): x is LedgerEntry => {
      const e = x as Record<string, unknown>;
      return !!e && typeof e === 'object' && [e.round, e.attempt, e.steps, e.sampleRate, e.effectiveNoiseMultiplier].every((v) => typeof v === 'number' && Number.isFinite(v));
    };
    if (!Array.isArray(raw) || !raw.every(ok)) throw new Error(`the privacy ledger ${path} is not a list of rounds ({round, attempt, steps, sampleRate, effectiveNoiseMultiplier, …}); it is not reset: fix or remove it deliberately`);
    return raw;
  };
  return {
    load: read,
    append(entry) {
      const entries = [...read(), entry];
      mkdirSync(dirname(path), { recursive: true });
      const tmp = `${path}.tmp`;
      writeFileSync(tmp, JSON.stringify(entries, null, 1));
      renameSync(tmp, path);
    },
  };
}
