import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../shared/config/configError.ts';
import { parseFedConfig, type FedConfig } from '../../shared/config/fedConfig.ts';
import { generateToken, sha256Hex, type TokenStore } from '../auth.ts';
import { sweepTempFiles } from '../atomicFile.ts';
import type { Logger } from '../log.ts';
import { StateDirError } from '../state.ts';
import { AuditLog } from './auditLog.ts';
import { CONSOLE_DIR, ConsoleState } from './consoleState.ts';
import { mergeSettings } from './settings.ts';

/**
 * What the console needs before the federation starts: its state (STATE_DIR/console/console.json), the
 * verified audit log, the operator's token digests, the hospitals' tokens as the console changed them, and
 * the federation config with the operator's changes (rounds, round settings) merged in.
 */
export interface ConsoleSetup {
  dir: string;
  state: ConsoleState;
  audit: AuditLog;
  /** SHA-256 (hex) of every operator token: OPERATOR_TOKEN's, the tokens file's, or the one created here. */
  operatorSha256: string[];
  /** The operator token created on this (first) start, to be printed once; undefined otherwise. */
  createdOperatorToken?: string;
  /** FED_CONFIG with the console's rounds and round settings. */
  fed: FedConfig;
}

export interface ConsoleSetupOptions {
  stateDir: string;
  fed: FedConfig;
  tokens: TokenStore;
  /** Where the hospitals of `tokens` come from. */
  tokensSource: 'tokens-file' | 'demo';
  /** OPERATOR_TOKEN */
  operatorToken?: string;
  log: Logger;
  now?: () => number;
}

/**
 * Open the console's state and audit log (StateDirError when either cannot be trusted or read), settle the
 * operator token and apply the console's hospital changes to `tokens` (revoked ones removed, added and
 * rotated ones set). Writes console.json when it created the operator token.
 */
export async function setupConsole(opts: ConsoleSetupOptions): Promise<ConsoleSetup> {
  const dir = join(opts.stateDir, CONSOLE_DIR);
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new StateDirError('not-writable', `cannot create ${dir}: ${(e as Error).message}`);
  }
  await sweepTempFiles(dir);
  const state = ConsoleState.load(opts.stateDir);
  const audit = AuditLog.open(dir, { now: opts.now });
  const { log, tokens } = opts;

  // Hospitals: the console's changes win over the tokens file (a revoked hospital stays revoked).
  const fileHospitals = new Set(tokens.hospitals);
  for (const [name, h] of Object.entries(state.data.hospitals)) {
    if (h.revokedAt) {
      if (tokens.remove(name)) log.info(`${name}: revoked in the console on ${h.revokedAt}; its token is refused`);
      continue;
    }
    if (h.sha256) tokens.set(name, h.sha256);
    else if (!fileHospitals.has(name)) log.warn(`${name}: was in ${h.source === 'demo' ? 'the demo tokens' : 'the tokens file'} and is no longer: it has no token`);
  }

  // The operator: OPERATOR_TOKEN and the tokens file's operator entries; without either, the token created on the first start.
  const operatorSha256 = [...(opts.operatorToken ? [sha256Hex(opts.operatorToken)] : []), ...tokens.operatorSha256];
  let createdOperatorToken: string | undefined;
  if (!operatorSha256.length) {
    if (!state.data.operator) {
      createdOperatorToken = generateToken();
      state.data.operator = { sha256: sha256Hex(createdOperatorToken), createdAt: new Date((opts.now ?? Date.now)()).toISOString() };
      await state.save();
      audit.append({ type: 'operator-token-created', actor: 'server', details: { file: state.file } });
    }
    operatorSha256.push(state.data.operator.sha256);
  }

  // The operator's rounds and round settings over FED_CONFIG.
  let fed = opts.fed;
  const f = state.data.federation;
  if (f.settings || f.rounds !== undefined) {
    const merged = mergeSettings(fed as unknown as Record<string, unknown>, { ...(f.settings ?? {}), ...(f.rounds !== undefined ? { rounds: f.rounds } : {}) });
    try {
      fed = parseFedConfig(merged, `${state.file} (round settings set in the console)`);
    } catch (e) {
      if (e instanceof ConfigError) throw new StateDirError('console-state', `${e.message}: fix FED_CONFIG or move ${state.file} aside`);
      throw e;
    }
    log.info(
      `round settings set in the console (${state.file}) override FED_CONFIG: ${JSON.stringify({ ...(f.settings ?? {}), ...(f.rounds !== undefined ? { rounds: f.rounds } : {}) })}`,
    );
  }
  return { dir, state, audit, operatorSha256, createdOperatorToken, fed };
}
