/** `1 round`, `2 rounds`, `1,234 tiles`: counts in plain English for status lines and logs. */
export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? word : many}`;
}
