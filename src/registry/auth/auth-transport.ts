import type { Logger } from "../../log.js";
import { foldHostCase, hostnameOf, type RegistryHost } from "../../reference/index.js";
import type { Credential } from "../credentials/types.js";
import { RegistryError } from "../errors.js";
import { redactUrl, type Redactor } from "../redact.js";
import type { Clock } from "../transport/clock.js";
import { isInternalHost, type HostResolver } from "../transport/network-address.js";
import { errorBodyDetails, readErrorBody, requestError } from "../transport/request-error.js";
import type { SecurityPolicy } from "../transport/security-policy.js";
import {
  isReplayableBody,
  type HttpRequest,
  type HttpResponse,
  type RequestAuth,
  type Transport,
} from "../transport/types.js";
import { parseChallenges, preferredChallenge, type Challenge } from "./challenge.js";
import { mergeScopes } from "./scope.js";
import { TokenCache, credentialFingerprint, tokenCacheKey } from "./token-cache.js";
import { basicHeader, requestToken } from "./token-client.js";

/**
 * The auth layer: anonymous, HTTP Basic, and the bearer token flow of the distribution token
 * spec. It learns each registry's challenge from its first 401, then authorises later requests
 * up front: Basic with the user's credentials, Bearer with a token for exactly the request's
 * scopes (cached per registry origin, realm, service, scopes and credential until shortly
 * before it expires). A 401 is answered once, with a fresh token; a second 401 is an error that
 * names the registry and where credentials were looked for.
 *
 * Everything is bound to the registry origin it belongs to (`RequestAuth.origin`), because the
 * realm, service and scope of a challenge are whatever the registry says and a hostile registry
 * may name another registry's realm:
 * - the credential is the one looked up for that registry; it goes to the registry's own origin
 *   (Basic) or to the realm the registry names (which may be on another host, as Docker Hub's
 *   is), never anywhere else; the redirect layer below drops it when a hop leaves the origin;
 * - access tokens are cached per origin, and only ever sent to that origin;
 * - a refresh token a realm rotated is kept per origin and realm, and only ever sent back to
 *   that realm for that origin;
 * - a token is asked for the scopes the request needs, never for more: the challenge's own
 *   `scope` is not added, so a registry cannot have a token minted with wider access;
 * - a token realm must be https (unless the registry itself is reached over plain HTTP) and
 *   must not point at a loopback, private or link-local address unless the registry is on one.
 * https://distribution.github.io/distribution/spec/auth/token/
 */

/** Looks up credentials for a registry (see credentials/credential-store.ts). */
export interface CredentialProvider {
  lookup(
    registry: RegistryHost,
    repository: RequestAuth["repository"],
    options?: { readonly signal?: AbortSignal },
  ): Promise<Credential | undefined>;
  /** Where credentials for `registry` were looked for, for messages. */
  places(registry: RegistryHost): string[];
  /**
   * A replacement for a short-lived credential that was refused (credentials/credential-store.ts);
   * the same credential when there is none to be had.
   */
  renew?(
    registry: RegistryHost,
    repository: RequestAuth["repository"],
    stale: Credential,
    options?: { readonly signal?: AbortSignal },
  ): Promise<Credential | undefined>;
}

export interface AuthTransportOptions {
  readonly credentials: CredentialProvider;
  readonly policy: SecurityPolicy;
  readonly resolveHost: HostResolver;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly redactor: Redactor;
}

interface Authorization {
  readonly header: string;
  /** The token cache entry the header came from, to drop it when the registry refuses it. */
  readonly cacheKey?: string;
}

export class AuthTransport implements Transport {
  private readonly challenges = new Map<string, Challenge>();
  private readonly tokens: TokenCache;
  /** Rotated refresh tokens by (registry origin, realm, credential). */
  private readonly refreshTokens = new Map<string, string>();
  private readonly internalHosts = new Map<string, Promise<boolean>>();
  /** Credentials whose secrets the redactor already knows (the credential store caches them). */
  private readonly redacted = new WeakSet<Credential>();

  constructor(
    private readonly next: Transport,
    private readonly options: AuthTransportOptions,
  ) {
    this.tokens = new TokenCache(options.clock);
  }

  async send(request: HttpRequest): Promise<HttpResponse> {
    const { auth } = request;
    if (auth?.origin !== request.url.origin) return this.next.send(request);

    const credential = await this.credentialFor(auth, request.signal);
    try {
      return await this.sendAs(request, auth, credential);
    } catch (error) {
      // A short-lived credential (a Google access token) refused with 401, by the registry or
      // its token endpoint, may have expired or been revoked before its announced time: the
      // request is sent once more with a renewed one. Never for a streamed body.
      const renewed = await this.renewed(error, request, auth, credential);
      if (renewed === undefined) throw error;
      return this.sendAs(request, auth, renewed);
    }
  }

  /** The credential to try again with after `error`, or undefined when there is none. */
  private async renewed(
    error: unknown,
    request: HttpRequest,
    auth: RequestAuth,
    credential: Credential | undefined,
  ): Promise<Credential | undefined> {
    if (
      credential?.kind !== "basic" ||
      credential.renewAfter === undefined ||
      this.options.credentials.renew === undefined ||
      !isReplayableBody(request.body) ||
      !(error instanceof RegistryError) ||
      error.code !== "registry-auth" ||
      error.details.status !== 401
    ) {
      return undefined;
    }
    const renewed = await this.options.credentials.renew(
      auth.registry,
      auth.repository,
      credential,
      request.signal ? { signal: request.signal } : {},
    );
    if (renewed === undefined || renewed === credential) return undefined;
    if (!this.redacted.has(renewed)) {
      this.redacted.add(renewed);
      this.options.redactor.addCredential(renewed);
    }
    this.options.logger.log(
      "info",
      `${auth.registry} refused the credential from ${credential.source}; trying once more with a renewed one`,
    );
    return renewed;
  }

  private async sendAs(
    request: HttpRequest,
    auth: RequestAuth,
    credential: Credential | undefined,
  ): Promise<HttpResponse> {
    const known = this.challenges.get(auth.origin);
    const first = known ? await this.authorize(request, auth, credential, known, false) : undefined;
    const response = await this.next.send(withAuthorization(request, first?.header));
    if (response.status !== 401 || response.url.origin !== auth.origin) return response;

    const challenge = preferredChallenge(parseChallenges(response.headers.all("www-authenticate")));
    if (first?.cacheKey !== undefined) this.tokens.delete(first.cacheKey);
    if (!challenge || !isReplayableBody(request.body)) {
      throw await this.failure(response, request, auth, credential, challenge);
    }
    this.challenges.set(auth.origin, challenge);
    await response.discard();
    const retry = await this.authorize(request, auth, credential, challenge, true);
    if (!retry) throw await this.failure(response, request, auth, credential, challenge);

    const second = await this.next.send(withAuthorization(request, retry.header));
    if (second.status === 401 && second.url.origin === auth.origin) {
      if (retry.cacheKey !== undefined) this.tokens.delete(retry.cacheKey);
      throw await this.failure(second, request, auth, credential, challenge);
    }
    return second;
  }

  private async credentialFor(
    auth: RequestAuth,
    signal: AbortSignal | undefined,
  ): Promise<Credential | undefined> {
    const credential = await this.options.credentials.lookup(
      auth.registry,
      auth.repository,
      signal ? { signal } : {},
    );
    if (credential === undefined || this.redacted.has(credential)) return credential;
    this.redacted.add(credential);
    this.options.redactor.addCredential(credential);
    return credential;
  }

  /** The Authorization header for `challenge`, or undefined when there is nothing to send. */
  private async authorize(
    request: HttpRequest,
    auth: RequestAuth,
    credential: Credential | undefined,
    challenge: Challenge,
    fresh: boolean,
  ): Promise<Authorization | undefined> {
    if (credential?.kind === "registry-token") return { header: `Bearer ${credential.token}` };
    if (challenge.scheme === "basic") {
      if (credential?.kind === "basic") {
        return { header: basicHeader(credential.username, credential.password) };
      }
      if (credential?.kind === "identity-token") {
        return { header: basicHeader(credential.username, credential.identityToken) };
      }
      return undefined;
    }
    const realmText = challenge.params.realm;
    if (realmText === undefined) return undefined;
    const realm = await this.checkedRealm(realmText, request, auth);
    const service = challenge.params.service;
    // Exactly the scopes the request needs: not the challenge's `scope`, which the registry
    // chooses (see the class comment).
    const scopes = mergeScopes(auth.scopes);
    const principal = credentialFingerprint(credential);
    const cacheKey = tokenCacheKey({
      origin: auth.origin,
      realm: realm.href,
      service: service ?? "",
      scopes,
      principal,
    });
    const refreshKey = JSON.stringify([auth.origin, realm.href, principal]);
    const token = await this.tokens.getOrFetch(
      cacheKey,
      async () => {
        this.options.logger.log("debug", `token request to ${redactUrl(realm)}`, { scopes });
        const refreshToken = this.refreshTokens.get(refreshKey);
        const answer = await requestToken(
          this.next,
          {
            realm,
            ...(service === undefined ? {} : { service }),
            scopes,
            ...(credential === undefined ? {} : { credential }),
            ...(refreshToken === undefined ? {} : { refreshToken }),
            context: request.context,
            ...(request.signal === undefined ? {} : { signal: request.signal }),
          },
          this.options.redactor,
          () => this.options.credentials.places(auth.registry).join(", "),
        );
        if (answer.refreshToken !== undefined) this.refreshTokens.set(refreshKey, answer.refreshToken);
        return answer;
      },
      { fresh },
    );
    return { header: `Bearer ${token}`, cacheKey };
  }

  /** Parses and vets a token realm (see the class comment). */
  private async checkedRealm(realmText: string, request: HttpRequest, auth: RequestAuth): Promise<URL> {
    let realm: URL;
    try {
      realm = new URL(realmText);
    } catch {
      throw requestError("registry-protocol", "the registry's token realm is not a URL", request);
    }
    const registryUrl = new URL(auth.origin);
    if (realm.protocol !== "https:") {
      const registryIsPlain = registryUrl.protocol === "http:";
      if (realm.protocol !== "http:") {
        // file:, ftp:, data:...: never a place to send credentials to, whatever the registry.
        throw requestError(
          "registry-insecure",
          `refusing token realm ${redactUrl(realm)}: a token realm must be an https URL (or http for a registry reached over plain HTTP), not ${realm.protocol}`,
          request,
        );
      }
      if (!registryIsPlain) {
        throw requestError(
          "registry-insecure",
          `refusing token realm ${redactUrl(realm)}: a registry reached over https must use an https token realm`,
          request,
        );
      }
    }
    if (realm.username !== "" || realm.password !== "") {
      throw requestError("registry-insecure", "refusing a token realm with user info in its URL", request);
    }
    const [realmInternal, registryInternal] = await Promise.all([
      this.isInternal(realm.hostname),
      this.isInternal(registryUrl.hostname),
    ]);
    if (realmInternal && !registryInternal) {
      throw requestError(
        "registry-insecure",
        `refusing token realm ${redactUrl(realm)}: it points at a loopback, private or link-local address while the registry ${hostnameOf(auth.registry)} does not`,
        request,
      );
    }
    return realm;
  }

  private isInternal(hostname: string): Promise<boolean> {
    const key = foldHostCase(hostname);
    let answer = this.internalHosts.get(key);
    if (!answer) {
      answer = isInternalHost(key, this.options.resolveHost);
      this.internalHosts.set(key, answer);
    }
    return answer;
  }

  /** The registry-auth error for a final 401, naming where credentials were looked for. */
  private async failure(
    response: HttpResponse,
    request: HttpRequest,
    auth: RequestAuth,
    credential: Credential | undefined,
    challenge: Challenge | undefined,
  ): Promise<RegistryError> {
    const parsed = await readErrorBody(response, request, this.options.redactor);
    const needs = auth.scopes.join(" ");
    let summary: string;
    if (!challenge) {
      summary = "the registry asks for authentication without a usable WWW-Authenticate challenge";
    } else if (!isReplayableBody(request.body)) {
      summary =
        "the registry refused the authorisation of a streamed upload (the token may have expired); try again";
    } else if (!credential) {
      summary = `authentication required and no credentials found for ${auth.registry} (looked in: ${this.options.credentials.places(auth.registry).join(", ")})`;
    } else {
      summary = `the credentials from ${credential.source} were refused or do not allow ${needs}`;
    }
    return requestError("registry-auth", summary, request, {
      status: 401,
      ...errorBodyDetails(parsed),
      url: response.url,
    });
  }
}

function withAuthorization(request: HttpRequest, header: string | undefined): HttpRequest {
  if (header === undefined) return request;
  return { ...request, headers: { ...request.headers, authorization: header } };
}
