import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import WebSocket from 'ws';
import { encodeCheckpoint } from '../shared/checkpoint.ts';
import type { BatchNormPolicy } from '../shared/fed/batchNormPolicy.ts';
import { datasetFromTiles } from '../shared/data/dataset.ts';
import { loadProbeExtractor } from '../shared/fed/hospitalProbe.ts';
import { HospitalTraining } from '../shared/fed/hospitalTraining.ts';
import type { PartitionSpec } from '../shared/fed/partition.ts';
import type { WeightSet } from '../shared/weights.ts';
import { FederationClient, type WebSocketLike } from '../shared/protocol/federationClient.ts';
import { explainResume, explainRoundClosed, explainRoundFailed } from '../shared/protocol/explain.ts';
import type { RoundComplete } from '../shared/protocol/messages.ts';
import { CliError } from '../node/cliError.ts';
import { fileLedger } from '../node/privacyLedger.ts';
import { partitionTiles, samplesPng } from './simulation.ts';
import type { FolderTile } from '../node/tileFolder.ts';

export interface RemoteOptions {
  server: string;
  tokensFile: string;
  clients: number;
  partition: PartitionSpec;
  imageSize: number;
  classes: readonly string[];
  seed: number;
  out: string;
  /**
   * Run only this hospital (counted from 0) of the `clients` the tiles are split among, logging in with the
   * tokens file's entry of the same index: one process (one pod of an Indexed Job) per hospital. Unset: all
   * `clients` hospitals in this process.
   */
  hospitalIndex?: number;
  log: (line: string) => void;
}

/** Tokens for the simulated hospitals: the server's tokens-file format (YAML/JSON list of {hospital, token}). */
export function readTokens(path: string): { hospital: string; token: string }[] {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CliError(`cannot read tokens file ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!Array.isArray(raw)) throw new CliError(`tokens file ${path} must be a list of {hospital, token} entries`);
  const tokens = raw.filter((e): e is { hospital: string; token: string } => typeof e?.token === 'string' && typeof e?.hospital === 'string');
  if (tokens.length === 0) throw new CliError(`tokens file ${path} holds no plain tokens (entries with only sha256 cannot log in)`);
  return tokens;
}

/**
 * Which hospitals this process runs (indices into the partition and the tokens file) and their tokens:
 * all `clients` of them, or only `hospitalIndex`. Every problem is a CliError that says what to fix.
 */
export function selectHospitals(tokens: readonly { hospital: string; token: string }[], clients: number, tokensFile: string, hospitalIndex?: number): { index: number; hospital: string; token: string }[] {
  if (hospitalIndex === undefined) {
    if (tokens.length < clients) throw new CliError(`--clients ${clients} needs ${clients} tokens, ${tokensFile} has ${tokens.length}`);
    return tokens.slice(0, clients).map((t, index) => ({ index, ...t }));
  }
  if (!Number.isInteger(hospitalIndex) || hospitalIndex < 0 || hospitalIndex >= clients) {
    throw new CliError(`--hospital-index must be an integer from 0 to ${clients - 1} (one of the --clients ${clients} hospitals), got ${hospitalIndex}`);
  }
  const t = tokens[hospitalIndex];
  if (!t) {
    throw new CliError(
      `hospital index ${hospitalIndex} has no token: ${tokensFile} holds ${tokens.length} plain token(s) (indices 0 to ${tokens.length - 1}); ` +
        `an experiment of ${clients} hospitals needs ${clients}, one per hospital, in the order of the indices`,
    );
  }
  return [{ index: hospitalIndex, ...t }];
}

/**
 * Simulated hospitals that join a real federation server over WebSocket, each with its own share of the
 * tiles, using the same client library and training code as the browser.
 */
export async function runRemoteHospitals(tiles: readonly FolderTile[], opts: RemoteOptions): Promise<void> {
  const selected = selectHospitals(readTokens(opts.tokensFile), opts.clients, opts.tokensFile, opts.hospitalIndex);
  // Every process splits the tiles the same way (same seed), and takes the shares of its hospitals.
  const { indices } = partitionTiles(tiles, opts.partition, opts.clients, opts.seed);
  const completed: RoundComplete[] = [];
  // This process's first hospital stays connected when the federation finishes, to download the final
  // global model; it also reports each completed round.
  let finalGlobal: Promise<{ round: number; weights: WeightSet }> | null = null;
  // The federation's batch-norm policy, from its round config: recorded in the checkpoint, and FedBN's samples need recalibrating.
  let batchNorm: BatchNormPolicy = 'average';
  const hospitals = selected.map(({ index, hospital, token }, i) => {
    const idx = indices[index];
    const data = datasetFromTiles(idx.map((j) => tiles[j]), opts.imageSize, opts.classes.length);
    // Each hospital trains under the name the server knows it by: its seed is keyed by that name (D3).
    // Rounds that ask for a quality probe (RoundConfig quality) get one, on the network they name (loaded once).
    const training = new HospitalTraining({
      hospital,
      data,
      probeFeatures: loadProbeExtractor,
      onProbeError: (e, round) => opts.log(`${hospital}: no quality probe in round ${round}: ${e.message}`),
      // Under the federation's DP (privacy.dp) the rounds this hospital trained, hence its ε, survive a restart.
      privacy: { budget: () => null, ledger: fileLedger(join(resolve(opts.out), `privacy-${hospital}.json`)) },
    });
    const client: FederationClient = new FederationClient({
      url: opts.server,
      token,
      clientId: `sim-${hospital}`,
      agent: 'fedgan-simulate',
      stopWhenFinished: i !== 0,
      createSocket: (url, protocols) => new WebSocket(url, protocols) as unknown as WebSocketLike,
      // The shared hospital round (shared/fed/hospitalTraining.ts), fed exactly what the server sent.
      train: async (global, cfg, progress, signal) => {
        if (cfg.imageSize !== opts.imageSize) throw new Error(`the server trains at ${cfg.imageSize} px; run with --image-size ${cfg.imageSize}`);
        const r = await training.train(global, cfg, { signal, onProgress: (p) => progress(p.fraction) });
        return { weights: r.weights, examples: r.examples, dLoss: r.dLoss, gLoss: r.gLoss, ...(r.quality ? { quality: r.quality } : {}), ...(r.privacy ? { privacy: r.privacy } : {}) };
      },
      onEvent: (e) => {
        const who = hospital;
        if (e.type === 'round-start') batchNorm = e.config.batchNorm;
        if (e.type === 'round-start' && e.resumed) opts.log(`${who}: ${explainResume(e.config)}`);
        else if (e.type === 'round-start') opts.log(`${who}: training round ${e.config.round} (${idx.length} tiles)`);
        else if (e.type === 'accepted') opts.log(`${who}: update for round ${e.round} accepted`);
        else if (e.type === 'round-complete' && i === 0) {
          completed.push(e.message);
          const q = e.message.quality;
          opts.log(
            `round ${e.message.round} complete: ${e.message.participants} hospitals, D ${e.message.dLoss.toFixed(3)} G ${e.message.gLoss.toFixed(3)}, ${e.message.seconds.toFixed(1)} s` +
              (q ? `; quality of the round-${q.round} model: KID ${q.kid.toPrecision(4)} (${q.features}, ${q.hospitals} hospital(s))` : ''),
          );
        } else if (e.type === 'disconnected') opts.log(`${who}: disconnected (${e.code} ${e.reason})${e.retryInMs !== null ? `, retrying in ${e.retryInMs} ms` : ''}`);
        else if (e.type === 'server-error') opts.log(`${who}: server says ${e.error.message}`);
        // Every hospital hears of a failed round; say it once, in plain words, with what comes next.
        else if (e.type === 'round-failed' && i === 0) opts.log(explainRoundFailed(e.message));
        else if (e.type === 'round-closed') opts.log(`${who}: ${explainRoundClosed(e.message)}`);
        else if (e.type === 'round-declined') opts.log(`${who}: declined round ${e.round}: ${e.reason}`);
        else if (e.type === 'invalid-message') opts.log(`${who}: ignored an invalid message from the server: ${e.error}`);
        else if (e.type === 'finished' && i === 0) {
          finalGlobal = client.fetchGlobal();
          finalGlobal.finally(() => client.stop()).catch(() => {});
        }
      },
    });
    return { client, training, data };
  });
  try {
    await Promise.all(hospitals.map((h) => h.client.run()));
    if (!finalGlobal) throw new CliError(`left the federation at ${opts.server} before it finished`);
    const { round, weights } = await (finalGlobal as Promise<{ round: number; weights: WeightSet }>);
    const model = hospitals[0].training.model?.cfg;
    const out = resolve(opts.out);
    mkdirSync(out, { recursive: true });
    if (model) {
      writeFileSync(join(out, 'checkpoint.fgw'), encodeCheckpoint(weights, { config: model, round, batchNorm, source: opts.server }));
      writeFileSync(join(out, 'samples.png'), await samplesPng(weights, model, 8, { batchNorm }));
    }
    writeFileSync(join(out, 'summary.json'), JSON.stringify({ config: { server: opts.server, clients: opts.clients, partition: opts.partition, ...(opts.hospitalIndex !== undefined ? { hospitalIndex: opts.hospitalIndex } : {}) }, rounds: completed, checkpoint: join(out, 'checkpoint.fgw') }, null, 2) + '\n');
  } finally {
    for (const h of hospitals) {
      h.client.stop();
      h.training.dispose();
      h.data.dispose();
    }
  }
}
