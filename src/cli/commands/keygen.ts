/**
 * `fedex keygen --client-id ID --out ID.key`: a client's Ed25519 identity (docs/security.md). Writes
 * the private key file (mode 0600; `fedex join --identity` reads it) and `ID.pub`, the one line the
 * coordinator's operator enrolls with `fedex clients add`.
 */
import { resolve } from 'node:path';
import { IdentityFileError, writeIdentityFiles } from '../../federation/shared/identityFiles.js';
import { defineCommand, type CliCommand } from '../command.js';
import { booleanFlag, optionalString, type FlagSpecs } from '../args.js';
import { usageError } from '../errors.js';

const FLAGS: FlagSpecs = {
  'client-id': { type: 'string', value: 'id', help: 'the id this client joins under (1–64 of A–Z a–z 0–9 _ -)' },
  out: { type: 'string', value: 'file.key', help: 'the private key file to write (default <client-id>.key); the public key goes beside it as .pub' },
  force: { type: 'boolean', help: 'replace existing key files' },
};

const USAGE = 'fedex keygen --client-id <id> [--out <file.key>] [--force]';
const SUMMARY = 'Makes a client identity key (Ed25519) for federations that admit clients by key.';

export const keygenCommand: CliCommand = defineCommand({
  name: 'keygen',
  summary: SUMMARY,
  usage: USAGE,
  help: SUMMARY,
  flags: FLAGS,
  async run(args, io) {
    const clientId = optionalString(args, 'client-id');
    if (clientId === undefined) throw usageError("fedex keygen: --client-id is required (the id you join under). See 'fedex keygen --help'.");
    const keyPath = resolve(optionalString(args, 'out') ?? `${clientId}.key`);
    try {
      const { publicKeyPath } = await writeIdentityFiles(keyPath, clientId, booleanFlag(args, 'force'));
      io.stdout.write(`wrote the private key ${keyPath} (keep it secret: mode 0600) and the public key ${publicKeyPath}\n`);
      io.stdout.write(`send ${publicKeyPath} to the coordinator's operator, who enrolls it with:\n  fedex clients add ${publicKeyPath} --clients clients.json\n`);
      io.stdout.write(`then join with:\n  fedex join <url> --identity ${keyPath} --data …\n`);
      return 0;
    } catch (err) {
      if (err instanceof IdentityFileError) throw usageError(`fedex keygen: ${err.message}`);
      throw err;
    }
  },
});
