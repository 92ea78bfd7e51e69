/**
 * A hospital's side of one secure-aggregation round attempt (SecAgg, Bonawitz et al. 2017, with the
 * double masking that makes dropouts safe), transport-free: the federation client (shared/protocol/
 * participation.ts) feeds it the server's messages and sends what it returns.
 *
 *   0. advertise   two fresh P-256 public keys: `c` (encrypts shares), `s` (agrees pairwise mask seeds)
 *   1. share keys  on the roster (the hospitals that advertised, each with its index 1…n, and the threshold t):
 *                  a random self-mask seed b and the `s` private scalar, each split into n Shamir shares (any t
 *                  rebuild it); each other hospital's shares sealed for it (AES-GCM, key from the `c` pair)
 *   2. masked input once the server relays the shares addressed to us (from the set U2 of hospitals that sent
 *                  theirs): y = x + PRG(b) + Σ_{v ∈ U2, v ≠ u} ±PRG(s_uv) mod 2^32 (+ when u's index < v's)
 *   3. unmasking   told who sent a masked input (U3) and who dropped out (U2 \ U3), reveal for each survivor
 *                  its share of b and for each dropped hospital its share of the `s` scalar — never both for
 *                  the same hospital, and only once, so the server can rebuild the sum and nothing else.
 *
 * The server learns only Σ x over U3: each y is uniformly random to it (the self mask is unknown until
 * after y arrives, and only for survivors; the pairwise masks of a dropped hospital cancel nothing it could
 * use, because its y never counts). Each check refuses (throws SecAggError) what an honest server never sends.
 */
import { fromBase64, randomBytes, toBase64, utf8 } from './bytes.ts';
import { agreeKey, exportPrivateScalar, generateAgreementKeys, importPublicKey, open, seal, type AgreementKeys } from './keys.ts';
import { applyMask } from './prg.ts';
import { splitSecret } from './shamir.ts';

export class SecAggError extends Error {}

export interface RosterMember {
  hospital: string;
  /** 1-based; the Shamir evaluation point of the hospital's shares. */
  index: number;
  /** base64 of the raw P-256 public keys. */
  cPk: string;
  sPk: string;
}

export interface Roster {
  threshold: number;
  members: RosterMember[];
}

export interface SealedShare {
  /** Receiver (client → server) or sender (server → client). */
  peer: string;
  /** base64 of the AES-GCM sealed share pair. */
  data: string;
}

export interface RevealedShare {
  /** The hospital whose secret this is a share of. */
  of: string;
  /** `seed`: of its self-mask seed (it is a survivor); `key`: of its mask private key (it dropped out). */
  kind: 'seed' | 'key';
  /** base64 of the Shamir share. */
  data: string;
}

/** HKDF labels: purpose and round attempt, so no key serves twice. */
export const maskLabel = (round: number, attempt: number) => `fedgan secagg mask r${round} a${attempt}`;
export const shareLabel = (round: number, attempt: number) => `fedgan secagg share r${round} a${attempt}`;
/** Associated data of a sealed share: it opens only as this sender → receiver message of this attempt. */
export const shareContext = (round: number, attempt: number, from: string, to: string) => `r${round}/a${attempt}/${JSON.stringify(from)}->${JSON.stringify(to)}`;

/** Check a roster: every member once, indices 1…n, keys valid and distinct, 2 ≤ t ≤ n. Returns the members by name. */
export async function checkRoster(roster: Roster): Promise<Map<string, RosterMember>> {
  const n = roster.members.length;
  const t = roster.threshold;
  if (!Number.isInteger(t) || t < 2 || t > n) throw new SecAggError(`the roster's threshold must be in 2…${n} (its size), got ${t}`);
  const byName = new Map<string, RosterMember>();
  const indices = new Set<number>();
  const keys = new Set<string>();
  for (const m of roster.members) {
    if (byName.has(m.hospital)) throw new SecAggError(`the roster names ${m.hospital} twice`);
    if (!Number.isInteger(m.index) || m.index < 1 || m.index > n || indices.has(m.index)) throw new SecAggError(`the roster's indices must be 1…${n}, each once (${m.hospital}: ${m.index})`);
    for (const k of [m.cPk, m.sPk]) {
      if (keys.has(k)) throw new SecAggError(`the roster repeats a public key (${m.hospital})`);
      keys.add(k);
      await importPublicKey(fromBase64(k, `${m.hospital}'s public key`), `${m.hospital}'s public key`).catch((e: Error) => {
        throw new SecAggError(e.message);
      });
    }
    byName.set(m.hospital, m);
    indices.add(m.index);
  }
  return byName;
}

export class SecAggClient {
  private roster?: Map<string, RosterMember>;
  private threshold = 0;
  private selfSeed = randomBytes(32);
  /** Shares we hold, by owner: ours of every member (received, and our own). */
  private held = new Map<string, { seed: Uint8Array; key: Uint8Array }>();
  /** U2: hospitals whose shares were relayed (the pairwise masks are with them). */
  private survivorsOfSharing?: string[];
  private revealed = false;
  private masked = false;

  private constructor(
    readonly hospital: string,
    readonly round: number,
    readonly attempt: number,
    private readonly c: AgreementKeys,
    private readonly s: AgreementKeys,
  ) {}

  static async create(hospital: string, round: number, attempt: number): Promise<SecAggClient> {
    const [c, s] = await Promise.all([generateAgreementKeys(), generateAgreementKeys()]);
    return new SecAggClient(hospital, round, attempt, c, s);
  }

  /** Phase 0: the public keys to advertise. */
  advertise(): { cPk: string; sPk: string } {
    return { cPk: toBase64(this.c.publicKey), sPk: toBase64(this.s.publicKey) };
  }

  /** Phase 1: the sealed shares for every other member of the roster. */
  async shareKeys(roster: Roster): Promise<SealedShare[]> {
    if (this.roster) throw new SecAggError('a second roster for the same round attempt');
    const members = await checkRoster(roster);
    const me = members.get(this.hospital);
    const mine = this.advertise();
    if (!me || me.cPk !== mine.cPk || me.sPk !== mine.sPk) throw new SecAggError(`the roster does not list ${this.hospital} with the keys it advertised`);
    this.roster = members;
    this.threshold = roster.threshold;
    const n = roster.members.length;
    const seedShares = splitSecret(this.selfSeed, n, roster.threshold);
    const keyShares = splitSecret(await exportPrivateScalar(this.s.privateKey), n, roster.threshold);
    const out: SealedShare[] = [];
    for (const m of roster.members) {
      const seed = seedShares[m.index - 1].bytes;
      const key = keyShares[m.index - 1].bytes;
      if (m.hospital === this.hospital) {
        this.held.set(this.hospital, { seed, key });
        continue;
      }
      const pairKey = await agreeKey(this.c.privateKey, fromBase64(m.cPk), shareLabel(this.round, this.attempt));
      const plain = utf8(JSON.stringify({ seed: toBase64(seed), key: toBase64(key) }));
      const sealed = await seal(pairKey, plain, shareContext(this.round, this.attempt, this.hospital, m.hospital));
      out.push({ peer: m.hospital, data: toBase64(sealed) });
    }
    return out;
  }

  /**
   * Phase 1 → 2: the server relays the shares sent to us; `members` is U2 (the hospitals whose shares went
   * out, us included). Each member's share must be there and open.
   */
  async receiveShares(members: string[], shares: SealedShare[]): Promise<void> {
    const roster = this.roster;
    if (!roster) throw new SecAggError('shares arrived before the roster');
    if (this.survivorsOfSharing) throw new SecAggError('shares relayed twice for the same round attempt');
    const set = new Set(members);
    if (set.size !== members.length) throw new SecAggError('the list of hospitals that shared keys repeats a name');
    if (!set.has(this.hospital)) throw new SecAggError(`${this.hospital} is not among the hospitals that shared keys`);
    for (const h of members) if (!roster.has(h)) throw new SecAggError(`${h} shared keys but is not in the roster`);
    if (members.length < this.threshold) throw new SecAggError(`only ${members.length} hospitals shared keys, fewer than the threshold ${this.threshold}`);
    const byPeer = new Map(shares.map((s) => [s.peer, s.data]));
    for (const h of members) {
      if (h === this.hospital) continue;
      const data = byPeer.get(h);
      if (data === undefined) throw new SecAggError(`no share from ${h}, which the server lists as having shared keys`);
      const pairKey = await agreeKey(this.c.privateKey, fromBase64(roster.get(h)!.cPk), shareLabel(this.round, this.attempt));
      const plain = await open(pairKey, fromBase64(data), shareContext(this.round, this.attempt, h, this.hospital)).catch((e: Error) => {
        throw new SecAggError(`the share from ${h}: ${e.message}`);
      });
      let parsed: { seed?: unknown; key?: unknown };
      try {
        parsed = JSON.parse(new TextDecoder().decode(plain));
      } catch {
        throw new SecAggError(`the share from ${h} is not readable`);
      }
      if (typeof parsed.seed !== 'string' || typeof parsed.key !== 'string') throw new SecAggError(`the share from ${h} is not readable`);
      this.held.set(h, { seed: fromBase64(parsed.seed), key: fromBase64(parsed.key) });
    }
    this.survivorsOfSharing = [...members];
  }

  /** Whether the shares were relayed (phase 2 may start). */
  get readyToMask(): boolean {
    return this.survivorsOfSharing !== undefined;
  }

  /** Phase 2: mask the encoded update in place (once). */
  async mask(words: Uint32Array): Promise<Uint32Array> {
    const members = this.survivorsOfSharing;
    if (!members) throw new SecAggError('masking before the shares were relayed');
    if (this.masked) throw new SecAggError('an update is masked once per round attempt');
    this.masked = true;
    const roster = this.roster!;
    const myIndex = roster.get(this.hospital)!.index;
    await applyMask(words, this.selfSeed, 1);
    for (const h of members) {
      if (h === this.hospital) continue;
      const peer = roster.get(h)!;
      const seed = await agreeKey(this.s.privateKey, fromBase64(peer.sPk), maskLabel(this.round, this.attempt));
      await applyMask(words, seed, myIndex < peer.index ? 1 : -1);
    }
    return words;
  }

  /**
   * Phase 3: the shares that unmask the sum of `survivors` (U3): of each survivor's seed, of each dropped
   * hospital's key (U2 \ U3, computed here, not taken from the server). Once only.
   */
  reveal(survivors: string[]): RevealedShare[] {
    const members = this.survivorsOfSharing;
    if (!members) throw new SecAggError('unmasking asked before the shares were relayed');
    if (!this.masked) throw new SecAggError('unmasking asked before this hospital sent its masked update');
    if (this.revealed) throw new SecAggError('unmasking asked twice for the same round attempt');
    const u2 = new Set(members);
    const u3 = new Set(survivors);
    if (u3.size !== survivors.length) throw new SecAggError('the list of survivors repeats a name');
    for (const h of survivors) if (!u2.has(h)) throw new SecAggError(`${h} is listed as a survivor but did not share keys`);
    if (!u3.has(this.hospital)) throw new SecAggError(`${this.hospital} sent its masked update but is not listed as a survivor`);
    if (u3.size < this.threshold) throw new SecAggError(`only ${u3.size} survivors, fewer than the threshold ${this.threshold}: not revealing anything`);
    this.revealed = true;
    return members.map((h) => {
      const held = this.held.get(h)!;
      return u3.has(h) ? { of: h, kind: 'seed' as const, data: toBase64(held.seed) } : { of: h, kind: 'key' as const, data: toBase64(held.key) };
    });
  }
}
