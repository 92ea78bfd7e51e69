import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../shared/config/configError.ts';
import type { GanConfig } from '../shared/config/ganConfig.ts';
import type { WeightSet } from '../shared/weights.ts';
import { loadOrCreateDemoTokens, TokenStore } from './auth.ts';
import { checkFederationFitsTokens, demoFederationNotice, ENV, fedConfigNotice, loadSettings } from './config.ts';
import { consoleLogger, type Logger } from './log.ts';
import { startFederationServer, type RunningServer } from './server.ts';
import { prepareStateDir, StateDirError } from './state.ts';

/**
 * Entry point (`npm start`): configuration from the environment (server/config.ts), STATE_DIR checked,
 * tokens, then the server. An invalid configuration exits at once (code 2) with a message naming the
 * variable or field; a STATE_DIR the server cannot use (not writable, full, or holding only corrupt
 * checkpoints: server/state.ts) exits with code 1 and a message saying what is wrong and what to do.
 *
 * Flags: `--start-fresh` (same as START_FRESH=1).
 */

/** Command-line flags `npm start -- …` understands. */
export const FLAGS = { startFresh: '--start-fresh' } as const;

/** Default initial weights: the configured GAN built on the tfjs CPU backend. */
export async function defaultInitialWeights(model: GanConfig): Promise<WeightSet> {
  const tf = await import('@tensorflow/tfjs-core');
  tf.env().set('PROD', true); // no "install tfjs-node" banner: the server only initialises weights
  const { initBackend } = await import('../shared/backend.ts');
  await initBackend(['cpu']);
  const { createGan } = await import('../shared/gan/gan.ts');
  const gan = createGan(model);
  try {
    const ws = await gan.getWeightsAsync();
    // Detach from tfjs memory before disposing the model.
    return { fingerprint: ws.fingerprint, tensors: ws.tensors.map((t) => ({ name: t.name, shape: [...t.shape], data: t.data.slice() })) };
  } finally {
    gan.dispose();
  }
}

export interface MainOptions {
  env?: Record<string, string | undefined>;
  /** Command-line arguments after the script (main: none by default; runMain: process.argv.slice(2)). */
  argv?: readonly string[];
  initialWeights?: (model: GanConfig) => Promise<WeightSet>;
  log?: Logger;
}

export async function main(opts: MainOptions = {}): Promise<RunningServer> {
  const env = opts.env ?? process.env;
  const log = opts.log ?? consoleLogger;
  const settings = loadSettings(env);
  const argv = opts.argv ?? [];
  const unknown = argv.filter((a) => a !== FLAGS.startFresh);
  if (unknown.length) throw new ConfigError('command line', unknown.map((a) => ({ path: a, message: `unknown argument (known: ${FLAGS.startFresh})` })));
  const startFresh = settings.startFresh || argv.includes(FLAGS.startFresh);
  if (settings.demoFederation) log.warn(demoFederationNotice(settings.fed));
  log.info(fedConfigNotice(settings));
  // A bad tokens file is a configuration error (exit 2), reported before STATE_DIR is touched.
  const fileTokens = settings.tokensFile ? TokenStore.fromFile(settings.tokensFile) : undefined;
  // Before anything is written there (demo tokens, checkpoints): a read-only or full volume fails here, with its reason.
  await prepareStateDir(settings.stateDir);
  let tokens: TokenStore;
  let demo: { hospital: string; token: string }[] = [];
  if (settings.tokensFile && fileTokens) {
    tokens = fileTokens;
    log.info(`${tokens.hospitals.length} hospital(s) from ${ENV.TOKENS_FILE} ${settings.tokensFile}: ${tokens.hospitals.join(', ')}`);
  } else {
    const d = await loadOrCreateDemoTokens(settings.stateDir);
    tokens = d.store;
    demo = d.tokens;
    log.warn(`${ENV.TOKENS_FILE} is not set: ${d.created ? 'generated' : 'using'} demo tokens in ${d.path} for ${tokens.hospitals.join(', ')}`);
  }
  checkFederationFitsTokens(settings.fed, tokens.hospitals.length, settings.tokensFile ? `${ENV.TOKENS_FILE} ${settings.tokensFile}` : 'the demo tokens');
  log.info(
    settings.operatorToken || tokens.operatorSha256.length
      ? `operator token(s): ${[settings.operatorToken ? ENV.OPERATOR_TOKEN : '', tokens.operatorSha256.length ? `${tokens.operatorSha256.length} operator entr${tokens.operatorSha256.length === 1 ? 'y' : 'ies'} of ${ENV.TOKENS_FILE}` : ''].filter(Boolean).join(' and ')}: ` +
        `the console (/console) and the full /api/status take "Authorization: Bearer <operator token>"; /api/status shows aggregate progress without`
      : `no operator token in ${ENV.OPERATOR_TOKEN} or ${ENV.TOKENS_FILE}: the console's own operator token (created on the first start, its SHA-256 in ${settings.stateDir}/console/console.json) opens the console (/console) and the full /api/status; /api/status shows aggregate progress without`,
  );
  const server = await startFederationServer({
    fed: settings.fed,
    tokens,
    stateDir: settings.stateDir,
    port: settings.port,
    host: settings.host,
    initialWeights: opts.initialWeights ?? defaultInitialWeights,
    log,
    startFresh,
    allowedOrigins: settings.allowedOrigins,
    publicUrl: settings.publicUrl,
    trustedProxies: settings.trustedProxies,
    operatorToken: settings.operatorToken,
    tokensSource: settings.tokensFile ? 'tokens-file' : 'demo',
    sampleGrids: settings.sampleGrids,
  });
  log.info(`listening on ${settings.host}:${server.port} (${server.url}, WebSocket ${server.wsUrl}); state in ${resolve(settings.stateDir)}`);
  if (demo.length) {
    const base = (settings.publicUrl ?? `http://localhost:${server.port}`).replace(/\/+$/, '');
    // The token rides in the fragment: browsers never send it to a server, so it stays out of access logs and Referer headers.
    for (const { hospital, token } of demo) log.info(`join link for ${hospital}: ${base}/#token=${encodeURIComponent(token)}`);
  }
  return server;
}

/** Run as a process: exit 2 on a config error, 1 on any other startup failure; graceful stop on SIGTERM/SIGINT. */
export async function runMain(opts: MainOptions = {}): Promise<void> {
  let server: RunningServer;
  try {
    server = await main({ argv: process.argv.slice(2), ...opts });
    await server.ready;
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`fatal: ${e.message}`);
      process.exit(2);
    }
    if (e instanceof StateDirError) {
      console.error(`fatal: ${e.message}`);
      process.exit(1);
    }
    console.error(`fatal: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  }
  let stopping = false;
  const stop = (sig: string) => {
    if (stopping) return;
    stopping = true;
    consoleLogger.info(`${sig}: shutting down (completed rounds are checkpointed)`);
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
    setTimeout(() => process.exit(1), 5000).unref();
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  void runMain();
}
