/**
 * The contract between the page (main thread: renders only) and the worker (decoding, storage, training,
 * generation, networking), exposed with comlink. Events flow worker → page through one proxied callback.
 */
import type { BackendName } from '../shared/backend.ts';
import type { Verdict } from '../shared/metrics/verdict.ts';
import type { HospitalDpBudget, PrivacyPreview } from '../shared/privacy/budget.ts';
import type { ModelCardPrivacy } from './exportZip.ts';
import type { RoundComplete } from '../shared/protocol/messages.ts';
import type { MeasuredSpeed, TrainingProgress } from './localModel.ts';

export type { MeasuredSpeed, TrainingProgress };

/** What the federation trains, from the server's /api/status (or the copy saved in IndexedDB). */
export interface FederationInfo {
  classes: string[];
  imageSize: number;
  ganType: string;
  rounds: number;
  /** Rounds completed. */
  round: number;
  phase: string;
  /** Generator steps each hospital trains per round (absent in a copy saved by an older version of the app). */
  localSteps?: number;
  batchNorm: 'average' | 'local';
  minAvailable: number;
  parameters: number;
  fingerprint: string;
  /** Every how many rounds the hospitals check the global model's quality (FedConfig `quality.everyRounds`; 0: never; absent: an older server). */
  qualityEveryRounds?: number;
  /** The full GAN config (shared/config/ganConfig.ts), as the server sends it. */
  model: Record<string, unknown>;
  /** The federation's differential privacy (FedConfig `privacy.dp`) when it is on; absent: off (or an older server). */
  dp?: { clipNorm: number; noiseMultiplier?: number; targetEpsilon?: number; delta?: number };
  history: RoundRecord[];
  /** False when this is the copy saved in IndexedDB because the server could not be reached. */
  live: boolean;
  /** When it was fetched (ms since epoch). */
  fetchedAt: number;
}

/** A completed round as the page shows it: the server's round-complete message, plus when it completed. */
export type RoundRecord = Omit<RoundComplete, 'type'> & { completedAt?: string };

export interface BackendInfo {
  backend: BackendName;
  attempts: { backend: BackendName; ok: boolean; reason?: string }[];
  /** GPU adapter (navigator.gpu.requestAdapter().info), when WebGPU is available. */
  adapter?: { vendor: string; architecture: string; device: string; description: string; fallback?: boolean };
  /**
   * When WebGPU runs on a software renderer (the processor imitating a graphics card: SwiftShader,
   * llvmpipe, WARP, or an adapter the browser marks as a fallback): its name, for the page's warning.
   */
  softwareRenderer?: string;
}

export interface TileSummary {
  /** Tiles per class of the federation (0 for a class without tiles). */
  counts: Record<string, number>;
  /** Tiles stored under labels the federation does not use. */
  otherLabels: Record<string, number>;
  /** Tiles stored at another size than the federation's image size (unusable until re-imported). */
  otherSize: number;
  total: number;
  /** Images found under two or more classes, waiting for staff to choose (not trained on until then). */
  conflicts: number;
  storage?: { usage: number; quota: number; persisted: boolean };
}

/** A stored tile as the tile list shows it: `pixels` are RGB bytes, `size × size × 3`. */
export interface TileListItem {
  hash: string;
  label: string;
  /** Path of the file as imported. */
  name: string;
  size: number;
  pixels: Uint8Array;
}

/** One page of the tile list (see WorkerApi.listTiles). */
export interface TileListPage {
  /** Tiles matching the filter, on all pages. */
  total: number;
  offset: number;
  tiles: TileListItem[];
}

/** An image found under two or more classes: every class folder it was found in, the first found first. */
export interface TileConflict {
  hash: string;
  claims: { label: string; name: string }[];
  size: number;
  pixels: Uint8Array;
}

/** A file given to the importer: its path as dropped (folders included) and its bytes. */
export interface ImportItem {
  path: string;
  file: Blob;
}

export interface ImportReport {
  added: number;
  duplicates: number;
  /** Files ignored silently (operating-system files such as .DS_Store, __MACOSX/). */
  ignored: number;
  rejected: { path: string; reason: string }[];
  /**
   * Files whose image is already stored (or was taken in this import) under another class: the image is
   * kept aside as a conflict, out of training, until staff choose its class in the tile list.
   */
  conflicts: { path: string; label: string; otherLabels: string[] }[];
  /** Set when the import stopped early (e.g. storage full); what was added before stays. */
  stopped?: string;
  seconds: number;
}

/**
 * `token-in-use`: the server refused this page because another computer (another browser, another client
 * id) is connected with this hospital's token; `retryAt` is set while this page still tries again, absent
 * once it stopped trying (the page offers "Try again").
 */
export type Connection = 'offline' | 'connecting' | 'connected' | 'retrying' | 'token-in-use' | 'refused' | 'finished';
export type Activity = 'idle' | 'waiting' | 'training' | 'uploading';

/** A snapshot of this hospital's part in the federation, re-sent on every change. */
export interface FedStatus {
  /** The user asked to take part (persisted: a reload rejoins). */
  joined: boolean;
  connection: Connection;
  activity: Activity;
  hospital?: string;
  /** Rounds completed (global). */
  round: number;
  rounds: number;
  phase?: string;
  connectedHospitals?: number;
  minAvailable?: number;
  sampled?: boolean;
  /** The round this hospital is training: steps done of its localSteps, with the round's measured speed. */
  training?: TrainingProgress;
  uploadBytes?: number;
  /** When connection is 'retrying' or 'token-in-use': when the next attempt happens (ms since epoch). */
  retryAt?: number;
  lastClose?: { code: number; reason: string };
  /** Why the server refused this client (connection 'refused'), or the last training error. */
  error?: string;
  /** The last noteworthy thing (update accepted, round closed, …). */
  note?: string;
}

export type AppEvent =
  | { type: 'import-progress'; done: number; total: number; added: number; duplicates: number; rejected: number }
  | { type: 'tiles'; summary: TileSummary }
  | { type: 'federation'; info: FederationInfo }
  | { type: 'federation-unreachable'; error: string; retryAt: number; cached: boolean }
  | { type: 'status'; status: FedStatus }
  | { type: 'loss'; round: number; x: number; dLoss: number; gLoss: number }
  | { type: 'round-complete'; record: RoundRecord }
  | { type: 'samples'; round: number; classes: string[]; perClass: number; size: number; rgba: Uint8ClampedArray; width: number; height: number }
  | { type: 'export-progress'; done: number; total: number; stage: string }
  | { type: 'quality-progress'; done: number; total: number; stage: string }
  /** This computer's speed was measured (a speed check, or a round's steps). */
  | { type: 'speed'; speed: MeasuredSpeed }
  /** A speed check started (done 0), finished `done` of at most `total` steps, or ended (running false). */
  | { type: 'speed-progress'; running: boolean; done: number; total: number }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; message: string; at: number }
  /**
   * What this browser kept from before the page was (re)opened (client/activityStore.ts): the activity
   * log (oldest first) and this hospital's loss readings, so a reload or a reopened tab shows them again.
   */
  | { type: 'activity-history'; log: ActivityEntry[]; losses: LossPoint[] }
  /** This hospital's privacy budget and the ε spent and planned (client/ui/privacyPanel.ts). */
  | { type: 'privacy'; state: PrivacyState }
  /** Every event sent before it was sent (flushEvents). */
  | { type: 'flushed'; id: number };

/**
 * This hospital's differential privacy as the privacy panel shows it (shared/privacy/budget.ts
 * previewPrivacy): its own budget, the federation's settings, ε spent so far and after the planned rounds.
 */
export interface PrivacyState extends PrivacyPreview {
  /** The budget the staff set (all null: none of its own). */
  budget: HospitalDpBudget;
  /** The federation's DP settings (null: the federation does not ask for DP, or is not known yet). */
  federation: FederationInfo['dp'] | null;
  /** Rounds in the federation's plan and the next one, when known. */
  rounds: number | null;
  nextRound: number | null;
  /** Training tiles the figures are for. */
  tiles: number;
}

/** One line of the activity log. */
export interface ActivityEntry {
  level: 'info' | 'warn' | 'error';
  message: string;
  /** ms since epoch. */
  at: number;
}

/** One loss reading of this hospital's local training; x is the position in rounds (round − 1 + fraction). */
export interface LossPoint {
  round: number;
  x: number;
  dLoss: number;
  gLoss: number;
}

export interface InitOptions {
  /** The page's URL: the server is its origin (/api/status, /ws). */
  pageUrl: string;
  /** Backend preference, default WebGPU → WebGL → CPU (tests may force one with ?backend=). */
  backendOrder?: BackendName[];
}

export interface InitResult {
  backend: BackendInfo | { error: string };
  clientId: string;
  /** The token saved when the user joined (a reload rejoins with it). */
  savedToken?: string;
  joined: boolean;
}

export interface ExportResult {
  fileName: string;
  bytes: Uint8Array;
  counts: Record<string, number>;
  round: number;
  /** The latent seed (recorded in the model card; typing it in again reproduces the images). */
  seed: number;
  /** Whether the images are usable (also in the model card). */
  verdict: Verdict;
}

/** Options of an export: a seed reproduces an earlier export; without one each export draws new images. */
export interface ExportOptions {
  seed?: number;
}

/** Feature extractors the Quality panel offers (shared/features). */
export type QualityExtractor = 'inception-v3' | 'mobilenet-v2' | 'tiny';

export interface QualityOptions {
  /** Generated tiles per class. */
  perClass: number;
  extractor: QualityExtractor;
}

export interface QualityReport {
  /** Rounds completed by the global model that was checked. */
  round: number;
  extractor: { name: string; description: string };
  /** Real tiles used as the reference set, real tiles held out as the baseline, generated tiles. */
  realCount: number;
  controlCount: number;
  syntheticCount: number;
  fid: number;
  kid: { mean: number; std: number };
  /**
   * The real floor (shared/metrics/realFloor.ts): FID and KID of the held-out real tiles against the same
   * real tiles, and of as many generated tiles (`n` on each side), so the two compare.
   */
  floor: { n: number; fid: number; kid: number; syntheticFid: number; syntheticKid: number };
  memorization: {
    /** Distance of each generated tile to its nearest real tile. */
    syntheticToReal: { p5: number; median: number };
    /** The same for held-out real tiles: the baseline. */
    realToReal?: { p5: number; median: number };
  };
  diversity: Record<string, { synthetic: number | null; real: number | null }>;
  /** The generated tiles closest to a real tile, with that tile (RGB bytes at `size`). */
  closest: { distance: number; synthetic: Uint8Array; real: Uint8Array; realName: string }[];
  /** The membership-inference audit against this hospital's held-out tiles (client/qualityCheck.ts). */
  membership: QualityMembership;
  /** This hospital's differential privacy (ε its tiles spent, at δ), as on the export's model card. */
  privacy?: ModelCardPrivacy;
  size: number;
  seconds: number;
}

/** The audit hold-out (shared/privacy/auditHoldout.ts) as the Quality panel shows it. */
export interface AuditHoldoutState {
  on: boolean;
  fraction: number;
  since?: number;
  trainedBefore: boolean;
  /** This hospital's tiles at the federation's size kept out of training, and trained on. */
  heldOut: number;
  training: number;
}

export interface MembershipAttackFigures {
  name: string;
  auc: number;
  ci: { low: number; high: number; level: number } | null;
  level: 'none-detected' | 'weak' | 'clear';
  /** The result in plain words. */
  text: string;
}

/**
 * Not measured (the hold-out is off, or too few tiles on one side), with the reason in plain words; or both
 * attacks' AUCs of the tiles trained on against the held-out ones.
 */
export type QualityMembership =
  | { measured: false; reason: string; holdout: AuditHoldoutState }
  | { measured: true; ganLeaks: MembershipAttackFigures; logan: MembershipAttackFigures; members: number; nonMembers: number; holdout: AuditHoldoutState };

export interface WorkerApi {
  subscribe(listener: (e: AppEvent) => void): void;
  /**
   * Sends a 'flushed' event with this id, after every event sent before this call. Events reach the page
   * on the listener's own channel (a Comlink proxy's MessagePort) and replies on the Worker, and the two
   * are not ordered: a page that must see every event of a call before it goes on (the reset after
   * deleteAllData) waits for this event after the call's reply.
   */
  flushEvents(id: number): void;
  /** This hospital's privacy budget and ε (also pushed as `privacy` events when it changes). */
  privacyState(): Promise<PrivacyState>;
  /** Set this hospital's own privacy budget (checked; kept in IndexedDB); refused while joined. */
  setPrivacyBudget(budget: HospitalDpBudget): Promise<PrivacyState>;
  init(opts: InitOptions): Promise<InitResult>;
  refreshFederation(): Promise<FederationInfo | undefined>;
  tileSummary(): Promise<TileSummary>;
  /**
   * Hand files to the importer. The page sends them in small batches (cloning a File costs the page
   * ~0.3 ms, so thousands at once would freeze it), then starts the import with importStaged().
   */
  stageImport(items: ImportItem[]): number;
  /** Import every staged file; progress arrives as `import-progress` events. */
  importStaged(looseClass?: string): Promise<ImportReport>;
  join(token: string): Promise<void>;
  leave(): Promise<void>;
  /** Progress arrives as `export-progress` events; cancelExport() makes it reject with a JobCancelled error (client/job.ts). */
  exportSynthetic(perClass: Record<string, number>, opts?: ExportOptions): Promise<ExportResult>;
  cancelExport(): void;
  /** Whether the stored global model's images are usable (shared/metrics/verdict.ts); undefined before there is one. */
  outputVerdict(): Promise<Verdict | undefined>;
  /**
   * The speed check: a few steps of the federation's model on this hospital's tiles, timed (nothing is
   * kept); `speed-progress` events while it runs, then a `speed` event. Also run on its own when the
   * hospital joins without a speed measured for the federation's model. Refused while a round trains.
   */
  measureSpeed(): Promise<MeasuredSpeed | undefined>;
  /** Stop the speed check in progress (its Stop button); nothing is measured. */
  stopSpeedCheck(): Promise<void>;
  qualityInfo(): Promise<{ extractors: { id: QualityExtractor; label: string }[]; holdout: AuditHoldoutState }>;
  /**
   * Keep 1 tile in 10 out of training (on) for the quality check's membership audit, or train on all tiles
   * again (off); from the next round (shared/privacy/auditHoldout.ts).
   */
  setAuditHoldout(on: boolean): Promise<AuditHoldoutState>;
  runQuality(opts: QualityOptions): Promise<QualityReport>;
  /** Stop a running quality check: runQuality rejects with a JobCancelled error (client/job.ts). */
  cancelQuality(): void;
  /** Delete everything of this hospital in this browser; resolves with the new identity of the browser. */
  deleteAllData(): Promise<{ clientId: string }>;
  /** One page of the stored tiles, grouped by class; only `label`'s tiles when given. Works offline. */
  listTiles(q: { label?: string; offset: number; limit: number }): Promise<TileListPage>;
  /** Images found under two or more classes, waiting for staff's decision. */
  listConflicts(): Promise<TileConflict[]>;
  /** Give one tile another of the federation's classes. */
  relabelTile(hash: string, label: string): Promise<void>;
  /** Remove one tile (or an image waiting in a conflict) from this computer. */
  removeTile(hash: string): Promise<void>;
  /** Settle a conflict: the class the image belongs to, or null to drop the image. */
  resolveConflict(hash: string, label: string | null): Promise<void>;
}
