import { parseGanConfig } from '../shared/config/ganConfig.ts';
import type { FederationInfo, RoundRecord } from './api.ts';

/**
 * The federation's public description from the server's `/api/status` (docs/protocol.md §8): the classes
 * and image size tiles are imported at, the GAN to build, rounds and history. A plain GET: nothing about
 * the hospital is sent.
 */

export function statusUrl(pageUrl: string): string {
  return new URL('/api/status', pageUrl).toString();
}

/** Turn the /api/status JSON into FederationInfo; throws naming what is missing. */
export function federationInfoFromStatus(json: unknown, fetchedAt = Date.now()): FederationInfo {
  const s = json as {
    phase?: string;
    round?: number;
    rounds?: number;
    fingerprint?: string;
    parameters?: number;
    config?: { model?: unknown; localSteps?: number; batchNorm?: 'average' | 'local'; minAvailable?: number; rounds?: number; quality?: { everyRounds?: unknown }; privacy?: { dp?: Record<string, unknown> } };
    history?: RoundRecord[];
  };
  if (!s || typeof s !== 'object') throw new Error('the server status is not a JSON object');
  if (s.phase === 'loading') throw new Error('the federation server is still loading its model; try again in a moment');
  if (!s.config || typeof s.config !== 'object' || !s.config.model) throw new Error('the server status has no config.model (is this a fedgan-crc federation server?)');
  const model = parseGanConfig(s.config.model, 'the server’s model config');
  return {
    classes: [...model.classes],
    imageSize: model.imageSize,
    ganType: model.gan,
    rounds: s.rounds ?? s.config.rounds ?? 0,
    round: s.round ?? 0,
    phase: s.phase ?? 'unknown',
    ...(typeof s.config.localSteps === 'number' ? { localSteps: s.config.localSteps } : {}),
    batchNorm: s.config.batchNorm ?? 'average',
    minAvailable: s.config.minAvailable ?? 0,
    parameters: s.parameters ?? 0,
    fingerprint: s.fingerprint ?? '',
    ...qualityScheduleOf(s.config.quality?.everyRounds),
    model: s.config.model as Record<string, unknown>,
    ...dpOf(s.config.privacy?.dp),
    history: Array.isArray(s.history)
      ? s.history.map((h) => ({
          round: h.round,
          participants: h.participants,
          examples: h.examples,
          dLoss: h.dLoss,
          gLoss: h.gLoss,
          seconds: h.seconds,
          completedAt: h.completedAt,
          // The quality the hospitals measured of the round-(round − 1) model, on the rounds that asked.
          ...(h.quality ? { quality: h.quality } : {}),
        }))
      : [],
    live: true,
    fetchedAt,
  };
}

/** The federation's quality schedule (FedConfig `quality.everyRounds`), when the server sent a valid one. */
function qualityScheduleOf(everyRounds: unknown): { qualityEveryRounds?: number } {
  return typeof everyRounds === 'number' && Number.isInteger(everyRounds) && everyRounds >= 0 ? { qualityEveryRounds: everyRounds } : {};
}

/** The federation's DP settings from its config's `privacy.dp` (shared/config/fedConfig.ts), when enabled. */
function dpOf(dp: Record<string, unknown> | undefined): { dp?: NonNullable<FederationInfo['dp']> } {
  if (!dp || dp.enabled !== true) return {};
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : undefined);
  const clipNorm = num(dp.clipNorm) ?? 1;
  const noiseMultiplier = num(dp.noiseMultiplier);
  const targetEpsilon = num(dp.targetEpsilon);
  const delta = num(dp.delta);
  return {
    dp: { clipNorm, ...(noiseMultiplier !== undefined ? { noiseMultiplier } : {}), ...(targetEpsilon !== undefined ? { targetEpsilon } : {}), ...(delta !== undefined ? { delta } : {}) },
  };
}

export async function fetchFederationInfo(pageUrl: string, signal?: AbortSignal): Promise<FederationInfo> {
  let res: Response;
  try {
    res = await fetch(statusUrl(pageUrl), { cache: 'no-store', signal });
  } catch (e) {
    throw new Error(`cannot reach the federation server at ${new URL(pageUrl).origin} (${(e as Error).message})`);
  }
  if (!res.ok) throw new Error(`the federation server answered ${res.status} ${res.statusText} for /api/status`);
  return federationInfoFromStatus(await res.json());
}
