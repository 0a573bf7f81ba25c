import { AbortedError, PromoterError, truncateForMessage, type GitHubErrorCode } from "../errors.js";
import { isJsonObject } from "../json-shape.js";
import { isLoopbackHost } from "../reference/index.js";
import {
  RegistryError,
  redactUrl,
  systemClock,
  type Clock,
  type HttpMethod,
  type HttpResponse,
  type Redactor,
  type Transport,
} from "../registry/index.js";

/**
 * A small client of the GitHub REST API over the promoter's one HTTP stack (registry/http-stack:
 * scheme policy, deadlines, retries, redirects that drop credentials off-origin). What it adds:
 * - the token goes to the API's own origin only: an answer that comes from anywhere else after a
 *   redirect is refused, and the redirect layer has already dropped the header for that hop;
 * - plain HTTP only to a loopback API (a test stand-in), never to a remote host;
 * - GitHub's rate limits (403 or 429 with `Retry-After`, or `x-ratelimit-remaining: 0` with
 *   `x-ratelimit-reset`): waited out when the wait is short, else one clear error saying when;
 * - every error is one line naming the request, with the API's own message, never the token.
 * https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api
 */

export const DEFAULT_GITHUB_API_URL = "https://api.github.com";
/** The variable the token is read from, as kpromo (release-sdk's `github.TokenEnvKey`) reads it. */
export const GITHUB_TOKEN_VARIABLE = "GITHUB_TOKEN";
/** The longest rate-limit wait sat out before giving up with the reset time. */
export const MAX_RATE_LIMIT_WAIT_MS = 60_000;
/** JSON answers are small (a tree listing is the largest); this caps what one may hold. */
export const MAX_GITHUB_RESPONSE_BYTES = 16 * 1024 * 1024;
const MAX_RATE_LIMIT_WAITS = 3;
const API_VERSION = "2022-11-28";

export class GitHubError extends PromoterError {
  declare readonly code: GitHubErrorCode;
  readonly status: number | undefined;

  constructor(code: GitHubErrorCode, message: string, status?: number, options?: { cause?: unknown }) {
    super(code, message, options);
    this.status = status;
  }
}

export interface GitHubClientOptions {
  /** `https://api.github.com` or a GitHub Enterprise `https://HOST/api/v3`; http only on loopback. */
  readonly apiUrl: string;
  readonly token: string;
  readonly transport: Transport;
  /** Learns the token, so that no message or log line can carry it. */
  readonly redactor: Redactor;
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
  /** Called with each request before it is sent (`--dry-run` lists what it read). */
  readonly onRequest?: (method: HttpMethod, path: string) => void;
}

export interface GitHubAnswer {
  readonly status: number;
  readonly json: unknown;
}

export function parseGitHubApiUrl(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new GitHubError("github-protocol", `--github-api-url ${JSON.stringify(text)} is not a URL`);
  }
  if (url.protocol !== "https:" && !(url.protocol === "http:" && isLoopbackHost(url.host))) {
    throw new GitHubError(
      "github-protocol",
      `--github-api-url ${redactUrl(url)}: the token is sent over https only (plain http to a loopback address for tests)`,
    );
  }
  if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") {
    throw new GitHubError(
      "github-protocol",
      `--github-api-url ${redactUrl(url)}: give the API's base URL, without user, query or fragment`,
    );
  }
  if (!url.pathname.endsWith("/")) url.pathname += "/";
  return url;
}

export class GitHubClient {
  private readonly base: URL;
  private readonly clock: Clock;

  constructor(private readonly options: GitHubClientOptions) {
    this.base = parseGitHubApiUrl(options.apiUrl);
    options.redactor.add(options.token);
    this.clock = options.clock ?? systemClock;
  }

  /** The API's host, for messages. */
  get host(): string {
    return this.base.host;
  }

  /** `GET path`: the JSON answer, or undefined on 404. */
  async find(path: string): Promise<unknown> {
    const answer = await this.request("GET", path, undefined, [200, 404]);
    return answer.status === 404 ? undefined : answer.json;
  }

  async get(path: string): Promise<unknown> {
    return (await this.request("GET", path)).json;
  }

  /**
   * Sends `method path` with a JSON body and returns the answer; a status outside `accepted`
   * (default: 2xx) is an error naming the request and the API's message.
   */
  async request(
    method: HttpMethod,
    path: string,
    body?: unknown,
    accepted?: readonly number[],
  ): Promise<GitHubAnswer> {
    const url = new URL(path.replace(/^\//, ""), this.base);
    if (url.origin !== this.base.origin) {
      throw new GitHubError("github-protocol", `refusing request outside the API: ${redactUrl(url)}`);
    }
    const what = `${method} ${url.pathname}`;
    this.options.onRequest?.(method, url.pathname + url.search);
    const bytes = body === undefined ? undefined : new TextEncoder().encode(JSON.stringify(body));
    for (let waits = 0; ; waits++) {
      let response: HttpResponse;
      try {
        response = await this.options.transport.send({
          method,
          url,
          headers: {
            accept: "application/vnd.github+json",
            authorization: `Bearer ${this.options.token}`,
            "x-github-api-version": API_VERSION,
            ...(bytes === undefined ? {} : { "content-type": "application/json" }),
          },
          ...(bytes === undefined ? {} : { body: bytes }),
          context: { operation: what, registry: this.base.host },
          bufferLimit: MAX_GITHUB_RESPONSE_BYTES,
          ...(this.options.signal ? { signal: this.options.signal } : {}),
        });
      } catch (error) {
        if (error instanceof AbortedError) throw error;
        if (error instanceof RegistryError) {
          // The transport's message names the request already; say it is GitHub's API.
          throw new GitHubError(
            error.code === "registry-insecure" ? "github-protocol" : "github-http",
            this.redact(`GitHub API ${error.summary} (${what})`),
            undefined,
            { cause: error },
          );
        }
        throw error;
      }
      if (response.url.origin !== this.base.origin) {
        throw new GitHubError(
          "github-protocol",
          `${what}: redirected to another origin (${redactUrl(response.url)}); the token is sent to ${this.base.origin} only`,
          response.status,
        );
      }
      const json = this.parse(response, what);
      const wait = this.rateLimitWait(response);
      if (wait !== undefined) {
        if (wait.ms > MAX_RATE_LIMIT_WAIT_MS || waits >= MAX_RATE_LIMIT_WAITS) {
          throw new GitHubError(
            "github-rate-limited",
            `${what}: GitHub API rate limit reached (HTTP ${response.status}); it resets at ${new Date(this.clock.now() + wait.ms).toISOString()}, try again then`,
            response.status,
          );
        }
        // A rate-limited request was not carried out, so even a POST is safe to send again.
        await this.clock.sleep(wait.ms, this.options.signal);
        continue;
      }
      const ok = accepted
        ? accepted.includes(response.status)
        : response.status >= 200 && response.status < 300;
      if (!ok) throw this.statusError(response.status, json, what);
      return { status: response.status, json };
    }
  }

  private parse(response: HttpResponse, what: string): unknown {
    const text = Buffer.from(response.bytes ?? new Uint8Array()).toString("utf8");
    if (text.trim() === "") return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      if (response.status >= 200 && response.status < 300) {
        throw new GitHubError("github-protocol", `${what}: the answer is not JSON`, response.status);
      }
      return undefined;
    }
  }

  /** How long GitHub asks to wait, when the answer is a rate limit (and not a plain 403). */
  private rateLimitWait(response: HttpResponse): { ms: number } | undefined {
    if (response.status !== 403 && response.status !== 429) return undefined;
    const retryAfter = response.headers.get("retry-after");
    if (retryAfter !== undefined && /^\d+$/.test(retryAfter.trim())) {
      return { ms: Number(retryAfter.trim()) * 1000 };
    }
    if (response.headers.get("x-ratelimit-remaining")?.trim() === "0") {
      const reset = Number(response.headers.get("x-ratelimit-reset"));
      if (Number.isFinite(reset)) return { ms: Math.max(0, reset * 1000 - this.clock.now()) };
      return { ms: Number.POSITIVE_INFINITY };
    }
    return undefined;
  }

  private statusError(status: number, json: unknown, what: string): GitHubError {
    const message = apiMessage(json);
    const detail = message === undefined ? "" : `: ${this.redact(message)}`;
    if (status === 401) {
      return new GitHubError(
        "github-auth",
        `${what}: GitHub refused the token in ${GITHUB_TOKEN_VARIABLE} (HTTP 401${detail})`,
        status,
      );
    }
    return new GitHubError("github-http", `${what}: HTTP ${status}${detail}`, status);
  }

  private redact(text: string): string {
    return this.options.redactor.redact(text);
  }
}

/** GitHub's `message`, with the first of its `errors` when they say more. */
export function apiMessage(json: unknown): string | undefined {
  if (!isJsonObject(json)) return undefined;
  const parts: string[] = [];
  if (typeof json.message === "string") parts.push(json.message);
  if (Array.isArray(json.errors)) {
    for (const entry of json.errors.slice(0, 3)) {
      if (isJsonObject(entry) && typeof entry.message === "string") parts.push(entry.message);
      else if (typeof entry === "string") parts.push(entry);
    }
  }
  return parts.length === 0 ? undefined : truncateForMessage(parts.join("; "), 300);
}
