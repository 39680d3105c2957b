/**
 * The extension's side of the dashboard's requests: one handler per method of
 * `DashboardRequestMap`, and `answerRequest`, which runs the one a request names and turns its
 * result, or its failure, into the reply: every request gets one. No vscode here.
 */
import type { DashboardReply, DashboardRequest, DashboardRequestErrorCode, DashboardRequestMap, DashboardRequestMethod } from './messages.js';

/** A request that could not be carried out: a stable code and one sentence for the user. */
export class RequestFailure extends Error {
  constructor(readonly code: DashboardRequestErrorCode, message: string) {
    super(message);
    this.name = 'RequestFailure';
  }
}

/** A handler per request method. */
export type RequestHandlers = {
  readonly [M in DashboardRequestMethod]: (params: DashboardRequestMap[M]['params']) => Promise<DashboardRequestMap[M]['result']>;
};

/**
 * Runs the handler of `request.method` and returns the reply. A `RequestFailure` becomes an error
 * with its code; anything else thrown is a bug of the handler: handed to `bug` (the panel logs it)
 * and answered with `E_INTERNAL`, so that the webview never waits for a reply that will not come.
 */
export async function answerRequest(request: DashboardRequest, handlers: RequestHandlers, bug: (err: unknown) => void): Promise<DashboardReply> {
  try {
    switch (request.method) {
      case 'exportReport':
        return { id: request.id, method: request.method, result: await handlers.exportReport(request.params) };
    }
  } catch (err) {
    if (err instanceof RequestFailure) return { id: request.id, method: request.method, error: { code: err.code, message: err.message } };
    bug(err);
    return { id: request.id, method: request.method, error: { code: 'E_INTERNAL', message: `The extension could not carry out ${request.method}: ${(err as Error).message ?? String(err)} (see the FedEx log).` } };
  }
}
