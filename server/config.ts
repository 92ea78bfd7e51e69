import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { ConfigError } from '../shared/config/configError.ts';
import { parseAllowedOrigins, parseTrustedProxies, type TrustedProxies } from './admission.ts';
import { DEFAULT_LOCAL_STEPS, DEFAULT_ROUNDS, parseFedConfig, parseFedConfigText, type FedConfig, type FedConfigInput } from '../shared/config/fedConfig.ts';

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
  /**
   * Federation config file (YAML or JSON, shared/config/fedConfig.ts); fields it leaves out take the
   * defaults. Without it: the defaults, or DEMO_FED_CONFIG when TOKENS_FILE is unset too.
   */
  FED_CONFIG: 'FED_CONFIG',
  /** Base URL printed in join links, e.g. https://fedgan.example.org (default http://localhost:PORT). */
  PUBLIC_URL: 'PUBLIC_URL',
  /**
   * Web origins, besides this server's own (the request's Host, PUBLIC_URL), whose pages may open the
   * WebSocket: comma-separated, e.g. `https://app.example.org,http://localhost:5173`; `*` for any.
   * Clients that send no Origin (the Node hospitals) are always let through to the hello.
   */
  ALLOWED_ORIGINS: 'ALLOWED_ORIGINS',
  /**
   * Reverse proxies (the ingress controller) in front of the server: comma-separated addresses or CIDR
   * ranges, e.g. `10.0.0.0/8`. Through them the client's address is taken from X-Forwarded-For, so the
   * per-address limits (limits.maxUnauthenticatedPerAddress, the sign-in backoff) count clients, not the proxy.
   */
  TRUSTED_PROXIES: 'TRUSTED_PROXIES',
  /**
   * `1`: when STATE_DIR holds checkpoint files but none is valid, start from the initial weights (the files
   * are renamed to *.corrupt and kept) instead of refusing to start. No effect while a valid checkpoint
   * exists. Same as `npm start -- --start-fresh`.
   */
  START_FRESH: 'START_FRESH',
  /**
   * The operator's secret (at least 16 characters): `Authorization: Bearer <it>` opens the operator console
   * (/console, /api/console/*) and, on /api/status, the full status (hospital names, who is online,
   * per-hospital progress); without the header /api/status shows only the aggregate view (server/http.ts
   * publicStatus). Without OPERATOR_TOKEN and without an `operator` entry in the tokens file, the server
   * creates an operator token on its first start, logs it once and keeps its SHA-256 in STATE_DIR/console/
   * (server/console/setup.ts).
   */
  OPERATOR_TOKEN: 'OPERATOR_TOKEN',
  /**
   * Sample grids the operator console keeps (STATE_DIR/console/samples/, one per new global model, the
   * newest kept); 0 turns their rendering off.
   */
  CONSOLE_SAMPLE_GRIDS: 'CONSOLE_SAMPLE_GRIDS',
  /** Tiles per class in each console sample grid (one row per class), 1–16. */
  CONSOLE_SAMPLES_PER_CLASS: 'CONSOLE_SAMPLES_PER_CLASS',
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
  /** The console's sample grids: the newest `keep` kept, `perClass` tiles per class (CONSOLE_SAMPLE_GRIDS, CONSOLE_SAMPLES_PER_CLASS). */
  sampleGrids: { keep: 10, perClass: 4 },
} as const;

/**
 * The demo federation: what `npm start` runs with no configuration at all (neither FED_CONFIG nor
 * TOKENS_FILE: two generated demo hospitals). The default model, but 5 rounds × 50 generator steps = 250
 * steps a hospital (about 5 s of training on an H200, docs/performance.md; longer on a laptop GPU), so that
 * a try-out finishes. Far too few steps for useful tiles: a real federation sets FED_CONFIG (an empty file
 * gives the defaults, 100 rounds × 200 steps). The server says so in its log when it runs this.
 */
export const DEMO_FED_CONFIG = { rounds: 5, localSteps: 50 } as const satisfies FedConfigInput;

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
 *       maxExamples: 4000             # optional: the most examples its updates count with (the FedAvg weight)
 *     - operator: ops                 # optional: the operator's token (token or sha256) for the full /api/status
 *       sha256: 51c0…
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
  /** ALLOWED_ORIGINS, normalised (server/admission.ts parseAllowedOrigins); empty: only the server's own origin. */
  allowedOrigins: string[];
  /** TRUSTED_PROXIES (server/admission.ts parseTrustedProxies); undefined when unset. */
  trustedProxies?: TrustedProxies;
  /** START_FRESH=1 (server/state.ts CheckpointStore startFresh). */
  startFresh: boolean;
  /** OPERATOR_TOKEN: the operator's bearer token (console, full /api/status); undefined: the tokens file's, or the one created in STATE_DIR. */
  operatorToken?: string;
  /** CONSOLE_SAMPLE_GRIDS and CONSOLE_SAMPLES_PER_CLASS. */
  sampleGrids: { keep: number; perClass: number };
  fed: FedConfig;
  /** True when `fed` is DEMO_FED_CONFIG (no FED_CONFIG, no TOKENS_FILE). */
  demoFederation: boolean;
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
  const origins = parseAllowedOrigins(env[ENV.ALLOWED_ORIGINS] ?? '');
  for (const message of origins.problems) problems.push({ path: ENV.ALLOWED_ORIGINS, message });
  const allowedOrigins = origins.origins;
  const proxies = parseTrustedProxies(env[ENV.TRUSTED_PROXIES] ?? '');
  for (const message of proxies.problems) problems.push({ path: ENV.TRUSTED_PROXIES, message });
  const trustedProxies = proxies.proxies.entries.length ? proxies.proxies : undefined;
  const rawFresh = (env[ENV.START_FRESH] ?? '').trim().toLowerCase();
  const startFresh = rawFresh === '1' || rawFresh === 'true';
  if (!startFresh && rawFresh !== '' && rawFresh !== '0' && rawFresh !== 'false') {
    problems.push({ path: ENV.START_FRESH, message: `must be 1 or 0 (true or false), got "${env[ENV.START_FRESH]}"` });
  }
  const operatorToken = env[ENV.OPERATOR_TOKEN] || undefined;
  if (operatorToken !== undefined && (operatorToken.length < TOKENS_FILE_FORMAT.minTokenLength || /\s/.test(operatorToken))) {
    problems.push({
      path: ENV.OPERATOR_TOKEN,
      message: `must be at least ${TOKENS_FILE_FORMAT.minTokenLength} characters without spaces (it has ${operatorToken.length})`,
    });
  }
  const sampleGrids: { keep: number; perClass: number } = { ...DEFAULTS.sampleGrids };
  const intEnv = (name: string, min: number, max: number): number | undefined => {
    const raw = env[name];
    if (raw === undefined || raw === '') return undefined;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push({ path: name, message: `must be a whole number from ${min} to ${max}, got "${raw}"` });
      return undefined;
    }
    return n;
  };
  sampleGrids.keep = intEnv(ENV.CONSOLE_SAMPLE_GRIDS, 0, 1000) ?? sampleGrids.keep;
  sampleGrids.perClass = intEnv(ENV.CONSOLE_SAMPLES_PER_CLASS, 1, 16) ?? sampleGrids.perClass;
  if (problems.length) throw new ConfigError('environment', problems);

  let fed: FedConfig;
  const demoFederation = !fedConfigFile && !tokensFile;
  if (fedConfigFile) {
    let text: string;
    try {
      text = readFileSync(fedConfigFile, 'utf8');
    } catch (e) {
      throw new ConfigError('environment', [{ path: ENV.FED_CONFIG, message: `cannot read ${fedConfigFile}: ${(e as Error).message}` }]);
    }
    fed = parseFedConfigText(text, `${ENV.FED_CONFIG} ${fedConfigFile}`);
  } else if (demoFederation) {
    fed = parseFedConfig(DEMO_FED_CONFIG, 'demo federation config');
  } else {
    fed = parseFedConfig({}, 'default federation config');
  }
  return { port, host, stateDir, tokensFile, fedConfigFile, publicUrl, allowedOrigins, trustedProxies, startFresh, operatorToken, sampleGrids, fed, demoFederation };
}

/** The start-up log line saying which federation config the server runs, and its main figures. */
export function fedConfigNotice(settings: Pick<ServerSettings, 'fedConfigFile' | 'demoFederation' | 'fed'>): string {
  const { fed } = settings;
  const what =
    `${fed.rounds} rounds × ${fed.localSteps} local steps, ${fed.model.gan} ${fed.model.imageSize} px, aggregator ${fed.aggregator.type}, ` +
    `minAvailable ${fed.minAvailable}, minFit ${fed.minFit}, minCompletion ${fed.minCompletion}`;
  if (settings.fedConfigFile) return `federation config loaded from ${ENV.FED_CONFIG} ${settings.fedConfigFile}: ${what}`;
  if (settings.demoFederation) return `federation config: the demo federation (server/config.ts DEMO_FED_CONFIG, no file loaded): ${what}`;
  return `federation config: ${ENV.FED_CONFIG} is not set, running the defaults (docs/configuration.md): ${what}`;
}

/**
 * Refuse a federation that could never start a round: a round starts only when `minAvailable` hospitals
 * are connected at once, each hospital has one token and one live connection, so minAvailable (and minFit,
 * minCompletion, which parseFedConfig keeps at most minAvailable) cannot exceed the hospitals of the tokens file.
 */
export function checkFederationFitsTokens(fed: Pick<FedConfig, 'minAvailable' | 'minFit' | 'minCompletion'>, hospitals: number, tokensSource: string): void {
  const problems: { path: string; message: string }[] = [];
  for (const field of ['minAvailable', 'minFit', 'minCompletion'] as const) {
    if (fed[field] > hospitals) {
      problems.push({
        path: field,
        message: `is ${fed[field]} but ${tokensSource} lists only ${hospitals} hospital(s), so no round could ever start: lower ${field} or add hospitals`,
      });
    }
  }
  if (problems.length) throw new ConfigError('federation config', problems);
}

/** The log line of a server running the demo federation (DEMO_FED_CONFIG). */
export function demoFederationNotice(fed: Pick<FedConfig, 'rounds' | 'localSteps'>): string {
  return (
    `${ENV.FED_CONFIG} and ${ENV.TOKENS_FILE} are not set: running the demo federation, ${fed.rounds} rounds × ${fed.localSteps} local steps ` +
    `(${(fed.rounds * fed.localSteps).toLocaleString('en-US')} generator steps a hospital: a try-out, far too few for useful tiles). ` +
    `Set ${ENV.FED_CONFIG} for a real federation (an empty file gives the defaults: ${DEFAULT_ROUNDS} rounds × ${DEFAULT_LOCAL_STEPS} steps).`
  );
}
