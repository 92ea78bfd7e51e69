/**
 * Partitioners for simulated federations: split a dataset (given by its examples' labels or
 * sites) among clients. Each returns, per client, the indices of its examples. Indices are never
 * shared between clients. All randomness comes from `seed`, so a split is reproducible.
 */
import { Rng } from '../rng.ts';

export type Labels = readonly string[] | readonly number[];
type Label = string | number;

/** A parsed partition spec (see parsePartitionSpec). */
export type PartitionSpec = { kind: 'iid' } | { kind: 'noniid'; ratio: number } | { kind: 'site'; maxClients?: number };

function checkClientCount(examples: number, clients: number): void {
  if (!Number.isSafeInteger(clients) || clients < 1) {
    throw new RangeError(`the number of hospitals must be a positive integer, got ${clients}`);
  }
  if (clients > examples) {
    throw new RangeError(
      `cannot split ${examples} tile${examples === 1 ? '' : 's'} among ${clients} hospitals (each hospital needs at least one tile)`,
    );
  }
}

function compareLabels(a: Label, b: Label): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const sa = String(a);
  const sb = String(b);
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

/** Example indices grouped by class; classes in ascending label order (numbers numerically). */
function groupByClass(labels: Labels): { classes: Label[]; members: number[][] } {
  const byLabel = new Map<Label, number[]>();
  labels.forEach((label: Label, i: number) => {
    const group = byLabel.get(label);
    if (group) group.push(i);
    else byLabel.set(label, [i]);
  });
  const classes = [...byLabel.keys()].sort(compareLabels);
  return { classes, members: classes.map((c) => byLabel.get(c)!) };
}

/**
 * IID split: stratified and shuffled. Every class is shuffled and dealt round-robin over the
 * clients (continuing from one class to the next), so client sizes differ by at most one and each
 * client's count of every class differs from the other clients' by at most one, i.e. each client's
 * class proportions match the global ones up to one example per class. Every example is used.
 * Each client's indices are returned in random order.
 */
export function partitionIID(labels: Labels, clients: number, seed: number): number[][] {
  checkClientCount(labels.length, clients);
  const rng = new Rng(seed).fork('partition-iid');
  const { members } = groupByClass(labels);
  const parts: number[][] = Array.from({ length: clients }, () => []);
  let next = rng.int(clients); // which client receives the first, possibly extra, example
  for (const group of members) {
    for (const index of rng.shuffle([...group])) {
      parts[next].push(index);
      next = next + 1 === clients ? 0 : next + 1;
    }
  }
  for (const part of parts) rng.shuffle(part);
  return parts;
}

/**
 * How many examples of each class every client gets for a common client size `size`, or null when
 * the classes cannot supply it.
 *
 * 1. Client k takes round(ratio·size) examples of its majority class `majority[k]`.
 * 2. Let R_c be what is left of class c after step 1. Each client's other size − round(ratio·size)
 *    examples are split over its non-majority classes in proportion to R_c (what a random draw from
 *    the remaining pool minus its own class would give on average), rounded by largest remainder.
 * 3. If rounding asks a class for more than R_c, single examples are moved, for the clients
 *    involved, to the non-majority class with the most spare examples.
 */
function planNonIID(counts: readonly number[], majority: readonly number[], ratio: number, size: number): number[][] | null {
  const numClasses = counts.length;
  const major = Math.round(ratio * size);
  const minor = size - major;
  const remaining = [...counts];
  for (const m of majority) remaining[m] -= major;
  if (remaining.some((r) => r < 0)) return null;
  const totalRemaining = remaining.reduce((a, b) => a + b, 0);

  const plan = majority.map((m) => {
    const row = new Array<number>(numClasses).fill(0);
    row[m] = major;
    if (minor === 0) return row;
    const pool = totalRemaining - remaining[m];
    if (pool === 0) return null;
    const others = Array.from({ length: numClasses - 1 }, (_, o) => (m + 1 + o) % numClasses);
    const exact = others.map((c) => (minor * remaining[c]) / pool);
    let assigned = 0;
    others.forEach((c, o) => {
      row[c] = Math.floor(exact[o]);
      assigned += row[c];
    });
    // Largest remainder; ties go to the class that follows the majority class most closely.
    const order = others.map((_, o) => o).sort((x, y) => exact[y] - Math.floor(exact[y]) - (exact[x] - Math.floor(exact[x])) || x - y);
    for (let i = 0; assigned < minor; i++, assigned++) row[others[order[i]]]++;
    return row;
  });
  if (plan.some((row) => row === null)) return null;
  const rows = plan as number[][];

  // Repair rounding overshoot: move units from over-asked classes to classes with spare examples.
  const spare = remaining.map((r, c) => r - rows.reduce((sum, row, k) => sum + (majority[k] === c ? 0 : row[c]), 0));
  for (let c = 0; c < numClasses; c++) {
    for (let k = 0; spare[c] < 0 && k < rows.length; k++) {
      while (spare[c] < 0 && majority[k] !== c && rows[k][c] > 0) {
        let target = -1;
        for (let t = 0; t < numClasses; t++) {
          if (t !== majority[k] && t !== c && spare[t] > 0 && (target < 0 || spare[t] > spare[target])) target = t;
        }
        if (target < 0) break;
        rows[k][c]--;
        rows[k][target]++;
        spare[c]++;
        spare[target]--;
      }
    }
    if (spare[c] < 0) return null;
  }
  return rows;
}

/**
 * Non-IID split with a dominant class per client: client k's majority class is class k mod C
 * (classes in ascending label order) and makes up round(ratio·S) of its S examples; the remaining
 * S − round(ratio·S) examples come from the other classes, in proportion to how many of each are
 * left once every client has its majority examples (see planNonIID).
 *
 * All clients get the same size S, the largest for which the classes can supply every client
 * (binary search), so each client's majority share is exactly round(ratio·S)/S, within 0.5/S of
 * `ratio` (±1 % once S ≥ 50). Examples are used at most once. Leftover examples — those not needed
 * to give every client S examples with the required mix, typically the surplus of classes that
 * are nobody's majority, or of all classes when the majority classes run out first — are left
 * out of every client; they are not redistributed, since adding them would change the ratios.
 * When several clients share a majority class (more clients than classes), they split it.
 * Each client's indices are returned in random order; which examples are chosen depends on `seed`.
 */
export function partitionNonIID(labels: Labels, clients: number, ratio: number, seed: number): number[][] {
  checkClientCount(labels.length, clients);
  checkRatio(ratio);
  const { classes, members } = groupByClass(labels);
  if (classes.length < 2 && ratio < 1) {
    throw new RangeError(`a non-IID split with ratio ${ratio} needs at least two classes, but every tile has label ${String(classes[0])}`);
  }
  const counts = members.map((m) => m.length);
  const majority = Array.from({ length: clients }, (_, k) => k % classes.length);

  // Largest feasible common size (binary search on the deterministic plan).
  let lo = 0;
  let hi = Math.floor(labels.length / clients);
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (planNonIID(counts, majority, ratio, mid)) lo = mid;
    else hi = mid - 1;
  }
  const plan = lo > 0 ? planNonIID(counts, majority, ratio, lo) : null;
  if (plan === null) {
    throw new RangeError(
      `cannot split ${labels.length} tiles among ${clients} hospitals with majority ratio ${ratio}: the classes are too small ` +
        `(class sizes: ${classes.map((c, i) => `${String(c)}=${counts[i]}`).join(', ')})`,
    );
  }

  const rng = new Rng(seed).fork('partition-noniid');
  const pools = members.map((m) => rng.shuffle([...m]));
  const taken = new Array<number>(classes.length).fill(0);
  return plan.map((row) => {
    const part: number[] = [];
    row.forEach((n, c) => {
      for (let i = 0; i < n; i++) part.push(pools[c][taken[c]++]);
    });
    return rng.shuffle(part);
  });
}

export interface SitePartition {
  /** Example indices of each client, ascending. */
  clients: number[][];
  /** The site (or merged sites, joined with "+") of each client, in the same order. */
  names: string[];
}

/**
 * One client per distinct site (e.g. the hospital a tile was scanned at), clients sorted by site
 * name. With `maxClients`, while there are too many clients the two smallest (ties: the one whose
 * name sorts first) are merged into one named "a+b"; clients are then re-sorted by name.
 */
export function partitionBySite(sites: readonly string[], opts: { maxClients?: number } = {}): SitePartition {
  if (sites.length === 0) throw new RangeError('cannot split 0 tiles among hospitals: there is no tile');
  const { maxClients } = opts;
  if (maxClients !== undefined && (!Number.isSafeInteger(maxClients) || maxClients < 1)) {
    throw new RangeError(`maxClients must be a positive integer, got ${maxClients}`);
  }
  const bySite = new Map<string, number[]>();
  sites.forEach((site, i) => {
    const group = bySite.get(site);
    if (group) group.push(i);
    else bySite.set(site, [i]);
  });
  const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  let groups = [...bySite].map(([name, indices]) => ({ name, indices })).sort(byName);

  while (maxClients !== undefined && groups.length > maxClients) {
    // groups is sorted by name, so a stable sort by size breaks ties by name.
    const [a, b] = [...groups].sort((x, y) => x.indices.length - y.indices.length);
    const merged = {
      name: [a.name, b.name].sort().join('+'),
      indices: [...a.indices, ...b.indices].sort((x, y) => x - y),
    };
    groups = [...groups.filter((g) => g !== a && g !== b), merged].sort(byName);
  }
  return { clients: groups.map((g) => g.indices), names: groups.map((g) => g.name) };
}

function checkRatio(ratio: number): void {
  if (!(Number.isFinite(ratio) && ratio > 0 && ratio <= 1)) {
    throw new RangeError(`the non-IID majority ratio must be a number in (0, 1], got ${ratio}`);
  }
}

const SPEC_HELP = 'expected "iid", "noniid:<ratio>" (e.g. "noniid:0.7") or "site" (optionally "site:<max hospitals>")';

/** A spec as parsePartitionSpec reads it back: `iid`, `noniid:<ratio>`, `site` or `site:<maxClients>`. */
export function formatPartitionSpec(p: PartitionSpec): string {
  return p.kind === 'iid' ? 'iid' : p.kind === 'noniid' ? `noniid:${p.ratio}` : p.maxClients === undefined ? 'site' : `site:${p.maxClients}`;
}

/** Parses `iid`, `noniid:<ratio>` (ratio in (0, 1]) or `site[:<maxClients>]`, case-insensitively. */
export function parsePartitionSpec(spec: string): PartitionSpec {
  const text = spec.trim().toLowerCase();
  const [kind, arg, ...rest] = text.split(':');
  if (rest.length > 0) throw new RangeError(`invalid partition spec "${spec}": too many ":" (${SPEC_HELP})`);
  switch (kind) {
    case 'iid':
      if (arg !== undefined) throw new RangeError(`invalid partition spec "${spec}": "iid" takes no parameter`);
      return { kind: 'iid' };
    case 'noniid':
    case 'non-iid': {
      if (arg === undefined || arg === '') {
        throw new RangeError(`invalid partition spec "${spec}": noniid needs a majority ratio, e.g. "noniid:0.7"`);
      }
      const ratio = /^(\d+(\.\d*)?|\.\d+)$/.test(arg) ? Number(arg) : Number.NaN;
      if (!(ratio > 0 && ratio <= 1)) {
        throw new RangeError(`invalid partition spec "${spec}": the majority ratio must be a number in (0, 1], got "${arg}"`);
      }
      return { kind: 'noniid', ratio };
    }
    case 'site': {
      if (arg === undefined) return { kind: 'site' };
      const maxClients = /^\d+$/.test(arg) ? Number(arg) : Number.NaN;
      if (!(Number.isSafeInteger(maxClients) && maxClients >= 1)) {
        throw new RangeError(`invalid partition spec "${spec}": the maximum number of hospitals must be a positive integer, got "${arg}"`);
      }
      return { kind: 'site', maxClients };
    }
    default:
      throw new RangeError(`invalid partition spec "${spec}": ${SPEC_HELP}`);
  }
}
