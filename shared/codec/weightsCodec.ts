/**
 * Binary codec for weight sets (what travels between hospitals and the server, and what is
 * checkpointed). Values are raw IEEE-754 float32 bits, never JSON numbers, so a round trip is
 * bit-exact: -0, denormals, ±Infinity and NaN payloads all survive.
 *
 * Layout (all integers little-endian):
 *
 *     offset  size  field
 *     0       4     magic "FGW1" (ASCII)
 *     4       2     u16 format version (1)
 *     6       2     u16 flags (0; no flag is defined in version 1)
 *     8       4     u32 header byte length H
 *     12      H     header: UTF-8 JSON {"fingerprint": string, "tensors": [{"name", "shape"}], "meta": {…}}
 *     12+H    P     zero padding so that the data starts at a multiple of 4 (P ∈ 0..3)
 *     D       4·N   float32 little-endian data of all tensors, concatenated in header order
 *     D+4N    4     u32 CRC-32 (IEEE) of every preceding byte
 *
 * Decoding returns Float32Array *views* into the input when possible (little-endian host and a
 * 4-byte-aligned data section), i.e. without copying; the tensors then alias the input bytes, which
 * must not be modified afterwards. Pass `{copy: true}` to always get independent arrays.
 */
import { parameterCount, sizeOf, type NamedTensor, type WeightSet } from '../weights.ts';
import { crc32 as jsCrc32, type Crc32Fn } from './crc32.ts';
import { layoutMismatch, type TensorSpec } from './layout.ts';
import { isPlainObject } from '../plainObject.ts';

export const WEIGHTS_MAGIC = 'FGW1';
export const WEIGHTS_FORMAT_VERSION = 1;

const MAGIC_BYTES = new TextEncoder().encode(WEIGHTS_MAGIC);
/** magic (4) + version (2) + flags (2) + header length (4) */
const PREFIX_BYTES = 12;
const CHECKSUM_BYTES = 4;
/** Prefix plus checksum: no valid file is shorter. */
const MIN_FILE_BYTES = PREFIX_BYTES + CHECKSUM_BYTES;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export type WeightsCodecErrorCode =
  | 'bad-magic'
  | 'bad-version'
  | 'truncated'
  | 'bad-header'
  | 'checksum'
  | 'fingerprint-mismatch'
  | 'shape-mismatch'
  | 'non-finite';

/** Any failure to encode, decode or validate weights; `code` says which check failed. */
export class WeightsCodecError extends Error {
  constructor(
    readonly code: WeightsCodecErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'WeightsCodecError';
  }
}

export interface DecodeWeightsOptions {
  /** Refuse weights whose fingerprint differs (code 'fingerprint-mismatch'). */
  expectedFingerprint?: string;
  /** Refuse weights whose ordered tensor names/shapes differ (code 'shape-mismatch'). */
  expectedShapes?: readonly TensorSpec[];
  /**
   * Refuse weights containing NaN or ±Infinity (code 'non-finite'). When the tensors can be views into
   * `bytes`, the check is fused with the checksum pass and costs little more than the checksum alone.
   */
  requireFinite?: boolean;
  /** Always copy tensor data instead of returning views into `bytes`. */
  copy?: boolean;
  /** CRC-32 implementation used to verify the checksum (default: the isomorphic JS `crc32`). */
  crc32?: Crc32Fn;
}

export interface EncodeWeightsOptions {
  /** CRC-32 implementation used to write the checksum (default: the isomorphic JS `crc32`). */
  crc32?: Crc32Fn;
}

export interface DecodedWeights {
  weights: WeightSet;
  meta: Record<string, unknown>;
}

interface Header {
  fingerprint: string;
  tensors: { name: string; shape: number[] }[];
  meta: Record<string, unknown>;
}

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** Checks a weight set before encoding: names unique, shapes valid, data length = product of shape. */
function checkEncodable(ws: WeightSet): void {
  if (typeof ws.fingerprint !== 'string') {
    throw new WeightsCodecError('bad-header', 'cannot encode weights without a string fingerprint');
  }
  const seen = new Set<string>();
  for (const t of ws.tensors) {
    if (seen.has(t.name)) throw new WeightsCodecError('bad-header', `cannot encode weights: duplicate tensor name ${t.name}`);
    seen.add(t.name);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new WeightsCodecError('shape-mismatch', `cannot encode tensor ${t.name}: invalid shape [${t.shape.join(', ')}]`);
    }
    if (!(t.data instanceof Float32Array)) {
      throw new WeightsCodecError('shape-mismatch', `cannot encode tensor ${t.name}: data is not a Float32Array`);
    }
    const expected = sizeOf(t.shape);
    if (t.data.length !== expected) {
      throw new WeightsCodecError(
        'shape-mismatch',
        `cannot encode tensor ${t.name}: shape [${t.shape.join(', ')}] needs ${expected} values but data has ${t.data.length}`,
      );
    }
  }
}

/** UTF-8 JSON header bytes. `meta` must be a plain, JSON-serialisable object. */
function encodeHeader(ws: WeightSet, meta: Record<string, unknown>): Uint8Array {
  if (!isPlainObject(meta)) throw new WeightsCodecError('bad-header', 'weights meta must be a plain object');
  const header: Header = {
    fingerprint: ws.fingerprint,
    tensors: ws.tensors.map((t) => ({ name: t.name, shape: [...t.shape] })),
    meta,
  };
  let json: string;
  try {
    json = JSON.stringify(header);
  } catch (e) {
    throw new WeightsCodecError('bad-header', `weights meta is not JSON-serialisable: ${(e as Error).message}`);
  }
  return new TextEncoder().encode(json);
}

/** Swaps the byte order of each 4-byte word in bytes[start, end) (big-endian hosts only). */
function swap32InPlace(bytes: Uint8Array, start: number, end: number): void {
  for (let i = start; i < end; i += 4) {
    const b0 = bytes[i];
    const b1 = bytes[i + 1];
    bytes[i] = bytes[i + 3];
    bytes[i + 1] = bytes[i + 2];
    bytes[i + 2] = b1;
    bytes[i + 3] = b0;
  }
}

function totalBytes(headerBytes: number, scalars: number): number {
  return align4(PREFIX_BYTES + headerBytes) + 4 * scalars + CHECKSUM_BYTES;
}

/**
 * Exact size in bytes of `encodeWeights(ws, meta)`. Costs one JSON serialisation of the header,
 * not of the values.
 */
export function encodedSize(ws: WeightSet, meta: Record<string, unknown> = {}): number {
  checkEncodable(ws);
  return totalBytes(encodeHeader(ws, meta).length, parameterCount(ws));
}

/**
 * Encodes a weight set (and optional JSON-serialisable metadata, e.g. round number or example
 * count) into the FGW1 binary format. Values are copied bit-exactly; `meta` goes through
 * JSON.stringify (so `undefined` fields are dropped and NaN becomes null).
 */
export function encodeWeights(ws: WeightSet, meta: Record<string, unknown> = {}, opts: EncodeWeightsOptions = {}): Uint8Array {
  const crc32 = opts.crc32 ?? jsCrc32;
  checkEncodable(ws);
  const header = encodeHeader(ws, meta);
  const dataOffset = align4(PREFIX_BYTES + header.length);
  const out = new Uint8Array(totalBytes(header.length, parameterCount(ws)));
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);

  out.set(MAGIC_BYTES, 0);
  view.setUint16(4, WEIGHTS_FORMAT_VERSION, true);
  view.setUint16(6, 0, true);
  view.setUint32(8, header.length, true);
  out.set(header, PREFIX_BYTES);
  // Padding bytes are already zero (fresh allocation).

  let offset = dataOffset;
  for (const t of ws.tensors) {
    // Copy the raw bytes (not the values) so NaN payloads are preserved.
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), offset);
    offset += t.data.byteLength;
  }
  if (!LITTLE_ENDIAN_HOST) swap32InPlace(out, dataOffset, offset);

  view.setUint32(offset, crc32(out.subarray(0, offset)) >>> 0, true);
  return out;
}

function describeMagic(bytes: Uint8Array): string {
  const head = bytes.subarray(0, 4);
  const hex = Array.from(head, (b) => b.toString(16).padStart(2, '0')).join(' ');
  const printable = Array.from(head, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
  return `"${printable}" (${hex})`;
}

function fail(code: WeightsCodecErrorCode, message: string): never {
  throw new WeightsCodecError(code, message);
}

/** Parses and validates the JSON header; returns an error message instead of throwing. */
function parseHeader(bytes: Uint8Array): Header | string {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    return `header is not valid UTF-8 JSON (${(e as Error).message})`;
  }
  if (!isPlainObject(json)) return 'header is not a JSON object';
  const { fingerprint, tensors, meta } = json;
  if (typeof fingerprint !== 'string') return 'header has no string "fingerprint"';
  if (!Array.isArray(tensors)) return 'header has no "tensors" array';
  if (meta !== undefined && !isPlainObject(meta)) return 'header "meta" is not an object';
  const names = new Set<string>();
  const specs: Header['tensors'] = [];
  for (let i = 0; i < tensors.length; i++) {
    const t: unknown = tensors[i];
    if (!isPlainObject(t) || typeof t.name !== 'string') return `header tensor #${i} has no string "name"`;
    const shape = t.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      return `header tensor ${t.name} has an invalid "shape"`;
    }
    if (names.has(t.name)) return `header lists tensor ${t.name} twice`;
    names.add(t.name);
    specs.push({ name: t.name, shape: shape as number[] });
  }
  return { fingerprint, tensors: specs, meta: (meta as Record<string, unknown> | undefined) ?? {} };
}

function storedChecksumMatches(bytes: Uint8Array, view: DataView, crc32: Crc32Fn): boolean {
  const end = bytes.length - CHECKSUM_BYTES;
  return view.getUint32(end, true) === crc32(bytes.subarray(0, end)) >>> 0;
}

/**
 * Decodes FGW1 bytes. Checks, in order: magic, version/flags, lengths, header, checksum, then the
 * optional expectations (fingerprint, layout, finiteness). Throws a WeightsCodecError naming the
 * problem.
 */
export function decodeWeights(bytes: Uint8Array, opts: DecodeWeightsOptions = {}): DecodedWeights {
  const crc32 = opts.crc32 ?? jsCrc32;
  if (bytes.length < MAGIC_BYTES.length) {
    fail('truncated', `weights are truncated: ${bytes.length} bytes is too short to be a weights file`);
  }
  for (let i = 0; i < MAGIC_BYTES.length; i++) {
    if (bytes[i] !== MAGIC_BYTES[i]) {
      fail('bad-magic', `not a weights file: expected magic "${WEIGHTS_MAGIC}", found ${describeMagic(bytes)}`);
    }
  }
  if (bytes.length < MIN_FILE_BYTES) {
    fail('truncated', `weights are truncated: ${bytes.length} bytes is shorter than the ${MIN_FILE_BYTES}-byte minimum`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint16(4, true);
  if (version !== WEIGHTS_FORMAT_VERSION) {
    fail('bad-version', `weights format version ${version} is not supported (this build reads version ${WEIGHTS_FORMAT_VERSION})`);
  }
  const flags = view.getUint16(6, true);
  if (flags !== 0) {
    fail('bad-version', `weights use unknown format flags 0x${flags.toString(16).padStart(4, '0')} (version ${version} defines none)`);
  }
  const headerLength = view.getUint32(8, true);
  if (PREFIX_BYTES + headerLength + CHECKSUM_BYTES > bytes.length) {
    fail('truncated', `weights are truncated: the header alone needs ${headerLength} bytes but the file has ${bytes.length} in total`);
  }

  const header = parseHeader(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength));
  if (typeof header === 'string') {
    // A garbled header is most likely corruption; say so when the checksum agrees.
    if (!storedChecksumMatches(bytes, view, crc32)) {
      fail('checksum', `weights checksum mismatch and ${header}: the file is corrupted`);
    }
    fail('bad-header', `invalid weights ${header}`);
  }

  const scalars = header.tensors.reduce((n, t) => n + sizeOf(t.shape), 0);
  const expectedLength = totalBytes(headerLength, scalars);
  if (bytes.length < expectedLength) {
    fail('truncated', `weights are truncated: expected ${expectedLength} bytes for ${scalars} parameters, got ${bytes.length}`);
  }
  if (bytes.length > expectedLength) {
    fail('bad-header', `weights file has ${bytes.length - expectedLength} unexpected trailing bytes (expected ${expectedLength} bytes)`);
  }
  const dataOffset = align4(PREFIX_BYTES + headerLength);
  for (let i = PREFIX_BYTES + headerLength; i < dataOffset; i++) {
    if (bytes[i] !== 0) fail('bad-header', 'invalid weights: non-zero padding after the header');
  }
  const dataEnd = dataOffset + 4 * scalars;
  const stored = view.getUint32(dataEnd, true);
  // With `requireFinite` and data that can be viewed in place, the finite check rides along with the
  // checksum (one pass over the data, chunk by chunk while it is in cache); otherwise it runs after decoding.
  const zeroCopy = !opts.copy && LITTLE_ENDIAN_HOST && (bytes.byteOffset + dataOffset) % 4 === 0;
  const fused = opts.requireFinite === true && zeroCopy;
  let computed: number;
  let finite = true;
  if (fused) {
    const values = new Float32Array(bytes.buffer, bytes.byteOffset + dataOffset, scalars);
    const pass = checksumAndFiniteProbe(bytes, dataOffset, values, crc32);
    computed = pass.crc;
    finite = pass.finite;
  } else {
    computed = crc32(bytes.subarray(0, dataEnd)) >>> 0;
  }
  if (stored !== computed) {
    fail(
      'checksum',
      `weights checksum mismatch (stored 0x${stored.toString(16).padStart(8, '0')}, computed 0x${computed.toString(16).padStart(8, '0')}): the data was corrupted in transit or on disk`,
    );
  }

  if (opts.expectedFingerprint !== undefined && header.fingerprint !== opts.expectedFingerprint) {
    fail(
      'fingerprint-mismatch',
      `weights fingerprint ${header.fingerprint} does not match this model's ${opts.expectedFingerprint} (weights come from another architecture)`,
    );
  }
  if (opts.expectedShapes !== undefined) {
    const mismatch = layoutMismatch(header.tensors, opts.expectedShapes);
    if (mismatch !== null) fail('shape-mismatch', `weights do not fit this model: ${mismatch}`);
  }

  const tensors: NamedTensor[] = [];
  let offset = dataOffset;
  for (const t of header.tensors) {
    const length = sizeOf(t.shape);
    let data: Float32Array;
    if (zeroCopy) {
      data = new Float32Array(bytes.buffer, bytes.byteOffset + offset, length);
    } else {
      data = new Float32Array(length);
      const dst = new Uint8Array(data.buffer);
      dst.set(bytes.subarray(offset, offset + 4 * length));
      if (!LITTLE_ENDIAN_HOST) swap32InPlace(dst, 0, dst.length);
    }
    tensors.push({ name: t.name, shape: t.shape, data });
    offset += 4 * length;
  }
  const weights: WeightSet = { fingerprint: header.fingerprint, tensors };
  // The fused probe only says whether some value is not finite; assertFinite locates it for the message.
  if (opts.requireFinite && (!fused || !finite)) assertFinite(weights);
  return { weights, meta: header.meta };
}

/** Bytes checksummed (and probed) per step of the fused pass: small enough to stay in L2 between the two. */
const FUSED_CHUNK_BYTES = 64 * 1024;

/**
 * CRC-32 of bytes[0, dataOffset + 4·values.length) and whether every value of `values` (a float32 view of
 * the data section, which starts at `dataOffset`) is finite, in one pass: each 64 KiB chunk is
 * checksummed, then probed while it is still in cache. The continuation form of `crc32` joins the chunks.
 */
function checksumAndFiniteProbe(bytes: Uint8Array, dataOffset: number, values: Float32Array, crc32: Crc32Fn): { crc: number; finite: boolean } {
  let crc = crc32(bytes.subarray(0, dataOffset));
  let probe = 0;
  const step = FUSED_CHUNK_BYTES / 4;
  for (let start = 0; start < values.length; start += step) {
    const end = Math.min(values.length, start + step);
    crc = crc32(bytes.subarray(dataOffset + 4 * start, dataOffset + 4 * end), crc);
    probe += finiteProbe(values, start, end);
  }
  return { crc: crc >>> 0, finite: probe === 0 };
}

/** Location of the first NaN / ±Infinity in a weight set. */
export interface NonFiniteValue {
  tensor: string;
  index: number;
  value: number;
  /** Number of non-finite values in that tensor. */
  countInTensor: number;
}

/**
 * Finite probe of d[start, end): 0 (±0) when every value is finite, NaN otherwise. Branch-free: x·0 is
 * ±0 for every finite x and NaN for NaN and ±Infinity, so the sum stays 0 exactly when all values are
 * finite. Four independent accumulators shorten the dependency chain (this runs on every update).
 */
function finiteProbe(d: Float32Array, start: number, end: number): number {
  const end4 = end - ((end - start) % 4);
  let p0 = 0;
  let p1 = 0;
  let p2 = 0;
  let p3 = 0;
  let i = start;
  for (; i < end4; i += 4) {
    p0 += d[i] * 0;
    p1 += d[i + 1] * 0;
    p2 += d[i + 2] * 0;
    p3 += d[i + 3] * 0;
  }
  for (; i < end; i++) p0 += d[i] * 0;
  return p0 + p1 + p2 + p3;
}

/** True when every value is finite. */
function allFinite(d: Float32Array): boolean {
  return finiteProbe(d, 0, d.length) === 0;
}

/**
 * JIT warm-up of the finite probe, once at module load (microseconds): every path (unrolled loop, tail,
 * NaN) runs on tiny off-heap arrays first, so V8 has complete type feedback when the probe gets hot.
 * Without it the first call on megabytes of data is compiled mid-loop (on-stack replacement) without
 * feedback for the code after the loop, deoptimises there, and after a few such cycles V8 can leave the
 * function unoptimised: findNonFinite took 20–33 ms on 5 M values instead of 4.7 ms (bench/server.ts).
 */
(function warmUpFiniteProbe(): void {
  const buf = new ArrayBuffer(64);
  for (let n = 1; n <= 9; n++) {
    const d = new Float32Array(buf, 4, n).fill(0.5);
    finiteProbe(d, 0, n);
    d[n - 1] = NaN;
    finiteProbe(d, 0, n);
  }
})();

/** Finds the first NaN or ±Infinity (in tensor order), or returns null when all values are finite. */
export function findNonFinite(ws: WeightSet): NonFiniteValue | null {
  for (const t of ws.tensors) {
    const d = t.data;
    if (allFinite(d)) continue;
    let first = -1;
    let count = 0;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i])) {
        if (first < 0) first = i;
        count++;
      }
    }
    return { tensor: t.name, index: first, value: d[first], countInTensor: count };
  }
  return null;
}

/** Throws a WeightsCodecError ('non-finite') naming the first tensor holding NaN/±Infinity and the index. */
export function assertFinite(ws: WeightSet): void {
  const bad = findNonFinite(ws);
  if (bad === null) return;
  const tensor = ws.tensors.find((t) => t.name === bad.tensor);
  fail(
    'non-finite',
    `tensor ${bad.tensor} holds ${bad.value} at index ${bad.index} of ${tensor?.data.length} ` +
      `(${bad.countInTensor} non-finite value${bad.countInTensor === 1 ? '' : 's'} in that tensor): training diverged or the weights are corrupted`,
  );
}

/**
 * The weights file `bytes` with its meta replaced by `edit(meta)`, as parts that concatenate to a valid
 * weights file: a new prefix and header (padded), the data section of `bytes` itself (a view: the values are
 * not copied) and a new checksum. `bytes` must be a weights file already checked with decodeWeights (its
 * own checksum is not verified again); one pass of `crc32` over the data computes the new checksum.
 * The server sends hospitals the global weights this way, without the federation history (shared/checkpoint.ts).
 */
export function replaceMeta(bytes: Uint8Array, edit: (meta: Record<string, unknown>) => Record<string, unknown>, opts: EncodeWeightsOptions = {}): Uint8Array[] {
  const crc32 = opts.crc32 ?? jsCrc32;
  if (bytes.length < MIN_FILE_BYTES) fail('truncated', `weights are truncated: ${bytes.length} bytes is shorter than the ${MIN_FILE_BYTES}-byte minimum`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getUint32(8, true);
  if (PREFIX_BYTES + headerLength + CHECKSUM_BYTES > bytes.length) fail('truncated', `weights are truncated: the header alone needs ${headerLength} bytes`);
  const header = parseHeader(bytes.subarray(PREFIX_BYTES, PREFIX_BYTES + headerLength));
  if (typeof header === 'string') fail('bad-header', `invalid weights ${header}`);
  const dataOffset = align4(PREFIX_BYTES + headerLength);
  const dataEnd = bytes.length - CHECKSUM_BYTES;
  const scalars = header.tensors.reduce((n, t) => n + sizeOf(t.shape), 0);
  if (dataEnd - dataOffset !== 4 * scalars) fail('bad-header', `weights data holds ${dataEnd - dataOffset} bytes, the header's tensors need ${4 * scalars}`);
  const meta = edit(header.meta);
  const json = encodeHeader({ fingerprint: header.fingerprint, tensors: header.tensors.map((t) => ({ ...t, data: new Float32Array(0) })) }, meta);
  const head = new Uint8Array(align4(PREFIX_BYTES + json.length));
  const hv = new DataView(head.buffer);
  head.set(MAGIC_BYTES, 0);
  hv.setUint16(4, WEIGHTS_FORMAT_VERSION, true);
  hv.setUint16(6, 0, true);
  hv.setUint32(8, json.length, true);
  head.set(json, PREFIX_BYTES);
  const data = bytes.subarray(dataOffset, dataEnd);
  const crc = new Uint8Array(CHECKSUM_BYTES);
  new DataView(crc.buffer).setUint32(0, crc32(data, crc32(head)) >>> 0, true);
  return [head, data, crc];
}
