import { describe, expect, it } from 'vitest';
import { clientText, CLIENT_TEXT_MAX_CHARS } from './log.ts';

describe('clientText: a client string made safe for one log line', () => {
  it('quotes it and escapes line breaks, other controls, quotes, backslashes, line separators and bidi overrides', () => {
    expect(clientText('out of GPU memory')).toBe('"out of GPU memory"');
    expect(clientText('a\nb\r\tc')).toBe('"a\\nb\\r\\tc"');
    expect(clientText('say "hi" \\ bye')).toBe('"say \\"hi\\" \\\\ bye"');
    expect(clientText('\u001b[31mred\u007f\u0085')).toBe('"\\u001b[31mred\\u007f\\u0085"');
    expect(clientText('x\u2028y\u2029z\u202eevil\u2066')).toBe('"x\\u2028y\\u2029z\\u202eevil\\u2066"');
    expect(clientText('ünïcødé 日本 🙂')).toBe('"ünïcødé 日本 🙂"');
  });

  it('cuts long strings, saying how much was left out, without splitting a character', () => {
    expect(CLIENT_TEXT_MAX_CHARS).toBe(200);
    expect(clientText('x'.repeat(250))).toBe(`"${'x'.repeat(200)}"…(50 more characters)`);
    expect(clientText('🙂'.repeat(5), 3)).toBe('"🙂🙂🙂"…(2 more characters)');
    expect(clientText('abc', 3)).toBe('"abc"');
  });

  it('never yields a line break, whatever it is given', () => {
    let all = '';
    for (let c = 0; c < 0x3000; c++) all += String.fromCharCode(c);
    expect(clientText(all, 1e6)).not.toMatch(/[\n\r\u0085\u2028\u2029]/);
    expect(clientText(undefined)).toBe('"undefined"');
  });
});
