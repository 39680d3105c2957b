/**
 * `fedex host --manual-rounds`: the operator starts each round from standard input. A line `start`
 * (or an empty line: Enter on a terminal) asks the coordinator for the next round and prints what
 * happened; `round_ready` prints the prompt. When the input ends, the federation goes on (it can
 * still be stopped with Ctrl+C); rounds just cannot be started from here any more.
 */
import { createInterface } from 'node:readline';
import type { RoundGrant } from '../../federation/coordinator/roundRunner.js';

/** What an input line asks for. */
export type OperatorCommand = 'start' | 'unknown';

/** Parses one line of the operator's input (case and surrounding blanks ignored). */
export function parseOperatorLine(line: string): OperatorCommand {
  const text = line.trim().toLowerCase();
  return text === '' || text === 'start' ? 'start' : 'unknown';
}

/** The sentence printed after a `start`. */
export function grantText(grant: RoundGrant): string {
  if (grant.started) return `starting round ${grant.round ?? '?'}`;
  const why = grant.reason ?? 'the round cannot start now';
  // A kept grant's reason already says when its round starts.
  return grant.granted ? why : `no round started: ${why}`;
}

/** The prompt printed at `round_ready`. */
export function readyText(round: number, rounds: number): string {
  return `round ${round}/${rounds} ready: press Enter (or type start) to run it`;
}

/** Where the prompt writes (the host's human output). */
export interface PromptOutput {
  write(chunk: string): boolean;
}

/**
 * Reads operator commands line by line from `input` until `close()` or the end of the input;
 * `startNextRound` is the coordinator's. Nothing reads `input` unless this is called.
 */
export function readRoundCommands(input: NodeJS.ReadableStream, startNextRound: () => RoundGrant, out: PromptOutput): { close(): void } {
  // terminal: false — Ctrl+C stays the terminal's SIGINT (the host's graceful stop), not readline's.
  const rl = createInterface({ input, terminal: false });
  let closing = false;
  rl.on('line', (line) => {
    if (parseOperatorLine(line) === 'unknown') {
      out.write(`unknown command '${line.trim().slice(0, 40)}': press Enter (or type start) to run the next round\n`);
      return;
    }
    out.write(`${grantText(startNextRound())}\n`);
  });
  rl.on('close', () => {
    if (!closing) out.write('standard input closed: rounds can no longer be started from here (Ctrl+C stops the federation)\n');
  });
  return {
    close: () => {
      closing = true;
      rl.close();
    },
  };
}
