import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseGanConfig } from '../../shared/config/ganConfig.ts';
import type { FederationState, HistoryEntry } from '../state.ts';

/** Fixtures of the checkpoint-store tests (server/state.test.ts, server/durability.test.ts). */

/** The configured model the test stores record (the tiny test weights do not depend on it). */
export const CHECKPOINT_TEST_MODEL = parseGanConfig({ imageSize: 16, latentDim: 8, generator: { baseChannels: 8 }, discriminator: { baseChannels: 4 } });

/** A completed round of two hospitals, as the federation's history records it. */
export function historyEntry(round: number): HistoryEntry {
  return { round, participants: 2, hospitals: ['h1', 'h2'], examples: 20, dLoss: 0.5, gLoss: 1.5, seconds: 1, attempts: 1, completedAt: '2025-01-01T00:00:00.000Z' };
}

/** The federation state after `round` completed rounds. */
export function stateAt(round: number): FederationState {
  return { round, history: Array.from({ length: round }, (_, i) => historyEntry(i + 1)) };
}

/** Temporary directories made by a test file, removed together (call `removeAll` in `afterEach`). */
export class TempDirs {
  private readonly dirs: string[] = [];
  constructor(private readonly prefix: string) {}
  make(): string {
    const d = mkdtempSync(join(tmpdir(), this.prefix));
    this.dirs.push(d);
    return d;
  }
  removeAll(): void {
    for (const d of this.dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  }
}
