/** `fedex <argv>` run in this process through the CLI's entry (`runCli`), its output collected. */
import type { CliIO } from '../../src/cli/command.js';
import { runCli } from '../../src/cli/main.js';

/** The exit code and everything written to stdout and stderr. */
export async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: CliIO = { stdout: { write: (c: string) => ((stdout += c), true) }, stderr: { write: (c: string) => ((stderr += c), true) } };
  const code = await runCli(argv, io);
  return { code, stdout, stderr };
}
