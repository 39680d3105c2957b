/**
 * Join tokens never need to be on a command line, where every user of the machine can read them
 * (`ps`, /proc/PID/cmdline). `fedex host` and `fedex join` take the token from `--token-file`, from
 * the FEDEX_TOKEN environment variable (what the VS Code extension passes, from its SecretStorage),
 * or — still accepted, with a warning — from `--token`.
 */
import { readFile } from 'node:fs/promises';
import { usageError } from './errors.js';
import type { ParsedArgs } from './args.js';
import { optionalString } from './args.js';

/** The environment variable a join token may come from. */
export const TOKEN_ENV = 'FEDEX_TOKEN';

/** The flags every command that takes a token declares. */
export const TOKEN_FLAGS = {
  'token-file': { type: 'string', value: 'file', help: `read the join token from this file (or set ${TOKEN_ENV}; both keep it out of the process list)` },
  token: { type: 'string', value: 'T', help: `the join token on the command line (visible to every user in the process list: prefer --token-file or ${TOKEN_ENV})` },
} as const;

/** Where a token came from, for messages. */
export type TokenSource = 'file' | 'env' | 'argv';

/**
 * The token from `--token-file`, `--token` or FEDEX_TOKEN (in that order); undefined when none is
 * given. `warn` is told when it came from the command line.
 */
export async function readToken(args: ParsedArgs, command: string, warn: (line: string) => void, env: NodeJS.ProcessEnv = process.env): Promise<{ token: string; source: TokenSource } | undefined> {
  const file = optionalString(args, 'token-file');
  if (file !== undefined) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw usageError(`fedex ${command}: cannot read --token-file ${file}: ${(err as Error).message}`);
    }
    const token = text.trim();
    if (token === '' || /\s/.test(token)) throw usageError(`fedex ${command}: --token-file ${file} must hold the token alone on one line`);
    return { token, source: 'file' };
  }
  const given = optionalString(args, 'token');
  if (given !== undefined) {
    warn(`warning: --token puts the join token in the process list, where every user of this machine can read it; use --token-file or ${TOKEN_ENV}`);
    return { token: given, source: 'argv' };
  }
  const fromEnv = env[TOKEN_ENV]?.trim();
  return fromEnv !== undefined && fromEnv !== '' ? { token: fromEnv, source: 'env' } : undefined;
}
