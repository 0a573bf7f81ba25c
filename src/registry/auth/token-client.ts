import { isJsonObject } from "../../json-shape.js";
import type { Credential } from "../credentials/types.js";
import { MAX_TOKEN_CHARS, MAX_TOKEN_RESPONSE_BYTES } from "../limits.js";
import type { Redactor } from "../redact.js";
import { errorBodyDetails, parseErrorBody, requestError } from "../transport/request-error.js";
import type { HttpRequest, RequestContext, Transport } from "../transport/types.js";
import { DEFAULT_TOKEN_LIFETIME_MS } from "./token-cache.js";

/**
 * Asks a token endpoint for a bearer token with exactly the scopes a request needs.
 * - user name and password (or none): `GET realm?service=...&scope=...` with HTTP Basic;
 * - identity token (OAuth2 refresh token): `POST realm` with `grant_type=refresh_token`.
 * https://distribution.github.io/distribution/spec/auth/token/
 * https://distribution.github.io/distribution/spec/auth/oauth/
 */

/** The OAuth2 client id we announce (the token spec asks clients to name themselves). */
export const OAUTH_CLIENT_ID = "image-promoter";

export interface TokenRequest {
  readonly realm: URL;
  readonly service?: string;
  readonly scopes: readonly string[];
  readonly credential?: Credential;
  /** The latest refresh token for an identity-token credential (servers may rotate it). */
  readonly refreshToken?: string;
  readonly context: RequestContext;
  readonly signal?: AbortSignal;
}

export interface TokenResponse {
  readonly token: string;
  readonly lifetimeMs: number;
  /** A rotated refresh token, when the server sent one. */
  readonly refreshToken?: string;
}

/** An `Authorization: Basic` value. */
export function basicHeader(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}

function buildRequest(request: TokenRequest): HttpRequest {
  const { credential } = request;
  const context: RequestContext = { ...request.context, operation: `${request.context.operation} (token)` };
  if (credential?.kind === "identity-token") {
    const form = new URLSearchParams({
      grant_type: "refresh_token",
      client_id: OAUTH_CLIENT_ID,
      refresh_token: request.refreshToken ?? credential.identityToken,
      ...(request.service === undefined ? {} : { service: request.service }),
      ...(request.scopes.length > 0 ? { scope: request.scopes.join(" ") } : {}),
    });
    return {
      method: "POST",
      url: request.realm,
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new TextEncoder().encode(form.toString()),
      // Exchanging a refresh token has no side effect a repeat would double.
      idempotent: true,
      bufferLimit: MAX_TOKEN_RESPONSE_BYTES,
      context,
      ...(request.signal === undefined ? {} : { signal: request.signal }),
    };
  }
  const url = new URL(request.realm);
  if (request.service !== undefined) url.searchParams.set("service", request.service);
  for (const scope of request.scopes) url.searchParams.append("scope", scope);
  const headers: Record<string, string> = { accept: "application/json" };
  if (credential?.kind === "basic")
    headers.authorization = basicHeader(credential.username, credential.password);
  return {
    method: "GET",
    url,
    headers,
    bufferLimit: MAX_TOKEN_RESPONSE_BYTES,
    context,
    ...(request.signal === undefined ? {} : { signal: request.signal }),
  };
}

/**
 * Printable ASCII without spaces (RFC 9110 VCHAR): what can follow `Bearer ` in a header
 * (RFC 6750 section 2.1 asks for less still). A control character would split the header.
 */
const TOKEN_TEXT = /^[\x21-\x7e]+$/;

/** Why a token from a token endpoint cannot be used, or undefined when it can. */
function tokenTextProblem(token: string): string | undefined {
  if (token.length > MAX_TOKEN_CHARS) return `is longer than ${MAX_TOKEN_CHARS} characters`;
  if (!TOKEN_TEXT.test(token)) return "has characters other than printable ASCII";
  return undefined;
}

export async function requestToken(
  transport: Transport,
  request: TokenRequest,
  redactor: Redactor,
  lookedIn: () => string,
): Promise<TokenResponse> {
  const http = buildRequest(request);
  const response = await transport.send(http);
  const bytes = response.bytes ?? new Uint8Array();
  if (response.status !== 200) {
    const parsed = parseErrorBody(bytes, redactor);
    const who = request.credential
      ? `the credentials from ${request.credential.source}`
      : `anonymous access (no credentials found; looked in: ${lookedIn()})`;
    const denied = response.status === 403;
    throw requestError(
      denied ? "registry-denied" : "registry-auth",
      `the token endpoint refused ${who} for ${request.scopes.join(" ") || "access"}`,
      http,
      {
        status: response.status,
        ...errorBodyDetails(parsed),
        url: response.url,
      },
    );
  }
  let document: unknown;
  try {
    document = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    throw requestError(
      "registry-protocol",
      "the token endpoint answered with something that is not JSON",
      http,
      {
        status: response.status,
      },
    );
  }
  const fields: Record<string, unknown> = isJsonObject(document) ? document : {};
  const token =
    typeof fields.token === "string" && fields.token.length > 0
      ? fields.token
      : typeof fields.access_token === "string" && fields.access_token.length > 0
        ? fields.access_token
        : undefined;
  if (token === undefined) {
    throw requestError("registry-protocol", "the token endpoint's answer has no token", http, {
      status: response.status,
    });
  }
  redactor.add(token);
  const tokenProblem = tokenTextProblem(token);
  if (tokenProblem !== undefined) {
    throw requestError("registry-protocol", `the token endpoint's token ${tokenProblem}`, http, {
      status: response.status,
    });
  }
  const expiresIn = fields.expires_in;
  const lifetimeMs =
    typeof expiresIn === "number" && Number.isFinite(expiresIn) && expiresIn > 0
      ? expiresIn * 1000
      : DEFAULT_TOKEN_LIFETIME_MS;
  const refreshToken =
    typeof fields.refresh_token === "string" && fields.refresh_token.length > 0
      ? fields.refresh_token
      : undefined;
  if (refreshToken !== undefined) {
    redactor.add(refreshToken);
    const refreshProblem = tokenTextProblem(refreshToken);
    if (refreshProblem !== undefined) {
      throw requestError("registry-protocol", `the token endpoint's refresh token ${refreshProblem}`, http, {
        status: response.status,
      });
    }
  }
  return { token, lifetimeMs, ...(refreshToken === undefined ? {} : { refreshToken }) };
}
