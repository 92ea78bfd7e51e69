import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError } from './cliError.ts';

/**
 * Parse command-line flags strictly (unknown flags and positionals are errors that point at --help).
 * Returns 'help' for -h/--help, otherwise the flag values as strings (booleans stay booleans).
 */
export function parseFlags(argv: string[], options: NonNullable<ParseArgsConfig['options']>): Record<string, string | undefined> | 'help' {
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    values = parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (e) {
    throw new CliError(`${e instanceof Error ? e.message : String(e)} (see --help)`);
  }
  if (values.help) return 'help';
  return values as Record<string, string | undefined>;
}
