import { FederationClient, FederationClientError, wsUrlFromPage, type BackoffOptions, type ClientEvent, type WebSocketFactory } from '../shared/protocol/federationClient.ts';
import { explainResume, explainRoundClosed, explainRoundFailed } from '../shared/protocol/explain.ts';
import { CLOSE } from '../shared/protocol/messages.ts';
import type { FedStatus, RoundRecord } from './api.ts';
import type { LocalModel, TrainingProgress } from './localModel.ts';
import { plural } from './plural.ts';

/**
 * This hospital's membership of the federation, in the worker: the shared federation client over the
 * worker's own WebSocket (weights never cross to the page), turned into a status snapshot the page can
 * render, plus the follow-ups of each round (fetch the new global model, draw samples).
 */

export interface ParticipationDeps {
  pageUrl: string;
  clientId: string;
  token: string;
  agent: string;
  model: LocalModel;
  /** Status changed (the snapshot is a fresh object). */
  onStatus(s: FedStatus): void;
  onRoundComplete(r: RoundRecord): void;
  /** Global weights arrived (after a round or on connecting): store them and draw samples. */
  onGlobal(round: number, global: Parameters<LocalModel['train']>[0]): Promise<void>;
  /** Connected (or a round completed): refresh the public federation description (history). */
  onWelcome(): void;
  /** The server refused this client for good (bad token…): forget the saved token. */
  onRefused(message: string, code: number): void;
  log(level: 'info' | 'warn' | 'error', message: string): void;
  /**
   * The round attempt this page was training when it was last closed or reloaded (client/activityStore.ts),
   * if it never finished: the first round of this page tells staff that work was lost.
   */
  interrupted?: { round: number; attempt: number };
  /** The attempt this page trains now (persist it), or undefined once its part in it is over. */
  onTask?(task: { round: number; attempt: number } | undefined): void;
  createSocket?: WebSocketFactory;
  /** Reconnection backoff (tests shorten it). Default: the client's. */
  reconnect?: Partial<BackoffOptions>;
}

/**
 * Consecutive refusals with "token in use" (close 4009) after which this page stops trying (about 16 s
 * with the client's backoff, 0.5 + 1 + 2 + 4 + 8 s between the six; `?reconnectMaxMs=` caps the steps,
 * client/ui/query.ts): the other computer is not leaving, and trying for ever helps nobody.
 */
export const TOKEN_IN_USE_TRIES = 6;

/** How a round declined by the hospital's privacy budget starts its reason (shared/privacy/budget.ts planDpRound). */
export const PRIVACY_BUDGET_PREFIX = 'privacy budget:';

/**
 * What the page says when this computer did not train round `round`: a failure, or (not a failure) a round
 * this hospital's own privacy budget declined (shared/privacy/budget.ts).
 */
export function trainErrorText(round: number, error: string): { status: string; level: 'warn' | 'error'; log: string } {
  if (error.startsWith(PRIVACY_BUDGET_PREFIX)) {
    const why = error.slice(PRIVACY_BUDGET_PREFIX.length).trim();
    return { status: `This hospital declined round ${round} to stay within its privacy budget: ${why}.`, level: 'warn', log: `Declined round ${round} (privacy budget): ${why}.` };
  }
  return { status: `Training round ${round} failed on this computer: ${error}`, level: 'error', log: `Training round ${round} failed: ${error}` };
}

/**
 * The page starts training round `round` (attempt `attempt`; `resumed`: the server sent that attempt again
 * after this page reconnected), and a reload or a closed tab interrupted `interrupted` before: what was
 * lost, in plain words, or undefined when nothing of this round was lost.
 */
export function reloadLossMessage(interrupted: { round: number; attempt: number } | undefined, round: number, attempt: number, resumed: boolean): string | undefined {
  // The server sent the attempt again after a reconnection that was not this page's reload (a network break).
  if (!interrupted || interrupted.round !== round) return resumed ? explainResume({ round, attempt }) : undefined;
  if (interrupted.attempt === attempt) return `This page was reloaded or closed while it trained round ${round}: your work in this attempt was lost by the reload; training again.`;
  return `This page was reloaded or closed while it trained round ${round} (attempt ${interrupted.attempt}): that work was lost, and that attempt ended without it. The round is now at attempt ${attempt}; training again.`;
}

/** Plain-language explanation of a fatal refusal. */
export function refusalMessage(code: number, detail: string): string {
  switch (code) {
    case CLOSE.unauthorized:
      return 'The federation server does not recognise this access token. Check the token (or the join link) your federation coordinator gave you.';
    case CLOSE.superseded:
      return 'This hospital joined again from another tab or window of this browser, so this page stopped taking part.';
    case CLOSE.unsupportedProtocol:
      return 'This page and the federation server speak different protocol versions. Reload the page to get the current version.';
    case CLOSE.badHello:
      return `The federation server refused this page’s greeting (${detail}). Reload the page.`;
    default:
      return detail;
  }
}

export class Participation {
  private readonly client: FederationClient;
  private status: FedStatus;
  private lastEmit = 0;
  private emitTimer?: ReturnType<typeof setTimeout>;
  private fetching = false;
  private fetchAgain = false;
  private stopped = false;
  private finishing = false;
  /** Consecutive closes with "token in use". */
  private tokenInUse = 0;
  /** Whether a round started since this page opened (the reload message concerns the first one only). */
  private startedRound = false;

  constructor(private readonly deps: ParticipationDeps) {
    this.status = { joined: true, connection: 'connecting', activity: 'idle', round: 0, rounds: 0 };
    this.client = new FederationClient({
      url: wsUrlFromPage(deps.pageUrl),
      token: deps.token,
      clientId: deps.clientId,
      agent: deps.agent,
      train: deps.model.train,
      ...(deps.createSocket ? { createSocket: deps.createSocket } : {}),
      ...(deps.reconnect ? { reconnect: deps.reconnect } : {}),
      // On `finished` the final global model is fetched first, then the connection is closed (see below).
      stopWhenFinished: false,
      onEvent: (e) => this.onEvent(e),
    });
  }

  get snapshot(): FedStatus {
    return this.status;
  }

  /** Start taking part; resolves when the federation is finished or stop() is called. */
  run(): Promise<void> {
    this.emit(true);
    return this.client.run().then(
      () => {},
      (e: unknown) => {
        if (this.stopped) return;
        const code = e instanceof FederationClientError ? e.code : 0;
        const message = refusalMessage(code, e instanceof Error ? e.message : String(e));
        this.patch({ connection: 'refused', activity: 'idle', error: message, joined: false }, true);
        this.deps.log('error', message);
        this.deps.onRefused(message, code);
      },
    );
  }

  stop(): void {
    this.stopped = true;
    this.client.stop();
    this.deps.onTask?.(undefined);
    this.patch({ joined: false, connection: 'offline', activity: 'idle', training: undefined, retryAt: undefined, note: undefined, error: undefined }, true);
  }

  /** Training progress from the local model (finer than the client's progress events). */
  trainingProgress(p: TrainingProgress): void {
    this.patch({ activity: 'training', training: p });
  }

  private patch(p: Partial<FedStatus>, immediate = false): void {
    this.status = { ...this.status, ...p };
    for (const k of Object.keys(p) as (keyof FedStatus)[]) if (p[k] === undefined) delete this.status[k];
    this.emit(immediate);
  }

  /** At most ~8 snapshots a second, but transitions go out at once. */
  private emit(immediate = false): void {
    const now = Date.now();
    if (immediate || now - this.lastEmit >= 120) {
      clearTimeout(this.emitTimer);
      this.emitTimer = undefined;
      this.lastEmit = now;
      this.deps.onStatus({ ...this.status });
    } else if (!this.emitTimer) {
      this.emitTimer = setTimeout(() => this.emit(true), 120 - (now - this.lastEmit));
    }
  }

  /**
   * The server closed the connection because another computer (another client id) is connected with this
   * hospital's token: its own state, not "server unreachable"; after TOKEN_IN_USE_TRIES in a row this
   * page stops trying (the page offers "Try again").
   */
  private onTokenInUse(retryInMs: number, reason: string): void {
    this.tokenInUse++;
    const lastClose = { code: CLOSE.tokenInUse, reason };
    if (this.tokenInUse >= TOKEN_IN_USE_TRIES) {
      this.stopped = true;
      // Not from inside the connection's close handler, which schedules the next attempt after this event.
      queueMicrotask(() => this.client.stop());
      this.patch({ connection: 'token-in-use', activity: 'idle', training: undefined, retryAt: undefined, lastClose }, true);
      this.deps.log('error', `This hospital’s access token is in use on another computer or in another browser (refused ${this.tokenInUse} times in a row). This page stopped trying; press “Try again” once the other computer has left.`);
      return;
    }
    this.patch({ connection: 'token-in-use', activity: 'idle', training: undefined, retryAt: Date.now() + retryInMs, lastClose }, true);
    if (this.tokenInUse === 1) this.deps.log('warn', 'This hospital’s access token is in use on another computer or in another browser; only one may take part with it. Trying again in case it leaves.');
  }

  private fetchGlobal(): void {
    if (this.fetching) {
      this.fetchAgain = true;
      return;
    }
    this.fetching = true;
    this.client
      .fetchGlobal()
      .then(({ round, weights }) => this.deps.onGlobal(round, weights))
      .catch((e: unknown) => this.deps.log('warn', `could not get the global model: ${(e as Error).message}`))
      .finally(() => {
        this.fetching = false;
        if (this.fetchAgain) {
          this.fetchAgain = false;
          this.fetchGlobal();
        } else if (this.finishing && !this.stopped) {
          // The federation is over and its final model is saved here: leave quietly.
          this.stopped = true;
          this.client.stop();
        }
      });
  }

  private onEvent(e: ClientEvent): void {
    const d = this.deps;
    switch (e.type) {
      case 'state':
        if (e.state === 'waiting') this.patch({ activity: 'waiting', training: undefined, uploadBytes: undefined }, true);
        else if (e.state === 'training') this.patch({ activity: 'training' }, true);
        else if (e.state === 'uploading') this.patch({ activity: 'uploading' }, true);
        else if (e.state === 'connecting' && this.status.connection !== 'retrying' && this.status.connection !== 'token-in-use') this.patch({ connection: 'connecting', activity: 'idle' }, true);
        return;
      case 'connected': {
        const w = e.welcome;
        this.tokenInUse = 0;
        this.patch(
          { connection: w.phase === 'finished' ? 'finished' : 'connected', hospital: w.hospital, round: w.round, rounds: w.rounds, phase: w.phase, retryAt: undefined, lastClose: undefined, error: undefined },
          true,
        );
        d.log('info', `Connected to the federation as ${w.hospital}: ${w.round} of ${plural(w.rounds, 'round')} complete.`);
        d.onWelcome();
        // A finished federation announces itself next; the final model is fetched then.
        if (w.phase !== 'finished') this.fetchGlobal();
        return;
      }
      case 'disconnected':
        if (e.retryInMs === null) {
          if (!this.stopped && this.status.connection !== 'finished') this.patch({ lastClose: { code: e.code, reason: e.reason } }, true);
          return;
        }
        if (e.code === CLOSE.tokenInUse) return this.onTokenInUse(e.retryInMs, e.reason);
        this.tokenInUse = 0;
        this.patch({ connection: 'retrying', activity: 'idle', training: undefined, retryAt: Date.now() + e.retryInMs, lastClose: { code: e.code, reason: e.reason } }, true);
        d.log('warn', `Lost contact with the federation server (code ${e.code}${e.reason ? `: ${e.reason}` : ''}); retrying in ${Math.ceil(e.retryInMs / 1000)} s.`);
        return;
      case 'status':
        this.patch({ phase: e.status.phase, round: e.status.round, rounds: e.status.rounds, connectedHospitals: e.status.connected, minAvailable: e.status.minAvailable, sampled: e.status.sampled });
        return;
      case 'round-start': {
        const { round, attempt } = e.config;
        // A round sent again after this page reconnected (the server marks it resumed), or the first round
        // after a reload that interrupted this round: staff are told the work before it was lost.
        const resumed = e.resumed === true;
        const lost = reloadLossMessage(this.startedRound ? undefined : d.interrupted, round, attempt, resumed);
        this.startedRound = true;
        d.onTask?.({ round, attempt });
        this.patch({ activity: 'training', note: lost, error: undefined, training: { round, attempt, done: 0, total: e.config.localSteps, fraction: 0 } }, true);
        if (lost) d.log('warn', lost);
        d.log('info', `Round ${round}${attempt > 1 ? ` (attempt ${attempt})` : ''} started: training on this computer.`);
        return;
      }
      case 'uploading':
        this.patch({ activity: 'uploading', uploadBytes: e.bytes }, true);
        return;
      case 'accepted':
        d.onTask?.(undefined);
        this.patch({ note: `The server accepted this hospital’s update for round ${e.round}.` }, true);
        d.log('info', `Round ${e.round}: update accepted by the server.`);
        return;
      case 'round-complete': {
        const m = e.message;
        d.onTask?.(undefined);
        this.patch({ round: m.round, note: `Round ${m.round} complete: ${plural(m.participants, 'hospital')}, ${plural(m.examples, 'tile')} in total.` }, true);
        d.onRoundComplete({
          round: m.round,
          participants: m.participants,
          examples: m.examples,
          dLoss: m.dLoss,
          gLoss: m.gLoss,
          seconds: m.seconds,
          completedAt: new Date().toISOString(),
          // The quality of the round-(m.round − 1) model, when the round measured it (the quality chart).
          ...(m.quality ? { quality: m.quality } : {}),
        });
        d.log('info', `Round ${m.round} complete (${plural(m.participants, 'hospital')}, ${m.seconds.toFixed(1)} s).`);
        this.fetchGlobal();
        return;
      }
      case 'round-failed': {
        const text = explainRoundFailed(e.message);
        d.onTask?.(undefined);
        this.patch({ note: text }, true);
        d.log('warn', text);
        return;
      }
      case 'round-closed': {
        const text = explainRoundClosed(e.message);
        d.onTask?.(undefined);
        this.patch({ note: text, training: undefined }, true);
        d.log('warn', text);
        return;
      }
      case 'server-error':
        d.log('warn', `Server: ${e.error.code}: ${e.error.message}`);
        return;
      case 'train-error': {
        const told = trainErrorText(e.round, e.error);
        this.patch({ error: told.status }, true);
        d.log(told.level, told.log);
        return;
      }
      case 'round-declined':
        this.patch({ error: `This computer could not take part in round ${e.round}: ${e.reason}` }, true);
        d.log('error', `Declined round ${e.round}: ${e.reason}`);
        return;
      case 'invalid-message':
        d.log('warn', `Ignored an invalid message from the server: ${e.error}`);
        return;
      case 'finished':
        d.onTask?.(undefined);
        this.patch({ connection: 'finished', activity: 'idle', training: undefined, round: e.rounds, rounds: e.rounds, phase: 'finished' }, true);
        d.log('info', `The federation is finished: ${e.rounds === 1 ? 'its round is' : `all ${e.rounds} rounds are`} complete.`);
        this.finishing = true;
        this.fetchGlobal();
        return;
      case 'progress':
        return;
    }
  }
}
