/**
 * The client side of the heartbeat (docs/protocol.md): a `ping` whenever `everyMs` passed with
 * nothing sent, for both a federating connection and a model-fetching one.
 */
import type { OutgoingMessage } from '../protocol/envelope.js';

/**
 * Starts the timer (it does not keep the process alive): every `everyMs`, when `idleFor(everyMs)`
 * says nothing was sent for that long, `send`s a ping with the next nonce. Stop it with `clearInterval`.
 */
export function startHeartbeat(everyMs: number, idleFor: (ms: number) => boolean, send: (ping: OutgoingMessage<'ping'>) => void): NodeJS.Timeout {
  let nonce = 0;
  const timer = setInterval(() => {
    if (!idleFor(everyMs)) return;
    nonce = (nonce + 1) >>> 0;
    send({ method: 'ping', params: { nonce, sentAt: Date.now() } });
  }, everyMs);
  timer.unref();
  return timer;
}
