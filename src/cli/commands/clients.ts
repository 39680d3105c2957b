/**
 * `fedex clients add|revoke|list --clients clients.json`: the registry of clients a coordinator
 * admits by key (`fedex host --clients`). A running coordinator re-reads it within a second: an
 * added client can join, a revoked one is disconnected and refused from then on.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { EnrollmentError, enrollClient, readEnrollment, revokeClient, writeEnrollment } from '../../federation/coordinator/enrollment.js';
import { IdentityFileError, parsePublicKeyLine } from '../../federation/shared/identityFiles.js';
import { defineCommand, type CliCommand, type CliIO } from '../command.js';
import { booleanFlag, optionalString, type FlagSpecs, type ParsedArgs } from '../args.js';
import { usageError } from '../errors.js';
import { renderTable } from '../ui/table.js';

const FLAGS: FlagSpecs = {
  clients: { type: 'string', value: 'file.json', help: 'the client registry (made by the first add)' },
  'client-id': { type: 'string', value: 'id', help: "add: enroll under this id instead of the .pub file's" },
  json: { type: 'boolean', help: 'list: print the registry as JSON' },
};

const USAGE = [
  'fedex clients add <client.pub> --clients <file.json> [--client-id id]',
  'fedex clients revoke <client-id> --clients <file.json>',
  'fedex clients list --clients <file.json> [--json]',
].join('\n       ');
const SUMMARY = 'Enrolls, revokes and lists the clients a coordinator admits by key (fedex host --clients).';

function registryPath(args: ParsedArgs): string {
  const path = optionalString(args, 'clients');
  if (path === undefined) throw usageError("fedex clients: --clients <file.json> is required (the registry fedex host --clients reads). See 'fedex clients --help'.");
  return resolve(path);
}

async function add(args: ParsedArgs, file: string | undefined, io: CliIO): Promise<number> {
  if (file === undefined) throw usageError("fedex clients add: name the client's public key file (<id>.pub, from fedex keygen). See 'fedex clients --help'.");
  const path = registryPath(args);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw usageError(`fedex clients add: cannot read ${file}: ${(err as Error).message}`);
  }
  const line = parsePublicKeyLine(text, file);
  const clientId = optionalString(args, 'client-id') ?? line.clientId;
  const before = await readEnrollment(path, true);
  const after = enrollClient(before, clientId, line.publicKey);
  if (after === before) {
    io.stdout.write(`client '${clientId}' is already enrolled with this key in ${path}\n`);
    return 0;
  }
  await writeEnrollment(path, after);
  io.stdout.write(`enrolled client '${clientId}' in ${path} (${after.clients.filter((c) => c.revokedAt === undefined).length} enrolled)\n`);
  return 0;
}

async function revoke(args: ParsedArgs, clientId: string | undefined, io: CliIO): Promise<number> {
  if (clientId === undefined) throw usageError("fedex clients revoke: name the client id to revoke. See 'fedex clients --help'.");
  const path = registryPath(args);
  const before = await readEnrollment(path);
  const after = revokeClient(before, clientId);
  if (after === before) {
    io.stdout.write(`client '${clientId}' was already revoked in ${path}\n`);
    return 0;
  }
  await writeEnrollment(path, after);
  io.stdout.write(`revoked client '${clientId}' in ${path}; a coordinator using it disconnects the client within a second and refuses it from then on\n`);
  return 0;
}

async function list(args: ParsedArgs, io: CliIO): Promise<number> {
  const path = registryPath(args);
  const file = await readEnrollment(path);
  if (booleanFlag(args, 'json')) {
    io.stdout.write(`${JSON.stringify(file.clients, null, 2)}\n`);
    return 0;
  }
  if (file.clients.length === 0) {
    io.stdout.write(`no clients in ${path}\n`);
    return 0;
  }
  const rows = file.clients.map((c) => [c.clientId, c.revokedAt === undefined ? 'enrolled' : `revoked ${c.revokedAt}`, c.enrolledAt, `${c.publicKey.slice(0, 12)}…`]);
  io.stdout.write(`${renderTable(['client', 'status', 'enrolled', 'key'], rows)}\n`);
  return 0;
}

export const clientsCommand: CliCommand = defineCommand({
  name: 'clients',
  summary: SUMMARY,
  usage: USAGE,
  help: SUMMARY,
  flags: FLAGS,
  positionals: { max: 2 },
  async run(args, io) {
    const [action, operand] = args.positionals;
    try {
      switch (action) {
        case 'add':
          return await add(args, operand, io);
        case 'revoke':
          return await revoke(args, operand, io);
        case 'list':
          if (operand !== undefined) throw usageError(`fedex clients list: unexpected argument '${operand}'.`);
          return await list(args, io);
        default:
          throw usageError(`fedex clients: expected add, revoke or list, got ${action === undefined ? 'nothing' : `'${action}'`}. See 'fedex clients --help'.`);
      }
    } catch (err) {
      if (err instanceof EnrollmentError || err instanceof IdentityFileError) throw usageError(`fedex clients ${action ?? ''}: ${err.message}`);
      throw err;
    }
  },
});
