/**
 * How a client proves who it is in its hello (docs/protocol.md §6.1, §7.2): the federation's shared
 * token, or (protocol 1.2) its own Ed25519 identity, then a signature of the coordinator's
 * challenge. Shared by the federation connection and the model fetch.
 */
import type { ParamsOf } from '../protocol/messages.js';
import { IDENTITY_SCHEME, signChallenge } from '../protocol/identity.js';
import type { ClientIdentity } from '../shared/identityFiles.js';
import { ClientError } from './errors.js';

/** The shared token (trial mode) or the client's key. */
export type ClientCredential = { readonly token: string; readonly identity?: undefined } | { readonly token?: undefined; readonly identity: ClientIdentity };

/** The credential of client options with `token` or `identity` (exactly one); a TypeError names the conflict. */
export function clientCredential(o: { readonly token?: string; readonly identity?: ClientIdentity; readonly clientId?: string }): ClientCredential {
  if (o.identity !== undefined) {
    if (o.token !== undefined) throw new TypeError('a client joins with its identity key or with the shared token, not both');
    if (o.clientId !== undefined && o.clientId !== o.identity.clientId) throw new TypeError(`the client id '${o.clientId}' differs from the identity key's '${o.identity.clientId}'`);
    return { identity: o.identity };
  }
  if (o.token === undefined) throw new TypeError('a client needs the shared join token or an identity key');
  return { token: o.token };
}

/** The hello fields that carry the credential. */
export function helloCredential(c: ClientCredential): Pick<ParamsOf<'hello'>, 'token' | 'identity'> {
  return c.identity !== undefined ? { identity: { scheme: IDENTITY_SCHEME, publicKey: c.identity.publicKey } } : { token: c.token };
}

/**
 * The answer to the coordinator's challenge for the hello this client sent; a fatal `E_AUTH`
 * ClientError when the client has no key to sign with (a token client at a coordinator that admits
 * clients by key).
 */
export function respondToChallenge(credential: ClientCredential, hello: ParamsOf<'hello'> | undefined, challenge: ParamsOf<'challenge'>, url: string): ParamsOf<'challenge_response'> {
  if (credential.identity === undefined || hello === undefined) {
    throw new ClientError('E_AUTH', `the coordinator at ${url} admits enrolled clients only (it sent a challenge); join with --identity <key file> (fedex keygen makes one)`);
  }
  return answerChallenge(credential.identity, hello, challenge);
}

/** The answer to a challenge, for the hello the client sent (its clientId, key and base model hash are signed). */
export function answerChallenge(identity: ClientIdentity, hello: ParamsOf<'hello'>, challenge: ParamsOf<'challenge'>, now: number = Date.now()): ParamsOf<'challenge_response'> {
  const signedAt = Math.max(0, Math.round(now));
  const signature = signChallenge(identity.privateKey, {
    nonce: challenge.nonce,
    clientId: hello.clientId ?? identity.clientId,
    publicKey: identity.publicKey,
    baseModelHash: hello.baseModelHash ?? '',
    signedAt,
  });
  return { signature, signedAt };
}
