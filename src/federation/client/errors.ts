/** Errors of the federation client: a stable code and one sentence naming the URL, module or round. */
import { isKnownErrorCode, type ProtocolErrorCode } from '../protocol/errors.js';

/**
 * Protocol codes the coordinator sent (`E_AUTH`, `E_VERSION`, `E_BASE_MISMATCH`, …), plus the
 * client's own: `C_BASE_LAYOUT` (the local base does not match the federation's layout),
 * `C_CONNECT` (gave up reconnecting), `C_ABORTED` (stopped by its signal), `C_REJECTED` (a
 * rejection with a code this version does not know).
 */
export type ClientErrorCode = ProtocolErrorCode | 'C_BASE_LAYOUT' | 'C_CONNECT' | 'C_ABORTED' | 'C_REJECTED';

export class ClientError extends Error {
  override readonly name = 'ClientError';
  constructor(readonly code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The client error for a `reject` (or fatal `error`) from the coordinator. */
export function rejectionError(code: string, message: string, url: string): ClientError {
  const known = isKnownErrorCode(code) ? code : 'C_REJECTED';
  return new ClientError(known, `coordinator ${url} refused the connection (${code}): ${message}`);
}
