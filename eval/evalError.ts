import { CliError } from '../node/cliError.ts';

/** A problem with the evaluation's input (files, flags, data): printed as one line, exit code 2. */
export class EvalError extends CliError {
  constructor(message: string) {
    super(message);
    this.name = 'EvalError';
  }
}
