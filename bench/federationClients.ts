/**
 * Child process of bench/federation.ts: runs N lightweight federation clients (synthetic trainer,
 * no model) against a coordinator URL, so that their decoding and training do not share the
 * coordinator's event loop. Prints one JSON line when every client is done.
 * Usage: node --import tsx bench/federationClients.ts '<json args>'
 */
import { createOrtProductBackend } from '../src/runtime/kernels/factoredUpdate.js';
import type { AdapterLayout } from '../src/federation/protocol/adapterTensors.js';
import { FederationClient } from '../src/federation/client/client.js';
import { createSyntheticBase, createSyntheticTrainer } from '../src/federation/client/syntheticTrainer.js';

export interface ClientsArgs {
  readonly url: string;
  readonly token: string;
  readonly clients: number;
  readonly layout: AdapterLayout;
  readonly baseSeed: number;
  readonly factoredResidual: boolean;
}

export interface ClientsResult {
  readonly completed: number;
  readonly participated: number[];
  readonly maxRssMiB: number;
}

async function main(args: ClientsArgs): Promise<ClientsResult> {
  const base = createSyntheticBase(args.layout, args.baseSeed);
  const backend = createOrtProductBackend({ intraOpThreads: 1 });
  const clients = Array.from({ length: args.clients }, (_, i) => new FederationClient({
    url: args.url,
    token: args.token,
    name: `bench ${i}`,
    clientId: `b${String(i).padStart(3, '0')}`,
    base,
    backend,
    trainer: createSyntheticTrainer({ seed: 1000 + i, numExamples: 100 }),
    factoredResidual: args.factoredResidual,
    heartbeatMs: 30_000,
    reconnect: { initialDelayMs: 100, maxDelayMs: 2_000 },
  }));
  const outcomes = await Promise.all(clients.map((c) => c.run()));
  await backend.dispose();
  return {
    completed: outcomes.filter((o) => o.reason === 'completed').length,
    participated: outcomes.map((o) => o.roundsParticipated),
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
  };
}

main(JSON.parse(process.argv[2] ?? '{}') as ClientsArgs).then(
  (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  },
);
