/**
 * `fedex`: the headless CLI. Dispatches to one module per subcommand in src/cli/commands/.
 */
import type { CliCommand, CliIO } from './command.js';
import { CliError } from './errors.js';
import { aggregateCommand } from './commands/aggregate.js';
import { exportCommand } from './commands/export.js';
import { demoCommand } from './commands/demo.js';
import { simulateCommand } from './commands/simulate.js';
import { hostCommand } from './commands/host.js';
import { joinCommand } from './commands/join.js';
import { trainCommand } from './commands/train.js';
import { evalCommand } from './commands/eval.js';
import { keygenCommand } from './commands/keygen.js';
import { clientsCommand } from './commands/clients.js';

const VERSION = '0.1.0';

/** Every subcommand, in the order `fedex --help` lists them. */
export const COMMANDS: readonly CliCommand[] = [simulateCommand, hostCommand, joinCommand, trainCommand, evalCommand, demoCommand, aggregateCommand, exportCommand, keygenCommand, clientsCommand];

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length)) + 2;
  return [
    'fedex — federated LoRA fine-tuning with exact aggregation (FedEx-LoRA)',
    '',
    'Usage: fedex <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    "Run 'fedex <command> --help' for a command's options.",
  ].join('\n');
}

/** The process's streams; stdin is opened only when a command asks for it (touching it opens the handle). */
function processIO(): CliIO {
  return {
    stdout: process.stdout,
    stderr: process.stderr,
    get stdin(): NodeJS.ReadableStream {
      return process.stdin;
    },
  };
}

/** Runs the CLI on argv (without node and script); resolves to the exit code. */
export async function runCli(argv: readonly string[], io: CliIO = processIO()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(`${topHelp()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') {
    io.stdout.write(`${VERSION}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    io.stderr.write(`fedex: unknown command '${name}'. Commands: ${COMMANDS.map((c) => c.name).join(', ')}.\n`);
    return 2;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    if (err instanceof CliError) {
      io.stderr.write(`${err.message}\n`);
      return err.exitCode;
    }
    const e = err as Error & { code?: string };
    io.stderr.write(`fedex ${name}: ${e.code !== undefined ? `[${e.code}] ` : ''}${e.message}\n`);
    if (process.env.FEDEX_DEBUG) io.stderr.write(`${e.stack ?? ''}\n`);
    return 1;
  }
}
