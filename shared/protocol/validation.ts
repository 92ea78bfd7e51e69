import { decodeFrame, decodeText } from './frames.ts';
import {
  globalHeaderSchema,
  roundHeaderSchema,
  SERVER_BINARY_TYPES,
  SERVER_TEXT_TYPES,
  serverTextSchema,
  type GlobalHeader,
  type RoundHeader,
  type ServerTextMessage,
} from './messages.ts';

/**
 * Parsing and validating what a client receives: every server message (text) and binary frame header goes
 * through the zod schemas of messages.ts before the client acts on it, as the server validates client
 * messages. A message that fails is reported with its type and the failing fields, never acted on.
 *
 * No DOM and no Node imports.
 */

/** `field.path: problem; …` for the first three zod issues (the form of the server's `bad-message` errors), then how many more. */
export function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  const shown = issues
    .slice(0, 3)
    .map((i) => `${i.path.map(String).join('.') || '(root)'}: ${i.message}`)
    .join('; ');
  return issues.length > 3 ? `${shown}; and ${issues.length - 3} more` : shown;
}

/** A binary frame from the server whose header passed validation. `payload` is a view into the frame. */
export type ServerFrame = { header: RoundHeader; payload: Uint8Array } | { header: GlobalHeader; payload: Uint8Array };

/** A server message the client refused. */
export interface InvalidServerMessage {
  /** `text` message or `binary` frame. */
  kind: 'text' | 'binary';
  /** Its `type` when it has a string one (e.g. `round`, `welcome`), else null. */
  messageType: string | null;
  /** What is wrong, naming the message type and the fields, e.g. `invalid round-complete message from the server: dLoss: …`. */
  error: string;
  /** For a `round` frame whose header names a valid round and attempt: that task (so the client can decline it). */
  task?: { round: number; attempt: number };
}

export type ParsedServerData =
  | { kind: 'text'; message: ServerTextMessage }
  | { kind: 'binary'; frame: ServerFrame }
  /** A well-formed message of a type this client does not know: ignored (forward compatibility). */
  | { kind: 'unknown'; messageType: string }
  | { kind: 'invalid'; invalid: InvalidServerMessage };

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Parse one WebSocket message from the server: a string (text frame) or an ArrayBuffer / typed array
 * (binary frame; set the socket's `binaryType` to "arraybuffer"). Never throws.
 */
export function parseServerData(data: unknown): ParsedServerData {
  return typeof data === 'string' ? parseServerText(data) : parseServerBinary(data);
}

export function parseServerText(text: string): ParsedServerData {
  let raw: { type: string } & Record<string, unknown>;
  try {
    raw = decodeText(text);
  } catch (e) {
    return invalid('text', null, `unreadable text message from the server: ${(e as Error).message}`);
  }
  if (!(SERVER_TEXT_TYPES as readonly string[]).includes(raw.type)) return { kind: 'unknown', messageType: raw.type };
  const parsed = serverTextSchema.safeParse(raw);
  if (!parsed.success) return invalid('text', raw.type, `invalid ${raw.type} message from the server: ${describeIssues(parsed.error.issues)}`);
  return { kind: 'text', message: parsed.data };
}

export function parseServerBinary(data: unknown): ParsedServerData {
  let bytes: Uint8Array;
  if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
  else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  else return invalid('binary', null, 'unsupported binary message from the server (the socket\'s binaryType must be "arraybuffer")');
  let frame;
  try {
    frame = decodeFrame(bytes);
  } catch (e) {
    return invalid('binary', null, `unreadable binary frame from the server: ${(e as Error).message}`);
  }
  const { header, payload } = frame;
  if (!(SERVER_BINARY_TYPES as readonly string[]).includes(header.type)) return { kind: 'unknown', messageType: header.type };
  if (header.type === 'round') {
    const h = roundHeaderSchema.safeParse(header);
    if (h.success) return { kind: 'binary', frame: { header: h.data, payload } };
    const { round, attempt } = header;
    const task = isCount(round) && isCount(attempt) ? { round, attempt } : undefined;
    return invalid('binary', 'round', `invalid round frame header from the server: ${describeIssues(h.error.issues)}`, task);
  }
  const h = globalHeaderSchema.safeParse(header);
  if (h.success) return { kind: 'binary', frame: { header: h.data, payload } };
  return invalid('binary', 'global', `invalid global frame header from the server: ${describeIssues(h.error.issues)}`);
}

function invalid(kind: 'text' | 'binary', messageType: string | null, error: string, task?: { round: number; attempt: number }): ParsedServerData {
  return { kind: 'invalid', invalid: { kind, messageType, error, ...(task ? { task } : {}) } };
}
