import { Rng } from '../rng.ts';

/**
 * Seeds of a hospital's local training (design decision D3), defined once for the browser worker, the Node
 * hospitals and the in-process simulation.
 *
 * - `hospitalSeed(modelSeed, hospitalId)`: each hospital's own seed, from the federation's model seed (the
 *   GAN config's `seed`) and the name the server knows the hospital by (the tokens-file `hospital`, the
 *   simulation's partition names). Two hospitals of one federation never share a stream.
 * - `roundSeed(hospitalSeed, round, attempt)`: the seed of one round of that hospital. A repeated attempt of
 *   a round draws fresh randomness.
 *
 * The round seed drives everything random in the round: the trainer's draws (latents, fake labels, penalty
 * weights, dropout masks) and the shuffling of the local tiles. Both are unsigned 31-bit integers (so that
 * derived seeds stay exact integers), pure functions of their inputs on every platform.
 */

/** Seeds are integers in [0, 2^31). */
const TO_UINT31 = (x: number) => x >>> 1;

export function hospitalSeed(modelSeed: number, hospitalId: string): number {
  if (!Number.isSafeInteger(modelSeed)) throw new RangeError(`the model seed must be an integer, got ${modelSeed}`);
  if (typeof hospitalId !== 'string' || hospitalId.length === 0) {
    throw new RangeError(`a hospital's seed needs the hospital's name (the name the server knows it by), got ${JSON.stringify(hospitalId)}`);
  }
  return TO_UINT31(new Rng(modelSeed).fork(`hospital:${hospitalId}`).nextUint32());
}

export function roundSeed(hospitalSeedValue: number, round: number, attempt: number): number {
  if (!Number.isSafeInteger(hospitalSeedValue)) throw new RangeError(`the hospital seed must be an integer, got ${hospitalSeedValue}`);
  for (const [name, v] of [
    ['round', round],
    ['attempt', attempt],
  ] as const) {
    if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${name} must be a whole number ≥ 0, got ${v}`);
  }
  return TO_UINT31(new Rng(hospitalSeedValue).fork(`round:${round}:attempt:${attempt}`).nextUint32());
}
