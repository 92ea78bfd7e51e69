/**
 * The operator console (docs/console.md): sign-in with the operator token (from `/console#token=…`, then
 * removed from the address bar, or typed in; kept in sessionStorage for this tab only), then five sections
 * kept up to date by the console's live WebSocket. No worker, no tfjs: the server renders the sample grids.
 */
import { $ } from '../ui/dom.ts';
import { tokenFromLink } from '../ui/query.ts';
import { ConsoleApi, ConsoleError, LiveFeed, type LiveSocket, type LiveState, type Overview } from './api.ts';
import { AuditView } from './auditView.ts';
import { ControlView } from './controlView.ts';
import { HospitalsView } from './hospitalsView.ts';
import { ModelView } from './modelView.ts';
import { OverviewView } from './overviewView.ts';
import { Tabs } from './tabs.ts';
import { say } from './ui.ts';

const TOKEN_KEY = 'fedgan-console-token';
/** While the live socket is down, the overview is read this often. */
const POLL_MS = 5000;
/** While "The global model" is shown and the newest round has no grid yet (the server draws it after the round), its list is read this often. */
const SAMPLES_POLL_MS = 3000;

let api: ConsoleApi | null = null;
let feed: LiveFeed | null = null;
let live: LiveState = { kind: 'connecting' };
let last: Overview | null = null;
let pollTimer: ReturnType<typeof setInterval> | null = null;
let classesLoaded = false;
/** Server clock minus this computer's (ms), from the overview's serverTime: time left is counted on the server's clock. */
let skew = 0;

const currentApi = (): ConsoleApi => {
  if (!api) throw new ConsoleError('Not signed in.', 401);
  return api;
};

function onRefused(e: ConsoleError): void {
  signOut(e.message);
}

async function refresh(): Promise<void> {
  if (!api) return;
  try {
    show(await api.overview());
  } catch (e) {
    if (e instanceof ConsoleError && e.signInAgain) return onRefused(e);
    // A failed read while the socket is down: the badge already says so; the next poll tries again.
  }
}

const overviewView = new OverviewView();
const modelView = new ModelView(currentApi, onRefused);
const controlView = new ControlView(currentApi, onRefused, refresh);
const hospitalsView = new HospitalsView(currentApi, onRefused, refresh);
const auditView = new AuditView(currentApi, onRefused);
const tabs = new Tabs($('.tabs'), (id) => {
  if (!api) return;
  if (id === 'model') void modelView.refresh();
  if (id === 'audit') void auditView.refresh();
});

const now = () => Date.now() + skew;

function show(o: Overview): void {
  const prev = last;
  last = o;
  const t = o.serverTime ? Date.parse(o.serverTime) : NaN;
  if (Number.isFinite(t)) skew = t - Date.now();
  overviewView.render(o, now());
  controlView.update(o.federation, o.settings);
  hospitalsView.render(o.hospitals, now());
  auditView.addHospitals(o.hospitals.map((x) => x.name));
  if (o.classes?.length) modelView.setClasses(o.classes);
  else if (!classesLoaded) void loadClasses();
  const samplesKey = (x: Overview | null) => (x?.samples ? x.samples.map((g) => g.round).join(',') : `${x?.federation.round}:${x?.history.length}`);
  if (samplesKey(prev) !== samplesKey(o) && tabs.current === 'model') void modelView.refresh();
  if (prev && tabs.current === 'audit' && JSON.stringify(prev.federation) !== JSON.stringify(o.federation)) void auditView.refresh();
  document.body.dataset.round = String(o.federation.round);
}

/** The federation's classes from /api/status's model config, for a server whose overview does not name them (the sample grids' descriptions). */
async function loadClasses(): Promise<void> {
  classesLoaded = true;
  try {
    modelView.setClasses((await currentApi().status()).config?.model?.classes);
  } catch {
    classesLoaded = false;
  }
}

function badge(): void {
  const el = $('#live-badge');
  if (!api) {
    el.textContent = 'Not signed in';
    el.className = 'badge tone-neutral';
    return;
  }
  if (live.kind === 'live') {
    el.textContent = 'Live';
    el.className = 'badge tone-ok';
  } else if (live.kind === 'connecting') {
    el.textContent = 'Connecting…';
    el.className = 'badge tone-busy';
  } else {
    const s = Math.max(0, Math.ceil((live.retryAt - Date.now()) / 1000));
    el.textContent = `Live updates interrupted: retrying ${s > 0 ? `in ${s} s` : 'now'}`;
    el.className = 'badge tone-warn';
  }
}

function startLive(): void {
  const a = currentApi();
  const { url, protocols } = a.live();
  feed = new LiveFeed({
    url,
    protocols,
    createSocket: (u, p) => new WebSocket(u, p) as unknown as LiveSocket,
    onOverview: (o) => show(o),
    onState: (s) => {
      live = s;
      badge();
    },
    // A browser sees a refused upgrade only as a closed socket: ask over HTTP whether the token still works.
    onNeverOpened: () => void refresh(),
  });
  feed.start();
  pollTimer = setInterval(() => {
    if (live.kind !== 'live') void refresh();
  }, POLL_MS);
}

async function signIn(token: string, opts: { fromForm: boolean }): Promise<void> {
  const msg = $('#signin-msg');
  const candidate = new ConsoleApi({ origin: location.origin, token });
  say(msg, '');
  $<HTMLButtonElement>('#sign-in').disabled = true;
  let o: Overview;
  try {
    o = await candidate.overview();
  } catch (e) {
    $<HTMLButtonElement>('#sign-in').disabled = false;
    const refused = e instanceof ConsoleError && e.signInAgain;
    if (refused) sessionStorage.removeItem(TOKEN_KEY);
    showSignIn(e instanceof Error ? e.message : String(e), opts.fromForm);
    return;
  }
  $<HTMLButtonElement>('#sign-in').disabled = false;
  api = candidate;
  sessionStorage.setItem(TOKEN_KEY, token);
  $<HTMLInputElement>('#operator-token').value = '';
  $('#signin').hidden = true;
  $('#console').hidden = false;
  $('#sign-out').hidden = false;
  document.body.dataset.signedIn = 'true';
  show(o);
  const initial = location.hash.replace(/^#/, '');
  tabs.show(tabs.ids.includes(initial) ? initial : tabs.current, { focusTab: opts.fromForm });
  startLive();
  badge();
}

function showSignIn(message: string, focusInput: boolean): void {
  $('#signin').hidden = false;
  $('#console').hidden = true;
  $('#sign-out').hidden = true;
  document.body.dataset.signedIn = 'false';
  say($('#signin-msg'), message, 'error');
  badge();
  if (focusInput || message) $<HTMLInputElement>('#operator-token').focus();
}

function signOut(message = ''): void {
  feed?.stop();
  feed = null;
  if (pollTimer) clearInterval(pollTimer);
  pollTimer = null;
  api = null;
  last = null;
  classesLoaded = false;
  sessionStorage.removeItem(TOKEN_KEY);
  showSignIn(message, true);
}

function main(): void {
  $('#footer').textContent = `Federation server: ${location.origin} · the operator token is kept in this browser tab only, until you sign out or close it.`;
  $('#signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const token = $<HTMLInputElement>('#operator-token').value.trim();
    if (!token) return showSignIn('Enter the operator token.', true);
    void signIn(token, { fromForm: true });
  });
  const showButton = $<HTMLButtonElement>('#show-operator-token');
  showButton.addEventListener('click', () => {
    const input = $<HTMLInputElement>('#operator-token');
    const visible = input.type === 'text';
    input.type = visible ? 'password' : 'text';
    showButton.setAttribute('aria-pressed', String(!visible));
    showButton.textContent = visible ? 'Show' : 'Hide';
  });
  $('#sign-out').addEventListener('click', () => signOut(''));
  setInterval(() => {
    overviewView.tick(now());
    if (live.kind === 'retrying') badge();
    if (api && last && tabs.current === 'model' && modelView.latestRound < last.federation.round && Date.now() - modelView.lastLoadAt > SAMPLES_POLL_MS) void modelView.refresh();
  }, 1000);

  // A link `/console#token=…` signs in and leaves the address bar (and the history) without the token,
  // also when it is opened in a tab that already shows the console (only the fragment changes: no reload).
  const link = tokenFromLink(location.href);
  if (link.token) history.replaceState(null, '', link.cleanUrl);
  window.addEventListener('hashchange', () => {
    const again = tokenFromLink(location.href);
    if (again.token) {
      history.replaceState(null, '', again.cleanUrl);
      if (api) signOut('');
      void signIn(again.token, { fromForm: false });
      return;
    }
    const id = location.hash.replace(/^#/, '');
    if (api && tabs.ids.includes(id) && tabs.current !== id) tabs.show(id);
  });
  const token = link.token ?? sessionStorage.getItem(TOKEN_KEY);
  document.body.dataset.ready = 'true';
  if (token) void signIn(token, { fromForm: false });
  else showSignIn('', true);
}

try {
  main();
} catch (e) {
  const el = $('#fatal');
  el.hidden = false;
  el.textContent = `The console failed to start: ${e instanceof Error ? e.message : String(e)}. Reload the page.`;
}
