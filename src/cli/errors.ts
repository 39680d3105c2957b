/** An error meant for the person at the terminal: printed as one line, exit code 2 (usage) or 1. */
export class CliError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'CliError';
  }
}

/** A usage error: wrong or missing flags. */
export function usageError(message: string): CliError {
  return new CliError(message, 2);
}
