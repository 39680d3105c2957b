/** Join tokens in VS Code's SecretStorage, keyed by federation URL (never in settings or logs). */
import type * as vscode from 'vscode';

const PREFIX = 'fedex.token:';

/** Reads and writes tokens per URL. */
export class TokenStore {
  constructor(private readonly secrets: vscode.SecretStorage) {}

  /** The token saved for `url`, if any. */
  async get(url: string): Promise<string | undefined> {
    return this.secrets.get(PREFIX + normalizeUrl(url));
  }

  async set(url: string, token: string): Promise<void> {
    await this.secrets.store(PREFIX + normalizeUrl(url), token);
  }

  async delete(url: string): Promise<void> {
    await this.secrets.delete(PREFIX + normalizeUrl(url));
  }
}

/** `WS://Host:80/` and `ws://host:80` are the same federation. */
export function normalizeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname === '/' ? '' : u.pathname}`;
  } catch {
    return url.trim();
  }
}
