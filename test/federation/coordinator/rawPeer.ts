// A hand-driven protocol peer for the coordinator tests: sends exactly the frames a test wants
// (valid, late, duplicated, corrupted) and waits for the coordinator's answers.
import { encodeMessage, tryDecodeMessage, type SendOptions } from '../../../src/federation/protocol/codec.js';
import type { AnyMessage, AnyOutgoingMessage, Message } from '../../../src/federation/protocol/envelope.js';
import type { Method, ParamsOf } from '../../../src/federation/protocol/messages.js';
import { connectTransport } from '../../../src/federation/transport/client.js';
import type { CloseInfo, Connection } from '../../../src/federation/transport/types.js';
import { BASE, TOKEN } from './fixtures.js';

export class RawPeer {
  private readonly inbox: AnyMessage[] = [];
  private wake: (() => void) | undefined;
  readonly errors: string[] = [];

  private constructor(readonly conn: Connection) {
    conn.on('frame', (bytes) => {
      const r = tryDecodeMessage(bytes, { receiver: 'client' });
      if (!r.ok) {
        this.errors.push(r.error.code);
        return;
      }
      if (r.message.method === 'ping') {
        void conn.send(encodeMessage({ method: 'pong', params: { nonce: r.message.params.nonce } })).catch(() => undefined);
        return;
      }
      this.inbox.push(r.message);
      this.wake?.();
    });
    conn.on('close', () => this.wake?.());
  }

  static async connect(url: string, maxFrameBytes = 1 << 24): Promise<RawPeer> {
    return new RawPeer(await connectTransport(url, { maxFrameBytes, heartbeatMs: 200 }));
  }

  get closed(): Promise<CloseInfo> {
    return this.conn.closed;
  }

  send(message: AnyOutgoingMessage, options: SendOptions = {}): Promise<void> {
    return this.conn.send(encodeMessage(message, options));
  }

  sendBytes(bytes: Uint8Array): Promise<void> {
    return this.conn.send(bytes);
  }

  /** The next message of `method` (messages of other methods stay queued). */
  async next<M extends Method>(method: M, timeoutMs = 5_000): Promise<Message<M>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex((m) => m.method === method);
      if (i >= 0) {
        return this.inbox.splice(i, 1)[0] as Message<M>;
      }
      if (!this.conn.isOpen) throw new Error(`connection closed while waiting for ${method} (inbox: ${this.inbox.map((m) => m.method).join(', ')})`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${method}`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  /** The next message of any of `methods`, in arrival order (for answers that must come in order). */
  async nextOf<M extends Method>(methods: readonly M[], timeoutMs = 5_000): Promise<Message<M>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.inbox.findIndex((m) => (methods as readonly Method[]).includes(m.method));
      if (i >= 0) return this.inbox.splice(i, 1)[0] as Message<M>;
      if (!this.conn.isOpen) throw new Error(`connection closed while waiting for ${methods.join('/')}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${methods.join('/')}`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  /** Sends a valid hello (with overrides). */
  hello(overrides: Partial<ParamsOf<'hello'>> = {}): Promise<void> {
    return this.send({
      method: 'hello',
      params: {
        protocolMajor: 1,
        protocolMinor: 0,
        token: TOKEN,
        clientName: 'raw peer',
        clientId: 'raw',
        device: 'cpu',
        baseModelHash: BASE.hash,
        capabilities: { uplinkDtypes: ['float32'], factoredResidual: true, modelTransfer: false, maxFrameBytes: 1 << 24 },
        ...overrides,
      },
    });
  }
}
