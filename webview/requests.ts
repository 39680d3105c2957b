/**
 * The webview's side of the dashboard's requests (DashboardRequestMap in
 * src/extension/dashboard/messages.ts): `request` posts one with a fresh id and resolves with the
 * result of the `reply` that carries the same id, or rejects with a `DashboardRequestFailure`
 * (its stable code and the extension's sentence). No DOM.
 */
import type {
  DashboardReply,
  DashboardRequest,
  DashboardRequestErrorCode,
  DashboardRequestMap,
  DashboardRequestMethod,
  WebviewToExtensionMessage,
} from '../src/extension/dashboard/messages.js';

/** A request the extension could not carry out. */
export class DashboardRequestFailure extends Error {
  constructor(readonly code: DashboardRequestErrorCode, message: string) {
    super(message);
    this.name = 'DashboardRequestFailure';
  }
}

interface Pending {
  readonly method: DashboardRequestMethod;
  resolve(result: unknown): void;
  reject(error: Error): void;
}

/** Sends requests and settles them with their replies. */
export class RequestClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(private readonly post: (message: WebviewToExtensionMessage) => void) {}

  /** Posts a request; resolves with its reply's result. */
  request<M extends DashboardRequestMethod>(method: M, params: DashboardRequestMap[M]['params']): Promise<DashboardRequestMap[M]['result']> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { method, resolve: resolve as (result: unknown) => void, reject });
      this.post({ type: 'request', id, method, params } as { readonly type: 'request' } & DashboardRequest);
    });
  }

  /** Settles the request `reply` answers; false when none waits for it (e.g. asked before a reload). */
  settle(reply: DashboardReply): boolean {
    const waiting = this.pending.get(reply.id);
    if (waiting === undefined || waiting.method !== reply.method) return false;
    this.pending.delete(reply.id);
    if ('error' in reply) waiting.reject(new DashboardRequestFailure(reply.error.code, reply.error.message));
    else waiting.resolve(reply.result);
    return true;
  }

  /** How many requests wait for their reply. */
  get waiting(): number {
    return this.pending.size;
  }
}
