/** A minimal structured-enough logger: one line per event, hospitals named, never tokens or weights. */
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

export const consoleLogger: Logger = {
  info: (m) => console.log(`${new Date().toISOString()} INFO  ${m}`),
  warn: (m) => console.warn(`${new Date().toISOString()} WARN  ${m}`),
  error: (m) => console.error(`${new Date().toISOString()} ERROR ${m}`),
};

export const silentLogger: Logger = { info() {}, warn() {}, error() {} };

/** A logger that records lines (tests). */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return {
    lines,
    info: (m) => lines.push(`INFO ${m}`),
    warn: (m) => lines.push(`WARN ${m}`),
    error: (m) => lines.push(`ERROR ${m}`),
  };
}

/** Longest client string a log line quotes (longer ones are cut, saying how much was left out). */
export const CLIENT_TEXT_MAX_CHARS = 200;

/**
 * Characters a client could use to forge or hide log lines: C0 and C1 controls (newline, carriage return,
 * escape sequences…), DEL, the Unicode line and paragraph separators, and the bidirectional overrides that
 * reorder what a terminal shows.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * A string that came from a client (`decline.reason`, `hello.agent`, a close reason, anything a hospital
 * or an unauthenticated peer chose), made safe for one log line: quoted, control characters written as
 * escapes (`\n`, `\u001b`), quotes and backslashes escaped, cut to `max` characters. Every log line that
 * contains client text passes it through this.
 */
export function clientText(value: unknown, max = CLIENT_TEXT_MAX_CHARS): string {
  const s = typeof value === 'string' ? value : String(value);
  const chars = Array.from(s); // whole code points: a cut never splits a surrogate pair
  const cut = chars.length > max;
  const kept = cut ? chars.slice(0, max).join('') : s;
  const escaped = kept.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(UNSAFE, (c) => {
    switch (c) {
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      default:
        return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    }
  });
  return `"${escaped}"${cut ? `…(${chars.length - max} more characters)` : ''}`;
}
