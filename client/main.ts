import * as Comlink from 'comlink';
import type { AppEvent, BackendInfo, FederationInfo, FedStatus, InitResult, TileSummary, WorkerApi } from './api.ts';
import { plural } from './plural.ts';
import { $, formatCount, h } from './ui/dom.ts';
import { ExportPanel } from './ui/exportPanel.ts';
import { ImportPanel } from './ui/importPanel.ts';
import { PrivacyPanel } from './ui/privacyPanel.ts';
import { QualityPanel } from './ui/qualityPanel.ts';
import { backendOrderFromQuery, tokenFromLink } from './ui/query.ts';
import { accessAction, ENGINE_LABELS, engineFailure, hardwareNote } from './ui/statusText.ts';
import { TrainingPanel } from './ui/trainingPanel.ts';

/**
 * The page: it only renders. Decoding, storage, training, generation and the federation connection run
 * in the worker (client/worker.ts), reached through comlink; its events arrive through one proxied
 * listener.
 */


function showFatal(message: string): void {
  const el = $('#fatal');
  el.hidden = false;
  el.textContent = message;
}

const worker = new Worker(new URL('./worker.ts', import.meta.url), { type: 'module', name: 'fedgan-worker' });
worker.addEventListener('error', (e) => showFatal(`The training engine stopped with an error: ${e.message || 'unknown error'}. Reload the page; your tiles are kept.`));
const api = Comlink.wrap<WorkerApi>(worker);

const training = new TrainingPanel({
  measureSpeed: () => api.measureSpeed(),
  stopSpeedCheck: () => api.stopSpeedCheck(),
  canTrain: () => backendReady && !!summary && Object.values(summary.counts).some((n) => n > 0),
});
const imports = new ImportPanel({
  stage: (items) => api.stageImport(items),
  // An import's report ("12 tiles added") and an edit's message ("… moved from nonMSIH to MSIH") show once
  // the page has the new tile counts, which come as an event on another channel than the reply: Join,
  // pressed as soon as the report shows, must know there are tiles, and the counts must agree with the message.
  importStaged: settled((loose?: string) => api.importStaged(loose)),
  tiles: {
    listTiles: (query) => api.listTiles(query),
    listConflicts: () => api.listConflicts(),
    relabelTile: settled((hash: string, label: string) => api.relabelTile(hash, label)),
    removeTile: settled((hash: string) => api.removeTile(hash)),
    resolveConflict: settled((hash: string, label: string | null) => api.resolveConflict(hash, label)),
  },
  persistStorage: async () => {
    if (navigator.storage?.persist) await navigator.storage.persist();
  },
});
const exporter = new ExportPanel({ run: (perClass, opts) => api.exportSynthetic(perClass, opts), cancel: () => api.cancelExport(), verdict: () => api.outputVerdict() });
const quality = new QualityPanel({
  info: () => api.qualityInfo(),
  setHoldout: (on) => api.setAuditHoldout(on),
  run: async (opts) => {
    const report = await api.runQuality(opts);
    // The export's verdict takes the new check into account.
    exporter.refreshVerdict();
    return report;
  },
  cancel: () => api.cancelQuality(),
  verdict: () => api.outputVerdict(),
});

// The hospital's differential-privacy budget and ε (client/ui/privacyPanel.ts; figures from the worker).
const privacy = new PrivacyPanel({ save: (budget) => api.setPrivacyBudget(budget) });

let info: FederationInfo | undefined;
let summary: TileSummary | undefined;
let status: FedStatus | undefined;
let backendReady = false;
/** The access step's own error (set by join()), cleared when its cause is gone. */
let accessError: 'no-tiles' | 'no-token' | 'no-engine' | 'join-failed' | undefined;
/** The user pressed Leave (or Stop trying): the next offline status says so. */
let leaving = false;

function usableTiles(): number {
  return summary ? Object.values(summary.counts).reduce((a, b) => a + b, 0) : 0;
}
function setMessage(id: string, text: string, tone: 'ok' | 'warn' | 'error' | 'neutral' = 'neutral'): void {
  const el = $(id);
  el.textContent = text;
  el.className = `msg tone-${tone}`;
}

function renderFederation(unreachable?: { error: string; retryAt: number; cached: boolean }): void {
  const el = $('#fed-summary');
  if (unreachable && !info) {
    el.replaceChildren(h('span', { class: 'tone-warn', text: `Cannot reach the federation server: ${unreachable.error}. Retrying…` }));
    return;
  }
  if (!info) return;
  const parts = `${info.classes.join(' / ')} · ${info.imageSize} px · ${info.ganType.toUpperCase()} · ${plural(info.rounds, 'round')}`;
  el.replaceChildren(parts, unreachable ? h('div', { class: 'small tone-warn', text: `Server unreachable (${unreachable.error}); showing the last known settings. Retrying…` }) : '');
}

/** The access step's buttons: every state offers its way out (Join / Try again, or Leave / Stop trying). */
function renderJoinButtons(): void {
  const a = accessAction(status);
  const join = $<HTMLButtonElement>('#join');
  join.hidden = a.action !== 'join';
  if (a.action === 'join') join.textContent = a.label;
  const leave = $<HTMLButtonElement>('#leave');
  leave.hidden = a.action !== 'stop';
  if (a.action === 'stop') leave.textContent = a.label;
  $<HTMLInputElement>('#token').disabled = a.action !== 'join';
}

/** The access step's message for the worker's status: what happened, never a stale "Connecting…". */
function renderAccessMessage(s: FedStatus): void {
  switch (s.connection) {
    case 'refused':
      if (s.error) setMessage('#access-msg', s.error, 'error');
      return;
    case 'connected':
      accessError = undefined;
      setMessage('#access-msg', `Joined as ${s.hospital}.`, 'ok');
      return;
    case 'finished':
      accessError = undefined;
      setMessage('#access-msg', `The federation is finished${s.hospital ? `; this hospital took part as ${s.hospital}` : ''}. Its final model is kept on this computer: check its quality (step 6) and export synthetic images (step 5).`);
      return;
    case 'token-in-use':
      setMessage('#access-msg', s.retryAt === undefined ? 'This hospital’s token is in use on another computer or in another browser. This page stopped trying.' : 'This hospital’s token is in use on another computer or in another browser (see step 4).', s.retryAt === undefined ? 'error' : 'warn');
      return;
    case 'retrying':
      setMessage('#access-msg', 'Waiting for the federation server to answer (see step 4). Press Leave to stop.', 'warn');
      return;
    case 'connecting':
      setMessage('#access-msg', 'Connecting to the federation server… (Leave stops it)');
      return;
    case 'offline':
      if (leaving) setMessage('#access-msg', 'You left the federation. Your tiles and the model stay on this computer; press “Join the federation” to take part again.');
      else if (!accessError) setMessage('#access-msg', '');
      leaving = false;
      return;
  }
}

function onEvent(e: AppEvent): void {
  switch (e.type) {
    case 'import-progress':
      imports.progress(e);
      return;
    case 'tiles':
      summary = e.summary;
      imports.setSummary(e.summary, info);
      training.setTiles(usableTiles() > 0);
      training.refreshEta();
      // "Import the tiles first" is over once there are tiles.
      if (accessError === 'no-tiles' && usableTiles() > 0) {
        accessError = undefined;
        setMessage('#access-msg', '');
      }
      return;
    case 'federation':
      info = e.info;
      renderFederation();
      imports.setFederation(e.info);
      exporter.setFederation(e.info);
      training.setInfo(e.info);
      return;
    case 'federation-unreachable':
      renderFederation(e);
      return;
    case 'status':
      status = e.status;
      training.setStatus(e.status);
      privacy.setJoined(e.status.joined);
      renderJoinButtons();
      renderAccessMessage(e.status);
      return;
    case 'activity-history':
      training.restoreHistory(e.log, e.losses);
      return;
    case 'loss':
      training.addLoss(e.x, e.dLoss, e.gLoss);
      return;
    case 'round-complete':
      training.addRound(e.record);
      return;
    case 'samples':
      training.samples(e);
      // A global model is here: an export error from before it (e.g. before joining) is stale.
      exporter.modelAvailable();
      return;
    case 'export-progress':
      exporter.progress(e.done, e.total, e.stage);
      return;
    case 'quality-progress':
      quality.progress(e.done, e.total, e.stage);
      return;
    case 'speed':
      training.setSpeed(e.speed);
      return;
    case 'speed-progress':
      training.speedProgress(e.running, e.done, e.total);
      return;
    case 'log':
      training.log(e.level, e.message, e.at);
      return;
    case 'privacy':
      privacy.render(e.state);
      return;
    case 'flushed':
      flushWaiters.get(e.id)?.();
      flushWaiters.delete(e.id);
      return;
  }
}

let forcedBackend = false;

function renderBackend(b: BackendInfo | { error: string }): void {
  const label = $('#backend');
  const note = $('#backend-note');
  const attempts = $('#backend-attempts');
  if ('error' in b) {
    label.textContent = 'none';
    label.className = 'tone-error';
    note.textContent = 'This browser cannot train the model.';
    attempts.replaceChildren(h('li', { text: b.error }));
    $('#backend-details').setAttribute('open', '');
    showFatal(engineFailure(b.error, forcedBackend));
    return;
  }
  backendReady = true;
  label.textContent = ENGINE_LABELS[b.backend] ?? b.backend;
  label.dataset.backend = b.backend;
  // Truthful: WebGPU on a software renderer (SwiftShader, llvmpipe, WARP) is not the fast graphics card.
  const hw = hardwareNote(b, forcedBackend);
  label.className = `tone-${hw.tone}`;
  note.textContent = hw.text;
  note.className = `note tone-${hw.tone}`;
  const a = b.adapter;
  const adapterName = a ? [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' · ') || 'unnamed WebGPU adapter' : b.backend === 'webgpu' ? 'unnamed' : 'not available to WebGPU';
  $('#adapter').textContent = b.softwareRenderer ? `none usable: ${adapterName} is a software renderer (the processor imitates a graphics card)` : adapterName;
  attempts.replaceChildren(
    ...b.attempts.map((t) => h('li', { class: t.ok ? 'tone-ok' : 'tone-warn', text: `${ENGINE_LABELS[t.backend] ?? t.backend}: ${t.ok ? 'in use' : `not available — ${t.reason}`}` })),
  );
  if (b.backend !== 'webgpu' || b.softwareRenderer) $('#backend-details').setAttribute('open', '');
}

/** Join, checking what the first step needs in the order it is needed: an engine, tiles, then the token. */
async function join(): Promise<void> {
  const fail = (kind: NonNullable<typeof accessError>, text: string) => {
    accessError = kind;
    setMessage('#access-msg', text, 'error');
  };
  if (!backendReady) return fail('no-engine', 'This browser has no working training engine (see step 1), so it cannot take part.');
  if (usableTiles() === 0) return fail('no-tiles', 'Import this hospital’s tiles first (step 3): training needs them.');
  const token = $<HTMLInputElement>('#token').value.trim();
  if (!token) return fail('no-token', 'Enter the access token your federation coordinator gave you.');
  accessError = undefined;
  leaving = false;
  setMessage('#access-msg', 'Connecting…');
  try {
    await api.join(token);
  } catch (e) {
    fail('join-failed', (e as Error).message);
  }
}

function leave(): void {
  leaving = true;
  void api.leave();
}

async function deleteData(): Promise<void> {
  const n = summary?.total ?? 0;
  const ok = window.confirm(
    `Delete all data of this hospital from this browser?\n\n• ${formatCount(n)} tiles\n• the saved models and the access token\n• this browser’s federation identity\n\nThis cannot be undone. Nothing is deleted on the server.`,
  );
  if (!ok) return setMessage('#delete-msg', 'Nothing was deleted.');
  $<HTMLButtonElement>('#delete').disabled = true;
  try {
    // The old hospital's last log lines and status may still be on their way (another channel than the
    // reply): the page is reset after them.
    const { clientId } = await settled(() => api.deleteAllData())();
    resetAfterDeletion(clientId);
    setMessage('#delete-msg', 'All local data was deleted.', 'ok');
  } catch (e) {
    setMessage('#delete-msg', `Deleting failed: ${(e as Error).message}`, 'error');
  } finally {
    $<HTMLButtonElement>('#delete').disabled = false;
  }
}

/** The page of a new hospital: no name, no round, no loss lines, no history, a new identity. */
function resetAfterDeletion(clientId: string): void {
  status = undefined;
  accessError = undefined;
  leaving = false;
  training.reset();
  renderJoinButtons();
  $<HTMLInputElement>('#token').value = '';
  setMessage('#access-msg', '');
  $('#import-report').replaceChildren();
  renderFooter(clientId);
  privacy.setJoined(false);
  void api.privacyState().then((s) => privacy.render(s), () => {});
}

/** `call`, then wait until the page has handled every event sent before its reply (see eventsHandled). */
function settled<A extends unknown[], R>(call: (...args: A) => Promise<R>): (...args: A) => Promise<R> {
  return async (...args) => {
    const result = await call(...args);
    await eventsHandled();
    return result;
  };
}

const flushWaiters = new Map<number, () => void>();
let lastFlushId = 0;
/** Resolves once the page has handled every event the worker sent before now (WorkerApi.flushEvents). */
function eventsHandled(): Promise<void> {
  const id = ++lastFlushId;
  const handled = new Promise<void>((resolve) => flushWaiters.set(id, resolve));
  void api.flushEvents(id);
  return handled;
}

function renderFooter(clientId: string): void {
  $('#footer').textContent = `Federation server: ${location.origin} · this browser’s identity: ${clientId}`;
}

async function start(): Promise<void> {
  $('#access-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void join();
  });
  $('#leave').addEventListener('click', () => leave());
  $('#token').addEventListener('input', () => {
    if (accessError === 'no-token' && $<HTMLInputElement>('#token').value.trim()) {
      accessError = undefined;
      setMessage('#access-msg', '');
    }
  });
  $('#delete').addEventListener('click', () => void deleteData());
  const show = $('#show-token');
  show.addEventListener('click', () => {
    const input = $<HTMLInputElement>('#token');
    const visible = input.type === 'text';
    input.type = visible ? 'password' : 'text';
    show.textContent = visible ? 'Show' : 'Hide';
    show.setAttribute('aria-pressed', String(!visible));
  });

  // A join link (#token=…, or an old link's ?token=…) fills the token, then the token is removed from the
  // address bar and history (client/ui/query.ts tokenFromLink).
  const link = tokenFromLink(location.href);
  const linkToken = link.token ?? null;
  if (linkToken) {
    $<HTMLInputElement>('#token').value = linkToken;
    history.replaceState(null, '', link.cleanUrl);
  }
  const query = new URLSearchParams(location.search);

  await api.subscribe(Comlink.proxy(onEvent));
  let res: InitResult;
  try {
    const backendOrder = backendOrderFromQuery(query.get('backend'));
    forcedBackend = backendOrder !== undefined;
    res = await api.init({ pageUrl: location.href, backendOrder });
  } catch (e) {
    showFatal(`The app could not start: ${(e as Error).message}`);
    return;
  }
  renderBackend(res.backend);
  training.refreshEta();
  renderFooter(res.clientId);
  void quality.init();
  void api.privacyState().then((s) => privacy.render(s), () => {});
  if (res.joined && res.savedToken && backendReady) {
    // Joined before this reload: rejoin with the same identity (the status that follows replaces this
    // message: joined, finished, unreachable, token in use…; Leave stops it meanwhile).
    if (!linkToken) $<HTMLInputElement>('#token').value = res.savedToken;
    setMessage('#access-msg', 'Rejoining the federation…');
    await api.join(linkToken ?? res.savedToken);
  }
  // What start-up sent as events (tile counts, the federation, the kept history) comes on another channel
  // than init's reply: the page is ready once it has them, so that Join knows the stored tiles.
  await eventsHandled();
  renderJoinButtons();
  document.body.dataset.ready = 'true';
}

void start();
