/// <reference lib="webworker" />
import * as Comlink from 'comlink';
import { ActivityStore, type TrainingTask } from './activityStore.ts';
import { speedCheckSteps } from '../shared/fed/eta.ts';
import { newClientId } from '../shared/protocol/federationClient.ts';
import type { AppEvent, ExportOptions, ExportResult, FederationInfo, FedStatus, ImportItem, ImportReport, InitOptions, TileConflict, TileListPage, InitResult, MeasuredSpeed, QualityExtractor, QualityOptions, QualityReport, TileSummary, WorkerApi, AuditHoldoutState } from './api.ts';
import { webAppAgent } from './agent.ts';
import { chooseBackend } from './backendInfo.ts';
import type { BackendName } from '../shared/backend.ts';
import { WASM_PATHS } from './wasmPaths.ts';
import { fetchFederationInfo } from './federationInfo.ts';
import { GlobalModel } from './globalModel.ts';
import { LocalModel } from './localModel.ts';
import { StoredLocalWeights } from './localWeights.ts';
import { Participation } from './participation.ts';
import { reconnectFromQuery } from './ui/query.ts';
import { plural } from './plural.ts';
import { EXTRACTORS, runQualityCheck, TEST_EXTRACTOR } from './qualityCheck.ts';
import { auditHoldoutState, trainingTiles, writeAuditHoldout } from './auditHoldout.ts';
import { isCancelled } from './job.ts';
import { checkFiguresOf, judgeOutput, latestProbe, type CheckFigures, type ProbeFigure, type Verdict } from '../shared/metrics/verdict.ts';
import { drawSamples } from './samplePreview.ts';
import { exportSynthetic, modelCardPrivacy } from './syntheticExport.ts';
import { importTiles } from './tileImport.ts';
import { DeleteBlockedError, TileStore, type StoredModel } from './tileStore.ts';
import type { BatchNormPolicy } from '../shared/fed/batchNormPolicy.ts';
import { parseGanConfig } from '../shared/config/ganConfig.ts';
import { hasOwnBudget, NO_HOSPITAL_BUDGET, parseHospitalDpBudget, previewPrivacy, type DpRoundPlan, type HospitalDpBudget, type LedgerEntry, type PrivacyLedgerStore } from '../shared/privacy/budget.ts';
import type { PrivacyState } from './api.ts';
import { readAuditHoldout } from './auditHoldout.ts';

/** IndexedDB meta keys of this hospital's privacy budget and ledger (the rounds it trained with DP). */
const PRIVACY_BUDGET_META = 'privacyBudget';
const PRIVACY_LEDGER_META = 'privacyLedger';

/**
 * The web app's worker: everything but rendering. It owns IndexedDB, the tfjs backend (WebGPU → WebGL →
 * WebAssembly → CPU), the federation WebSocket and the models; the page talks to it through comlink and hears back
 * through one proxied listener.
 */

class HospitalWorker implements WorkerApi {
  private listener?: (e: AppEvent) => void;
  private store?: TileStore;
  /** Local training (the federation client's TrainFn). */
  private model?: LocalModel;
  /** The federation's model for samples, export and the quality check. */
  private globalModel?: GlobalModel;
  private localWeights?: StoredLocalWeights;
  private participation?: Participation;
  private pageUrl = '';
  private clientId = '';
  private info?: FederationInfo;
  private backendName: BackendName | 'unknown' = 'unknown';
  /** WebGPU on a software renderer (backendInfo.ts softwareRenderer): said in the hello's agent. */
  private softwareRenderer = false;
  private infoRetry?: ReturnType<typeof setTimeout>;
  private infoFailures = 0;
  private importing = false;
  private staged: ImportItem[] = [];
  /** The latest measurement of this computer's speed (a speed check or a round), for the time estimates. */
  private speed?: MeasuredSpeed;
  /** The export and the quality check in progress, for their Cancel buttons. */
  private exportJob?: AbortController;
  private qualityJob?: AbortController;
  /** The activity log, loss readings and the attempt in training, kept across reloads. */
  private activity?: ActivityStore;
  /** The attempt a previous page was training when it was reloaded or closed (told on the next round). */
  private interrupted?: TrainingTask;
  /** The plan of the DP round in training (exact figures for the privacy panel), until it ends. */
  private dpPlan?: { plan: DpRoundPlan; round: number };

  subscribe(listener: (e: AppEvent) => void): void {
    this.listener = listener;
  }

  flushEvents(id: number): void {
    this.emit({ type: 'flushed', id });
  }

  private emit(e: AppEvent, transfer: Transferable[] = []): void {
    const l = this.listener;
    if (!l) return;
    try {
      const r = l(transfer.length ? Comlink.transfer(e, transfer) : e) as unknown;
      if (r instanceof Promise) r.catch(() => {});
    } catch {
      // the page went away
    }
  }

  private log(level: 'info' | 'warn' | 'error', message: string): void {
    const at = Date.now();
    this.emit({ type: 'log', level, message, at });
    void this.activity?.addLog({ level, message, at });
  }

  private get db(): TileStore {
    if (!this.store) throw new Error('the local store is not open yet');
    return this.store;
  }

  async init(opts: InitOptions): Promise<InitResult> {
    this.pageUrl = opts.pageUrl;
    // What the page showed before this reload (or before the tab was closed): the log and the loss lines.
    this.activity = await ActivityStore.open();
    const kept = await this.activity.load();
    this.interrupted = kept.task;
    if (kept.log.length || kept.losses.length) this.emit({ type: 'activity-history', log: kept.log, losses: kept.losses });
    await this.openStore();
    let backend: InitResult['backend'];
    try {
      backend = await chooseBackend(opts.backendOrder, WASM_PATHS);
      this.backendName = backend.backend;
      this.softwareRenderer = !!backend.softwareRenderer;
    } catch (e) {
      backend = { error: (e as Error).message };
    }
    // The last federation description seen, so tiles can be shown (and imported) while the server is away.
    const cached = await this.db.getMeta<FederationInfo>('federation');
    if (cached) {
      this.info = { ...cached, live: false };
      this.emit({ type: 'federation', info: this.info });
    }
    await this.refreshFederation();
    this.emit({ type: 'tiles', summary: await this.tileSummary() });
    void this.emitPrivacy();
    const stored = await this.db.getModel('global');
    if (stored && !('error' in backend)) {
      this.showSamples(stored, this.info?.batchNorm ?? 'average').catch((e: unknown) => this.log('warn', `Could not draw samples from the saved model: ${(e as Error).message}`));
    }
    const savedToken = await this.db.getMeta<string>('token');
    const joined = (await this.db.getMeta<boolean>('joined')) === true;
    return { backend, clientId: this.clientId, ...(savedToken ? { savedToken } : {}), joined };
  }

  private async openStore(): Promise<void> {
    const store = await TileStore.open(undefined, { onClosedElsewhere: () => this.closedElsewhere(store) });
    this.store = store;
    let id = await this.store.getMeta<string>('clientId');
    if (!id) {
      id = newClientId();
      await this.store.setMeta('clientId', id);
    }
    this.clientId = id;
    this.localWeights = new StoredLocalWeights(this.store);
    this.globalModel = new GlobalModel(this.store, this.localWeights);
    this.model = new LocalModel({
      // Training leaves out the tiles held out for the membership audit while staff keep them back (auditHoldout.ts).
      store: trainingTiles(this.store),
      localWeights: this.localWeights,
      // The hospital's name as the server knows it (from its welcome): it keys this hospital's seed.
      hospital: () => this.participation?.snapshot.hospital,
      // Differential privacy: the staff's budget and the privacy ledger, both in IndexedDB (they survive reloads).
      privacy: {
        budget: () => this.privacyBudget(),
        ledger: this.privacyLedger(this.store),
        onPlan: (plan, round) => {
          this.dpPlan = { plan, round };
          this.log('info', `Round ${round}: training with differential privacy (noise ${plan.noiseMultiplier.toFixed(2)}, clip ${plan.clipNorm}); ε will be ${plan.epsilonAfterRound.toFixed(2)} after this round.`);
          void this.emitPrivacy();
        },
      },
      events: {
        onTrainingProgress: (p) => this.participation?.trainingProgress(p),
        onLoss: (round, x, dLoss, gLoss) => {
          this.emit({ type: 'loss', round, x, dLoss, gLoss });
          void this.activity?.addLoss({ round, x, dLoss, gLoss });
        },
        onSpeed: (speed) => {
          this.speed = speed;
          this.emit({ type: 'speed', speed });
        },
        onProbe: (p) =>
          p.quality
            ? this.log('info', `Round ${p.round}: checked the model received against this hospital’s tiles: KID ${p.quality.kid.toPrecision(3)} (${p.quality.features}, ${p.quality.n} tiles).`)
            : this.log('warn', `Round ${p.round}: could not check the model’s quality (${p.error}); the update goes without it.`),
      },
    });
  }

  /** Another tab deletes (or upgrades) the database: this tab's store was closed to let it. */
  private closedElsewhere(store: TileStore): void {
    if (this.store !== store) return;
    this.participation?.stop();
    this.participation = undefined;
    this.log('error', 'This hospital’s data was deleted (or the app updated) in another tab or window of this browser. Reload this page to go on.');
  }

  private async showSamples(stored: StoredModel, batchNorm: BatchNormPolicy): Promise<void> {
    const s = await drawSamples(this.globalModel!, stored, batchNorm);
    this.emit({ type: 'samples', ...s }, [s.rgba.buffer]);
  }

  async refreshFederation(): Promise<FederationInfo | undefined> {
    clearTimeout(this.infoRetry);
    try {
      const info = await fetchFederationInfo(this.pageUrl);
      this.infoFailures = 0;
      const changed = !this.info || this.info.imageSize !== info.imageSize || this.info.classes.join() !== info.classes.join();
      this.info = info;
      await this.db.setMeta('federation', info);
      this.emit({ type: 'federation', info });
      void this.emitPrivacy();
      if (changed) this.emit({ type: 'tiles', summary: await this.tileSummary() });
      return info;
    } catch (e) {
      const delay = Math.min(30_000, 1000 * 2 ** this.infoFailures++);
      this.emit({ type: 'federation-unreachable', error: (e as Error).message, retryAt: Date.now() + delay, cached: !!this.info });
      this.infoRetry = setTimeout(() => void this.refreshFederation(), delay);
      return this.info;
    }
  }

  // ---- differential privacy (shared/privacy/budget.ts; the page's privacy panel) -----------------------

  private async privacyBudget(): Promise<HospitalDpBudget> {
    const b = await this.store?.getMeta<HospitalDpBudget>(PRIVACY_BUDGET_META);
    return b ? { ...NO_HOSPITAL_BUDGET, ...b } : NO_HOSPITAL_BUDGET;
  }

  /** The privacy ledger in IndexedDB: every round trained with DP, appended before its update leaves. */
  private privacyLedger(store: TileStore): PrivacyLedgerStore {
    return {
      load: async () => (await store.getMeta<LedgerEntry[]>(PRIVACY_LEDGER_META)) ?? [],
      append: async (entry) => {
        const entries = (await store.getMeta<LedgerEntry[]>(PRIVACY_LEDGER_META)) ?? [];
        await store.setMeta(PRIVACY_LEDGER_META, [...entries, entry]);
        this.dpPlan = undefined;
        void this.emitPrivacy();
      },
    };
  }

  async privacyState(): Promise<PrivacyState> {
    const store = this.db;
    const budget = await this.privacyBudget();
    const ledger = await this.privacyLedger(store).load();
    const info = this.info;
    const summary = await this.db.countsByLabel();
    let tiles = info ? info.classes.reduce((n, c) => n + (summary[c] ?? 0), 0) : 0;
    if (info && (await readAuditHoldout(store))?.on) tiles = (await auditHoldoutState(store, info.classes, info.imageSize)).training;
    const federation = info?.dp ?? null;
    let model: ReturnType<typeof parseGanConfig> | undefined;
    try {
      model = info ? parseGanConfig(info.model) : undefined;
    } catch {
      model = undefined;
    }
    const nextRound = info ? info.round + 1 : null;
    const preview = previewPrivacy({
      ...(federation ? { federation } : {}),
      own: budget,
      ledger,
      tiles: model && info?.localSteps !== undefined ? tiles : 0,
      batchSize: model?.batchSize ?? 1,
      gan: model?.gan ?? 'acgan',
      nCritic: model?.nCritic ?? 1,
      localSteps: info?.localSteps ?? 1,
      round: nextRound ?? 1,
      rounds: info?.rounds ?? 1,
    });
    // While a DP round trains, its own plan has the exact figures (the tiles it trains on).
    const p = this.dpPlan;
    const live = p ? { spent: p.plan.epsilonSpent, delta: p.plan.delta, planned: p.plan.epsilonPlanned, budgetEpsilon: p.plan.budgetEpsilon, noiseMultiplier: p.plan.noiseMultiplier, clipNorm: p.plan.clipNorm } : {};
    return { ...preview, ...live, budget, federation, rounds: info?.rounds ?? null, nextRound, tiles };
  }

  private async emitPrivacy(): Promise<void> {
    if (!this.store) return;
    try {
      this.emit({ type: 'privacy', state: await this.privacyState() });
    } catch (e) {
      this.log('warn', `Could not work out this hospital’s privacy figures: ${(e as Error).message}`);
    }
  }

  async setPrivacyBudget(budget: HospitalDpBudget): Promise<PrivacyState> {
    if (this.participation) throw new Error('leave the federation first: the privacy budget is set before joining');
    const checked = parseHospitalDpBudget(budget);
    await this.db.setMeta(PRIVACY_BUDGET_META, checked);
    const eps = checked.epsilon !== null ? `ε at most ${checked.epsilon}` : '';
    const noise = checked.noiseMultiplier !== null ? `noise at least ${checked.noiseMultiplier}` : '';
    this.log('info', eps || noise ? `Privacy budget set: ${[eps, noise].filter(Boolean).join(', ')}.` : 'Privacy budget cleared: this hospital follows the federation’s privacy settings.');
    const state = await this.privacyState();
    this.emit({ type: 'privacy', state });
    return state;
  }

  async tileSummary(): Promise<TileSummary> {
    const byLabel = await this.db.countsByLabel();
    const classes = this.info?.classes ?? [];
    const counts: Record<string, number> = {};
    const otherLabels: Record<string, number> = {};
    for (const c of classes) counts[c] = 0;
    let total = 0;
    for (const [label, n] of Object.entries(byLabel)) {
      total += n;
      if (classes.includes(label)) counts[label] = n;
      else otherLabels[label] = n;
    }
    const otherSize = this.info && total > 0 ? await this.db.countOtherSizes(this.info.imageSize) : 0;
    let storage: TileSummary['storage'];
    const nav = self.navigator as Navigator & { storage?: StorageManager };
    if (nav.storage?.estimate) {
      const est = await nav.storage.estimate();
      const persisted = nav.storage.persisted ? await nav.storage.persisted() : false;
      storage = { usage: est.usage ?? 0, quota: est.quota ?? 0, persisted };
    }
    const conflicts = await this.db.conflictCount();
    return { counts, otherLabels, otherSize, total, conflicts, ...(storage ? { storage } : {}) };
  }

  // ---- tile management (offline: IndexedDB only) -------------------------------------------------------

  async listTiles(q: { label?: string; offset: number; limit: number }): Promise<TileListPage> {
    const page = await this.db.listTiles({ ...q, limit: Math.min(200, q.limit) });
    const tiles = page.tiles.map(({ hash, label, name, size, pixels }) => ({ hash, label, name, size, pixels }));
    return Comlink.transfer({ total: page.total, offset: page.offset, tiles }, [...new Set(tiles.map((t) => t.pixels.buffer as ArrayBuffer))]);
  }

  async listConflicts(): Promise<TileConflict[]> {
    return (await this.db.listConflicts()).map(({ hash, claims, size, pixels }) => ({ hash, claims, size, pixels }));
  }

  async relabelTile(hash: string, label: string): Promise<void> {
    if (this.info && !this.info.classes.includes(label)) throw new Error(`"${label}" is not one of this federation’s classes (${this.info.classes.join(', ')})`);
    await this.tilesEdited(() => this.db.relabelTile(hash, label));
  }

  async removeTile(hash: string): Promise<void> {
    await this.tilesEdited(() => this.db.removeTile(hash));
  }

  async resolveConflict(hash: string, label: string | null): Promise<void> {
    if (label !== null && this.info && !this.info.classes.includes(label)) throw new Error(`"${label}" is not one of this federation’s classes (${this.info.classes.join(', ')})`);
    await this.tilesEdited(() => this.db.resolveConflict(hash, label));
  }

  /** A tile edit: the next round trains on the changed tiles; the page gets the new counts. */
  private async tilesEdited(edit: () => Promise<void>): Promise<void> {
    if (this.importing) throw new Error('an import is running: wait for it to finish, then change tiles');
    await edit();
    this.model?.tilesChanged();
    this.emit({ type: 'tiles', summary: await this.tileSummary() });
    void this.emitPrivacy();
  }

  stageImport(items: ImportItem[]): number {
    if (this.importing) throw new Error('an import is already running: wait for it to finish');
    this.staged.push(...items);
    return this.staged.length;
  }

  async importStaged(looseClass?: string): Promise<ImportReport> {
    if (this.importing) throw new Error('an import is already running: wait for it to finish');
    const items = this.staged;
    this.staged = [];
    const info = this.info ?? (await this.refreshFederation());
    if (!info) throw new Error('the federation’s classes and image size are not known yet (the server has not been reached): try again when it is');
    this.importing = true;
    let lastSummary = Date.now();
    try {
      const report = await importTiles(items, {
        store: this.db,
        classes: info.classes,
        size: info.imageSize,
        ...(looseClass ? { looseClass } : {}),
        onProgress: (p) => {
          this.emit({ type: 'import-progress', ...p });
          // Let the counts per class grow while a long import runs.
          const now = Date.now();
          if (now - lastSummary >= 1000) {
            lastSummary = now;
            void this.tileSummary().then((summary) => this.emit({ type: 'tiles', summary }), () => {});
          }
        },
      });
      if (report.added > 0) this.model!.tilesChanged();
      this.emit({ type: 'tiles', summary: await this.tileSummary() });
      // The privacy figures depend on the number of tiles (sampling rate, δ).
      void this.emitPrivacy();
      this.log(report.stopped ? 'warn' : 'info', `Import: ${plural(report.added, 'tile')} added, ${plural(report.duplicates, 'duplicate')} skipped, ${plural(report.rejected.length, 'file')} not imported${report.stopped ? ` (${report.stopped})` : ''}.`);
      return report;
    } finally {
      this.importing = false;
    }
  }

  async join(token: string): Promise<void> {
    token = token.trim();
    if (!token) throw new Error('enter the access token your federation coordinator gave you');
    if (this.participation) this.participation.stop();
    await this.db.setMeta('token', token);
    await this.db.setMeta('joined', true);
    const reconnect = reconnectFromQuery(new URL(this.pageUrl).searchParams.get('reconnectMaxMs'));
    const p = new Participation({
      pageUrl: this.pageUrl,
      clientId: this.clientId,
      token,
      agent: webAppAgent(this.backendName, this.softwareRenderer),
      model: this.model!,
      onStatus: (s: FedStatus) => this.emit({ type: 'status', status: s }),
      onRoundComplete: (record) => this.emit({ type: 'round-complete', record }),
      onGlobal: async (round, global) => {
        const info = this.info?.fingerprint === global.fingerprint ? this.info : await this.refreshFederation();
        if (!info) throw new Error('the federation’s model config is unknown');
        await this.showSamples(await this.globalModel!.accept(round, global, info.model), info.batchNorm);
      },
      onWelcome: () => void this.refreshFederation(),
      onRefused: () => {
        void this.db.setMeta('joined', false);
        void this.db.deleteMeta('token');
      },
      log: (level, message) => this.log(level, message),
      ...(this.interrupted ? { interrupted: this.interrupted } : {}),
      onTask: (task) => void this.activity?.setTask(task),
      ...(reconnect ? { reconnect } : {}),
    });
    this.interrupted = undefined;
    this.participation = p;
    void p.run();
    // Before the first round: how long training will take here (a round that starts stops the check).
    void this.autoSpeedCheck();
  }

  /** The speed check on joining, unless this computer's speed with the federation's model is known or it is finished. */
  private async autoSpeedCheck(): Promise<void> {
    const info = this.info;
    if (!info || this.backendName === 'unknown' || (this.speed && this.speed.fingerprint === info.fingerprint)) return;
    // A finished federation trains no more: no estimate to make (a reload after the finish rejoins it).
    if (info.phase === 'finished' || (info.rounds > 0 && info.round >= info.rounds)) return;
    try {
      await this.measureSpeed();
    } catch (e) {
      this.log('warn', `Could not measure this computer’s speed: ${(e as Error).message}`);
    }
  }

  async measureSpeed(): Promise<MeasuredSpeed | undefined> {
    const info = this.info ?? (await this.refreshFederation());
    if (!info) throw new Error('the federation’s model is not known yet (the server has not been reached)');
    const activity = this.participation?.snapshot.activity;
    if (activity === 'training' || activity === 'uploading') throw new Error('a round is training: the speed is measured from its own steps');
    const summary = await this.tileSummary();
    if (Object.values(summary.counts).reduce((a, b) => a + b, 0) === 0) throw new Error('import this hospital’s tiles first: the speed check trains on them');
    const total = speedCheckSteps();
    this.emit({ type: 'speed-progress', running: true, done: 0, total });
    try {
      // With differential privacy the rounds run DP-SGD steps (slower): the check times those.
      const dp = !!info.dp || hasOwnBudget(await this.privacyBudget());
      const speed = await this.model!.measureSpeed(info.model, (done) => this.emit({ type: 'speed-progress', running: true, done, total }), { dp });
      if (speed) this.log('info', `Speed check: ${speed.secondsPerStep.toFixed(3)} s a step with the federation’s model (${plural(speed.steps, 'timed step')}).`);
      return speed;
    } finally {
      this.emit({ type: 'speed-progress', running: false, done: 0, total });
    }
  }

  async stopSpeedCheck(): Promise<void> {
    if (!this.model?.measuring) return;
    await this.model.stopSpeedCheck();
    this.log('info', 'Speed check stopped; the training time stays unknown until it is measured.');
  }

  async leave(): Promise<void> {
    this.participation?.stop();
    this.participation = undefined;
    await this.db.setMeta('joined', false);
    this.log('info', 'Left the federation. Tiles and the model stay on this computer.');
  }

  /** What the verdict on the output is judged on (shared/metrics/verdict.ts), for the model of `round`. */
  private async verdictEvidence(round: number): Promise<{ rounds?: number; localSteps?: number; probe?: ProbeFigure; check?: CheckFigures }> {
    const info = this.info;
    const probe = latestProbe((info?.history ?? []).map((h) => ({ quality: h.quality && h.quality.round <= round ? h.quality : undefined })));
    const check = await this.db.getMeta<CheckFigures>('lastQualityCheck');
    return { ...(info ? { rounds: info.rounds } : {}), ...(info?.localSteps !== undefined ? { localSteps: info.localSteps } : {}), ...(probe ? { probe } : {}), ...(check ? { check } : {}) };
  }

  async outputVerdict(): Promise<Verdict | undefined> {
    const stored = await this.globalModel?.stored();
    if (!stored) return undefined;
    const e = await this.verdictEvidence(stored.round);
    return judgeOutput({ model: { round: stored.round, rounds: e.rounds ?? stored.round, ...(e.localSteps !== undefined ? { localSteps: e.localSteps } : {}) }, ...(e.probe ? { probe: e.probe } : {}), ...(e.check ? { check: e.check } : {}) });
  }

  async exportSynthetic(perClass: Record<string, number>, opts: ExportOptions = {}): Promise<ExportResult> {
    if (this.exportJob) throw new Error('an export is already running: wait for it or cancel it');
    const status = this.participation?.snapshot;
    const stored = await this.globalModel?.stored();
    const job = new AbortController();
    this.exportJob = job;
    try {
      const res = await exportSynthetic(
        this.globalModel!,
        perClass,
        {
          server: new URL(this.pageUrl).origin,
          ...(status?.hospital ? { hospital: status.hospital } : {}),
          batchNorm: this.info?.batchNorm ?? 'average',
          ...(await this.verdictEvidence(stored?.round ?? 0)),
          privacy: modelCardPrivacy(await this.privacyLedger(this.db).load(), (await this.privacyState()).delta),
        },
        (done, total, stage) => this.emit({ type: 'export-progress', done, total, stage }),
        { ...(opts.seed !== undefined ? { seed: opts.seed } : {}), signal: job.signal },
      );
      const date = res.card.date.slice(0, 10);
      const fileName = `synthetic-tiles-round${res.round}-${date}-seed${res.card.seed}.zip`;
      this.log('info', `Exported ${plural(Object.values(res.counts).reduce((a, b) => a + b, 0), 'synthetic tile')} from the round-${res.round} model (${(res.bytes.byteLength / 1e3).toFixed(1)} kB, seed ${res.card.seed}).`);
      return Comlink.transfer({ fileName, bytes: res.bytes, counts: res.counts, round: res.round, seed: res.card.seed, verdict: res.verdict }, [res.bytes.buffer]);
    } catch (e) {
      if (isCancelled(e)) this.log('info', 'Export cancelled; nothing was saved.');
      throw e;
    } finally {
      this.exportJob = undefined;
    }
  }

  cancelExport(): void {
    this.exportJob?.abort();
  }

  cancelQuality(): void {
    this.qualityJob?.abort();
  }

  private extractors(): { id: QualityExtractor; label: string }[] {
    const all = new URL(this.pageUrl).searchParams.get('qualityExtractors') === 'all';
    return all ? [...EXTRACTORS, TEST_EXTRACTOR] : EXTRACTORS;
  }

  async qualityInfo(): Promise<{ extractors: { id: QualityExtractor; label: string }[]; holdout: AuditHoldoutState }> {
    return { extractors: this.extractors(), holdout: await auditHoldoutState(this.db, this.info?.classes, this.info?.imageSize) };
  }

  async setAuditHoldout(on: boolean): Promise<AuditHoldoutState> {
    const setting = await writeAuditHoldout(this.db, on);
    // The next round builds its training set afresh, with or without the held-out tiles.
    this.model?.tilesChanged();
    const state = await auditHoldoutState(this.db, this.info?.classes, this.info?.imageSize);
    this.log('info', on ? `Privacy audit: ${state.heldOut} of your tiles are kept out of training from the next round${setting.trainedBefore ? ' (they were trained on in earlier rounds)' : ''}.` : 'Privacy audit: all your tiles are used in training again from the next round.');
    void this.emitPrivacy();
    return state;
  }

  async runQuality(opts: QualityOptions): Promise<QualityReport> {
    if (!this.extractors().some((e) => e.id === opts.extractor)) throw new Error(`unknown feature network "${opts.extractor}"`);
    const info = this.info;
    if (!info) throw new Error('the federation’s classes and image size are not known yet');
    if (this.qualityJob) throw new Error('a quality check is already running: wait for it or cancel it');
    const job = new AbortController();
    this.qualityJob = job;
    let report: QualityReport;
    try {
      report = await runQualityCheck({
        store: this.db,
        model: this.globalModel!,
        classes: info.classes,
        imageSize: info.imageSize,
        batchNorm: info.batchNorm,
        opts,
        onProgress: (done, total, stage) => this.emit({ type: 'quality-progress', done, total, stage }),
        signal: job.signal,
      });
    } catch (e) {
      if (isCancelled(e)) this.log('info', 'Quality check cancelled.');
      throw e;
    } finally {
      this.qualityJob = undefined;
    }
    // The export's verdict and model card use the latest check of the model (kept across reloads).
    await this.db.setMeta('lastQualityCheck', checkFiguresOf(report));
    this.log('info', `Quality check of the round-${report.round} model: FID ${report.fid.toFixed(2)}, KID ${report.kid.mean.toFixed(4)} (${report.extractor.name}, ${report.seconds.toFixed(0)} s).`);
    // ε of this hospital's tiles next to the audit (the same figure as the export's model card).
    return { ...report, privacy: modelCardPrivacy(await this.privacyLedger(this.db).load(), (await this.privacyState()).delta) };
  }

  async deleteAllData(): Promise<{ clientId: string }> {
    this.participation?.stop();
    this.participation = undefined;
    // The page starts over as a new hospital: no name, no round, no history.
    this.emit({ type: 'status', status: { joined: false, connection: 'offline', activity: 'idle', round: 0, rounds: 0 } });
    this.interrupted = undefined;
    await this.model?.reset();
    this.speed = undefined;
    this.globalModel?.reset();
    this.localWeights?.forget();
    const store = this.db;
    this.store = undefined;
    this.info = undefined;
    try {
      await store.destroy();
    } catch (e) {
      // Blocked by another tab: the browser finishes the deletion when that tab closes; the store
      // reopens (empty) then, as opening waits for the pending deletion.
      if (e instanceof DeleteBlockedError) {
        this.log('warn', `Deleting is waiting: ${e.message}`);
        void this.openStore().then(
          async () => {
            this.log('info', 'All tiles, models, the saved token and this browser’s federation identity were deleted.');
            await this.refreshFederation();
            this.emit({ type: 'tiles', summary: await this.tileSummary() });
          },
          (err: unknown) => this.log('error', `Could not reopen the local store: ${(err as Error).message}`),
        );
        await this.activity?.clear();
      }
      throw e;
    }
    await this.openStore();
    // No log line here: the page resets its log after this call and says "deleted" itself.
    await this.refreshFederation();
    this.emit({ type: 'tiles', summary: await this.tileSummary() });
    // Last: the activity log and loss lines of the old hospital (the page starts a new, empty one).
    await this.activity?.clear();
    return { clientId: this.clientId };
  }
}

Comlink.expose(new HospitalWorker());
