import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../shared/config/configError.ts';
import { parseFedConfig, parseFedConfigText, type FedConfig } from '../shared/config/fedConfig.ts';

/**
 * The single source of truth for how the federation server is configured and probed. The Kubernetes
 * manifests (and their tests) cross-check against these names and defaults: do not repeat them elsewhere.
 */

/** Environment variables the server reads. */
export const ENV = {
  /** TCP port of HTTP + WebSocket. */
  PORT: 'PORT',
  /** Bind address. */
  HOST: 'HOST',
  /** Directory of checkpoints (and generated demo tokens). */
  STATE_DIR: 'STATE_DIR',
  /** Tokens file (YAML or JSON, see TOKENS_FILE_FORMAT). Without it, demo tokens are generated in STATE_DIR. */
  TOKENS_FILE: 'TOKENS_FILE',
  /** Federation config file (YAML or JSON, shared/config/fedConfig.ts). Without it, the defaults. */
  FED_CONFIG: 'FED_CONFIG',
  /** Base URL printed in join links, e.g. https://fedgan.example.org (default http://localhost:PORT). */
  PUBLIC_URL: 'PUBLIC_URL',
} as const;

export const DEFAULTS = {
  port: 8080,
  host: '0.0.0.0',
  stateDir: './state',
  /** Built web app served at `/` (relative to the repository root). */
  staticDir: 'dist',
  /** File name, inside STATE_DIR, of the tokens generated when TOKENS_FILE is unset. */
  demoTokensFile: 'demo-tokens.yaml',
  /** Names of the generated demo hospitals. */
  demoHospitals: ['hospital-a', 'hospital-b'],
} as const;

/** HTTP paths. */
export const PATHS = {
  ws: '/ws',
  /** Liveness: 200 while the process serves HTTP. */
  healthz: '/healthz',
  /** Readiness: 200 once the state (checkpoint) is loaded, 503 before. */
  readyz: '/readyz',
  metrics: '/metrics',
  status: '/api/status',
} as const;

/**
 * Tokens file: a YAML (or JSON) list, one entry per hospital:
 *
 *     - hospital: hospital-a          # name shown in logs and /api/status (A–Z a–z 0–9 . _ -)
 *       token: 6f1c…                  # secret, at least 16 characters
 *     - hospital: hospital-b
 *       sha256: 9b74…                 # …or its SHA-256 in hex, so the Secret need not hold the token
 *
 * Hospital names and tokens must be unique. The server keeps only SHA-256 hashes in memory.
 */
export const TOKENS_FILE_FORMAT = {
  description: 'YAML or JSON list of {hospital, token} (or {hospital, sha256}) entries',
  example: '- hospital: hospital-a\n  token: <at least 16 characters>\n- hospital: hospital-b\n  token: <…>\n',
  minTokenLength: 16,
  hospitalPattern: /^[A-Za-z0-9._-]{1,64}$/,
} as const;

export interface ServerSettings {
  port: number;
  host: string;
  stateDir: string;
  tokensFile?: string;
  fedConfigFile?: string;
  publicUrl?: string;
  fed: FedConfig;
}

/** Read the environment (and FED_CONFIG file); throws ConfigError naming the bad variable or field. */
export function loadSettings(env: Record<string, string | undefined> = process.env): ServerSettings {
  const problems: { path: string; message: string }[] = [];
  let port: number = DEFAULTS.port;
  const rawPort = env[ENV.PORT];
  if (rawPort !== undefined && rawPort !== '') {
    const p = Number(rawPort);
    if (!Number.isInteger(p) || p < 0 || p > 65535) problems.push({ path: ENV.PORT, message: `must be an integer port 0–65535, got "${rawPort}"` });
    else port = p;
  }
  const host = env[ENV.HOST] || DEFAULTS.host;
  const stateDir = resolve(env[ENV.STATE_DIR] || DEFAULTS.stateDir);
  const tokensFile = env[ENV.TOKENS_FILE] ? resolve(env[ENV.TOKENS_FILE]!) : undefined;
  const fedConfigFile = env[ENV.FED_CONFIG] ? resolve(env[ENV.FED_CONFIG]!) : undefined;
  const publicUrl = env[ENV.PUBLIC_URL] || undefined;
  if (publicUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(publicUrl)) {
    problems.push({ path: ENV.PUBLIC_URL, message: `must be an http(s) URL, got "${publicUrl}"` });
  }
  if (problems.length) throw new ConfigError('environment', problems);

  let fed: FedConfig;
  if (fedConfigFile) {
    let text: string;
    try {
      text = readFileSync(fedConfigFile, 'utf8');
    } catch (e) {
      throw new ConfigError('environment', [{ path: ENV.FED_CONFIG, message: `cannot read ${fedConfigFile}: ${(e as Error).message}` }]);
    }
    fed = parseFedConfigText(text, `${ENV.FED_CONFIG} ${fedConfigFile}`);
  } else {
    fed = parseFedConfig({}, 'default federation config');
  }
  return { port, host, stateDir, tokensFile, fedConfigFile, publicUrl, fed };
}
