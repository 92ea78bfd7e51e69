import { ConfigError } from '../../shared/config/configError.ts';
import { parseFedConfig, type FedConfig } from '../../shared/config/fedConfig.ts';

/**
 * Round settings the operator may change while the federation runs (PATCH /api/console/settings): they
 * shape the next round attempt and nothing the model or a running connection depends on. A change is
 * merged into the config in force and validated by the FED_CONFIG schema itself (parseFedConfig: the same
 * ranges and cross-field rules, e.g. minFit ≤ minAvailable), then applied from the next round attempt.
 */
export const ROUND_SETTINGS = ['fraction', 'minFit', 'minAvailable', 'minCompletion', 'roundDeadlineSeconds', 'localSteps', 'aggregator', 'maxUpdateNorm', 'examples'] as const;
export type RoundSettingKey = (typeof ROUND_SETTINGS)[number];
export type RoundSettings = Pick<FedConfig, RoundSettingKey>;

/** Why each other top-level field of the federation config cannot change while the server runs. */
export const FIXED_SETTINGS: Record<string, string> = {
  model:
    'would break the model: the architecture, image size and every GAN setting are fixed by the checkpoints and by what the hospitals train (start a new federation with another STATE_DIR to change them)',
  batchNorm: 'would break the model: the batch-norm policy is recorded in every checkpoint and decides what the hospitals keep local',
  rounds: 'set the number of rounds with POST /api/console/rounds',
  limits: 'connection limits are set when the server starts: change them in FED_CONFIG and restart',
  keepCheckpoints: 'the checkpoint rotation is set when the server starts: change it in FED_CONFIG and restart',
  quality: 'the quality probe must stay the same for its curve to be comparable: change it in FED_CONFIG and restart',
  retry: 'the retry backoff is set when the server starts: change it in FED_CONFIG and restart',
  seed: 'the sampling seed keeps a federation reproducible: change it in FED_CONFIG and restart',
  privacy: 'privacy settings fix what each hospital has agreed to spend: change them in FED_CONFIG and restart',
};

export function roundSettingsOf(fed: FedConfig): RoundSettings {
  return {
    fraction: fed.fraction,
    minFit: fed.minFit,
    minAvailable: fed.minAvailable,
    minCompletion: fed.minCompletion,
    roundDeadlineSeconds: fed.roundDeadlineSeconds,
    localSteps: fed.localSteps,
    aggregator: { ...fed.aggregator },
    maxUpdateNorm: fed.maxUpdateNorm,
    examples: { ...fed.examples },
  };
}

export interface SettingsProblem {
  path: string;
  message: string;
}

export type SettingsVerdict = { ok: true; fed: FedConfig; changed: Partial<RoundSettings> } | { ok: false; problems: SettingsProblem[] };

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `base` with `patch` merged in, object fields field by field (a patch `{aggregator: {beta: 0.2}}` keeps the type). */
export function mergeSettings(base: Record<string, unknown>, patch: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(patch)) out[k] = isPlainObject(v) && isPlainObject(base[k]) ? mergeSettings(base[k] as Record<string, unknown>, v) : v;
  return out;
}

/**
 * Validate a settings change against the config in force: only ROUND_SETTINGS may appear (others are
 * refused with the reason in FIXED_SETTINGS), the merged config must pass the FED_CONFIG schema, and
 * minAvailable cannot exceed the hospitals that have a token (`hospitals`).
 */
export function validateSettingsPatch(current: FedConfig, patch: unknown, hospitals: number): SettingsVerdict {
  if (!isPlainObject(patch)) return { ok: false, problems: [{ path: '', message: 'must be a JSON object of round settings, e.g. {"fraction": 0.5}' }] };
  const problems: SettingsProblem[] = [];
  for (const key of Object.keys(patch)) {
    if ((ROUND_SETTINGS as readonly string[]).includes(key)) continue;
    const why = FIXED_SETTINGS[key];
    problems.push({ path: key, message: why ? `cannot change while the federation runs: ${why}` : `not a setting (round settings: ${ROUND_SETTINGS.join(', ')})` });
  }
  if (!Object.keys(patch).length) problems.push({ path: '', message: `no setting given (round settings: ${ROUND_SETTINGS.join(', ')})` });
  if (problems.length) return { ok: false, problems };
  let fed: FedConfig;
  try {
    fed = parseFedConfig(mergeSettings(current as unknown as Record<string, unknown>, patch), 'round settings');
  } catch (e) {
    if (e instanceof ConfigError) return { ok: false, problems: e.problems };
    throw e;
  }
  if (fed.minAvailable > hospitals) {
    return { ok: false, problems: [{ path: 'minAvailable', message: `is ${fed.minAvailable} but only ${hospitals} hospital(s) have a token, so no round could ever start: add hospitals first` }] };
  }
  const before = roundSettingsOf(current);
  const after = roundSettingsOf(fed);
  const changed: Partial<RoundSettings> = {};
  for (const k of ROUND_SETTINGS) if (JSON.stringify(before[k]) !== JSON.stringify(after[k])) (changed as Record<string, unknown>)[k] = after[k];
  return { ok: true, fed, changed };
}
