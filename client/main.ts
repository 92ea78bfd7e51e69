import * as Comlink from 'comlink';
import type { AppEvent, BackendInfo, FederationInfo, FedStatus, InitResult, TileSummary, WorkerApi } from './api.ts';
import { plural } from './plural.ts';
import { $, formatCount, h } from './ui/dom.ts';
import { ExportPanel } from './ui/exportPanel.ts';
import { ImportPanel } from './ui/importPanel.ts';
import { QualityPanel } from './ui/qualityPanel.ts';
import { backendOrderFromQuery } from './ui/query.ts';
import { TrainingPanel } from './ui/trainingPanel.ts';

/**
 * The page: it only renders. Decoding, storage, training, generation and the federation connection run
 * in the worker (client/worker.ts), reached through comlink; its events arrive through one proxied
 * listener.
 */

const BACKEND_LABELS: Record<string, string> = { webgpu: 'WebGPU', webgl: 'WebGL', wasm: 'WebAssembly', cpu: 'CPU' };

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
  canTrain: () => backendReady && !!summary && Object.values(summary.counts).some((n) => n > 0),
});
const imports = new ImportPanel({
  stage: (items) => api.stageImport(items),
  importStaged: (loose) => api.importStaged(loose),
  persistStorage: async () => {
    if (navigator.storage?.persist) await navigator.storage.persist();
  },
});
const exporter = new ExportPanel({ run: (perClass, opts) => api.exportSynthetic(perClass, opts), cancel: () => api.cancelExport(), verdict: () => api.outputVerdict() });
const quality = new QualityPanel({
  info: () => api.qualityInfo(),
  run: async (opts) => {
    const report = await api.runQuality(opts);
    // The export's verdict takes the new check into account.
    exporter.refreshVerdict();
    return report;
  },
  cancel: () => api.cancelQuality(),
  verdict: () => api.outputVerdict(),
});

let info: FederationInfo | undefined;
let summary: TileSummary | undefined;
let status: FedStatus | undefined;
let backendReady = false;

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

function renderJoinButtons(): void {
  const joined = !!status?.joined && status.connection !== 'refused' && status.connection !== 'offline';
  $('#join').hidden = joined;
  $('#leave').hidden = !joined || status?.connection === 'finished';
  $<HTMLInputElement>('#token').disabled = joined;
}

function onEvent(e: AppEvent): void {
  switch (e.type) {
    case 'import-progress':
      imports.progress(e);
      return;
    case 'tiles':
      summary = e.summary;
      imports.setSummary(e.summary, info);
      training.refreshEta();
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
      renderJoinButtons();
      if (e.status.connection === 'refused' && e.status.error) setMessage('#access-msg', e.status.error, 'error');
      else if (e.status.connection === 'connected') setMessage('#access-msg', `Joined as ${e.status.hospital}.`, 'ok');
      return;
    case 'loss':
      training.addLoss(e.x, e.dLoss, e.gLoss);
      return;
    case 'round-complete':
      training.addRound(e.record);
      return;
    case 'samples':
      training.samples(e);
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
    showFatal(`No training engine could start in this browser: ${b.error}. Use a recent Chrome or Edge with hardware acceleration enabled.`);
    return;
  }
  backendReady = true;
  label.textContent = BACKEND_LABELS[b.backend] ?? b.backend;
  label.dataset.backend = b.backend;
  if (b.backend === 'webgpu') {
    label.className = 'tone-ok';
    note.textContent = 'uses the graphics card (fastest)';
  } else if (b.backend === 'webgl') {
    label.className = 'tone-warn';
    note.textContent = 'slower than WebGPU: training rounds will take longer';
  } else {
    label.className = 'tone-error';
    note.textContent = 'Warning: training runs on the processor, not the graphics card, and will be very slow';
  }
  if (forcedBackend) note.textContent += ' (chosen in the page address)';
  const a = b.adapter;
  $('#adapter').textContent = a ? [a.vendor, a.architecture, a.device, a.description].filter(Boolean).join(' · ') || 'unnamed WebGPU adapter' : b.backend === 'webgpu' ? 'unnamed' : 'not available to WebGPU';
  attempts.replaceChildren(
    ...b.attempts.map((t) => h('li', { class: t.ok ? 'tone-ok' : 'tone-warn', text: `${BACKEND_LABELS[t.backend] ?? t.backend}: ${t.ok ? 'in use' : `not available — ${t.reason}`}` })),
  );
  if (b.backend !== 'webgpu') $('#backend-details').setAttribute('open', '');
}

async function join(): Promise<void> {
  const token = $<HTMLInputElement>('#token').value.trim();
  if (!token) return setMessage('#access-msg', 'Enter the access token your federation coordinator gave you.', 'error');
  if (!backendReady) return setMessage('#access-msg', 'This browser has no working training engine (see step 1), so it cannot take part.', 'error');
  const usable = summary ? Object.values(summary.counts).reduce((a, b) => a + b, 0) : 0;
  if (usable === 0) return setMessage('#access-msg', 'Import this hospital’s tiles first (step 3): training needs them.', 'error');
  setMessage('#access-msg', 'Connecting…');
  try {
    await api.join(token);
  } catch (e) {
    setMessage('#access-msg', (e as Error).message, 'error');
  }
}

async function deleteData(): Promise<void> {
  const n = summary?.total ?? 0;
  const ok = window.confirm(
    `Delete all data of this hospital from this browser?\n\n• ${formatCount(n)} tiles\n• the saved models and the access token\n• this browser’s federation identity\n\nThis cannot be undone. Nothing is deleted on the server.`,
  );
  if (!ok) return setMessage('#delete-msg', 'Nothing was deleted.');
  $<HTMLButtonElement>('#delete').disabled = true;
  try {
    await api.deleteAllData();
    training.reset();
    $<HTMLInputElement>('#token').value = '';
    setMessage('#access-msg', '');
    $('#import-report').replaceChildren();
    setMessage('#delete-msg', 'All local data was deleted.', 'ok');
  } catch (e) {
    setMessage('#delete-msg', `Deleting failed: ${(e as Error).message}`, 'error');
  } finally {
    $<HTMLButtonElement>('#delete').disabled = false;
  }
}

async function start(): Promise<void> {
  $('#access-form').addEventListener('submit', (e) => {
    e.preventDefault();
    void join();
  });
  $('#leave').addEventListener('click', () => void api.leave());
  $('#delete').addEventListener('click', () => void deleteData());
  const show = $('#show-token');
  show.addEventListener('click', () => {
    const input = $<HTMLInputElement>('#token');
    const visible = input.type === 'text';
    input.type = visible ? 'password' : 'text';
    show.textContent = visible ? 'Show' : 'Hide';
    show.setAttribute('aria-pressed', String(!visible));
  });

  // A join link (?token=…) fills the token, then the token is removed from the address bar and history.
  const query = new URLSearchParams(location.search);
  const linkToken = query.get('token');
  if (linkToken) {
    $<HTMLInputElement>('#token').value = linkToken;
    query.delete('token');
    const rest = query.toString();
    history.replaceState(null, '', `${location.pathname}${rest ? `?${rest}` : ''}${location.hash}`);
  }

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
  $('#footer').textContent = `Federation server: ${location.origin} · this browser’s identity: ${res.clientId}`;
  void quality.init();
  if (res.joined && res.savedToken && backendReady) {
    // Joined before this reload: rejoin with the same identity.
    if (!linkToken) $<HTMLInputElement>('#token').value = res.savedToken;
    setMessage('#access-msg', 'Rejoining the federation…');
    await api.join(linkToken ?? res.savedToken);
  }
  document.body.dataset.ready = 'true';
}

void start();
