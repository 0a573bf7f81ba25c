import { createHash } from "node:crypto";
import type { Credential } from "../credentials/types.js";
import type { Clock } from "../transport/clock.js";

/**
 * Bearer tokens by (registry origin, realm, service, scopes, credential), kept until shortly
 * before they expire. Concurrent requests that need the same token share one token request.
 * The registry origin is part of the key because a realm and service are whatever a registry's
 * 401 says: a hostile registry naming another registry's realm must not be handed a token
 * cached for that other registry.
 */

/** Tokens are dropped this long before they expire (at most a quarter of their lifetime). */
export const TOKEN_EXPIRY_MARGIN_MS = 30_000;

/** Lifetime of a token whose response has no `expires_in` (the token spec's default). */
export const DEFAULT_TOKEN_LIFETIME_MS = 60_000;

export interface TokenKey {
  /** `scheme://host[:port]` of the registry whose requests the token authorises. */
  readonly origin: string;
  readonly realm: string;
  readonly service: string;
  readonly scopes: readonly string[];
  /** Who asks: a fingerprint of the credential (see `credentialFingerprint`), or `anonymous`. */
  readonly principal: string;
}

/**
 * Who asks for a token, for cache keys: a hash of the credential's kind, user name and secret
 * (never the secret itself), or `anonymous`. Equal secrets share tokens whichever source they
 * came from; two credentials that only share a source and user name (`oauth2accesstoken`,
 * `<token>`) do not.
 */
export function credentialFingerprint(credential: Credential | undefined): string {
  if (!credential) return "anonymous";
  const secret =
    credential.kind === "basic"
      ? [credential.username, credential.password]
      : credential.kind === "identity-token"
        ? [credential.username, credential.identityToken]
        : [credential.token];
  return createHash("sha256")
    .update(JSON.stringify([credential.kind, ...secret]))
    .digest("hex");
}

export function tokenCacheKey(key: TokenKey): string {
  return JSON.stringify([key.origin, key.realm, key.service, key.scopes, key.principal]);
}

export class TokenCache {
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();
  private readonly pending = new Map<string, Promise<string>>();

  constructor(private readonly clock: Clock) {}

  get(key: string): string | undefined {
    const entry = this.tokens.get(key);
    if (!entry) return undefined;
    if (this.clock.now() >= entry.expiresAt) {
      this.tokens.delete(key);
      return undefined;
    }
    return entry.token;
  }

  set(key: string, token: string, lifetimeMs: number): void {
    const margin = Math.min(TOKEN_EXPIRY_MARGIN_MS, lifetimeMs / 4);
    this.tokens.set(key, { token, expiresAt: this.clock.now() + lifetimeMs - margin });
  }

  delete(key: string): void {
    this.tokens.delete(key);
  }

  /**
   * The cached token, or the result of `fetch` (one fetch per key at a time), cached for the
   * lifetime it reports.
   */
  async getOrFetch(
    key: string,
    fetch: () => Promise<{ token: string; lifetimeMs: number }>,
    options: { readonly fresh?: boolean } = {},
  ): Promise<string> {
    if (!options.fresh) {
      const cached = this.get(key);
      if (cached !== undefined) return cached;
    }
    const inFlight = this.pending.get(key);
    if (inFlight) return inFlight;
    const promise = (async () => {
      try {
        const { token, lifetimeMs } = await fetch();
        this.set(key, token, lifetimeMs);
        return token;
      } finally {
        this.pending.delete(key);
      }
    })();
    this.pending.set(key, promise);
    return promise;
  }
}
