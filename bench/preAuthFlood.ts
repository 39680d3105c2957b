/**
 * Child process of bench/preAuth.ts: holds `connections` idle, unauthenticated WebSockets to a
 * coordinator (never a hello), spread round-robin over the loopback source `addresses`. A connection
 * the coordinator closes (at its hello timeout) is opened again at once, a refused one (503) after
 * `retryMs`, so the flood stays as large as the coordinator lets it be. Prints one JSON line
 * (`FloodStatus`) when every first attempt has settled and then every 500 ms, until killed.
 * Usage: node --import tsx bench/preAuthFlood.ts '<json args>'
 */
import { WebSocket } from 'ws';

export interface FloodArgs {
  readonly url: string;
  readonly connections: number;
  readonly addresses: readonly string[];
  readonly retryMs: number;
}

export interface FloodStatus {
  /** Connections open now. */
  readonly open: number;
  /** Upgrades refused (HTTP 503) so far. */
  readonly refused: number;
  /** Attempts cut off without an answer so far (beyond the coordinator's 64 refusals in flight it drops new sockets at once). */
  readonly dropped: number;
  /** Connections the coordinator closed so far. */
  readonly closedByServer: number;
  /** From the start until every first attempt had settled. */
  readonly settleMs: number;
}

function main(args: FloodArgs): void {
  const t0 = performance.now();
  let open = 0;
  let refused = 0;
  let dropped = 0;
  let closedByServer = 0;
  let settled = 0;
  let settleMs = NaN;
  const report = (): void => void process.stdout.write(`${JSON.stringify({ open, refused, dropped, closedByServer, settleMs } satisfies FloodStatus)}\n`);
  const settle = (): void => {
    if (++settled !== args.connections) return;
    settleMs = performance.now() - t0;
    report();
    setInterval(report, 500);
  };
  const connect = (i: number, first: boolean): void => {
    const ws = new WebSocket(args.url, { localAddress: args.addresses[i % args.addresses.length], perMessageDeflate: false });
    let opened = false;
    let answered = false;
    ws.once('open', () => {
      opened = true;
      open++;
      if (first) settle();
    });
    ws.once('unexpected-response', (_req, res) => {
      refused++;
      answered = true;
      res.resume();
      ws.terminate();
    });
    ws.on('error', () => undefined);
    ws.once('close', () => {
      if (opened) {
        open--;
        closedByServer++;
        connect(i, false);
        return;
      }
      if (!answered) dropped++;
      if (first) settle();
      setTimeout(() => connect(i, false), args.retryMs);
    });
  };
  for (let i = 0; i < args.connections; i++) connect(i, true);
}

main(JSON.parse(process.argv[2] ?? '{}') as FloodArgs);
