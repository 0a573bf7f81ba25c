import type { Logger } from "../../log.js";
import { RegistryError } from "../errors.js";
import { redactUrl } from "../redact.js";
import type { Clock } from "./clock.js";
import { isTransientNetworkError } from "./undici-transport.js";
import { isIdempotent, type HttpRequest, type HttpResponse, type Transport } from "./types.js";

/**
 * Retries idempotent requests on network failures, timeouts, 408, 429 and 5xx, with exponential
 * backoff and full jitter, honouring `Retry-After` (delta-seconds or HTTP-date) up to a cap.
 * A request with a streamed body is never replayed: a blob upload restarts its session instead
 * (the caller opens a new source stream and POSTs again).
 * https://www.rfc-editor.org/rfc/rfc9110#name-retry-after
 */
export interface RetryPolicy {
  /** Attempts in total, the first included; 1 disables retries. */
  readonly maxAttempts: number;
  /** Backoff before the second attempt; doubles each time, with full jitter. */
  readonly baseDelayMs: number;
  /** Ceiling of one backoff. */
  readonly maxDelayMs: number;
  /**
   * The longest `Retry-After` waited for. A registry asking for more is not retried: its answer
   * (usually 429) is returned, and the caller reports it.
   */
  readonly maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 250,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 60_000,
};

export interface RetryOptions {
  readonly policy: RetryPolicy;
  readonly clock: Clock;
  readonly logger: Logger;
  /** A number in [0, 1) for jitter; injectable so tests are deterministic. */
  readonly random?: () => number;
}

/** Statuses worth another attempt: the request may succeed later. */
export function isRetryableStatus(status: number): boolean {
  if (status === 408 || status === 429) return true;
  // 501 Not Implemented and 505 HTTP Version Not Supported will not change.
  return status >= 500 && status <= 599 && status !== 501 && status !== 505;
}

/**
 * Milliseconds to wait according to a `Retry-After` value, or undefined when it is absent or
 * unreadable. A date in the past means "now".
 */
export function parseRetryAfter(value: string | undefined, nowMs: number): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - nowMs);
}

/**
 * Exponential backoff with full jitter: the wait after attempt `attempt` (1-based) is uniform in
 * [0, min(maxDelayMs, baseDelayMs * 2^(attempt-1))]. Shared by every retrying client (registry
 * requests, alert deliveries) so that all of them back off alike.
 * https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/
 */
export function backoffDelayMs(
  attempt: number,
  delays: Pick<RetryPolicy, "baseDelayMs" | "maxDelayMs">,
  random: () => number = Math.random,
): number {
  const ceiling = Math.min(delays.maxDelayMs, delays.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(random() * ceiling);
}

export class RetryTransport implements Transport {
  private readonly random: () => number;

  constructor(
    private readonly next: Transport,
    private readonly options: RetryOptions,
  ) {
    this.random = options.random ?? Math.random;
  }

  /** Exponential backoff with full jitter for the wait after attempt `attempt` (1-based). */
  backoffMs(attempt: number): number {
    return backoffDelayMs(attempt, this.options.policy, this.random);
  }

  async send(request: HttpRequest): Promise<HttpResponse> {
    const { policy, clock, logger } = this.options;
    const retryable = isIdempotent(request);
    const maxAttempts = retryable ? Math.max(1, policy.maxAttempts) : 1;
    for (let attempt = 1; ; attempt++) {
      let response: HttpResponse;
      try {
        response = await this.next.send(request);
      } catch (error) {
        if (attempt >= maxAttempts || !isTransientNetworkError(error)) {
          throw attempt > 1 && error instanceof RegistryError ? withAttempts(error, attempt) : error;
        }
        const wait = this.backoffMs(attempt);
        logger.log("info", `retrying ${request.method} ${redactUrl(request.url)} in ${wait} ms`, {
          attempt,
          reason: (error as RegistryError).message,
        });
        await clock.sleep(wait, request.signal);
        continue;
      }
      if (!isRetryableStatus(response.status) || attempt >= maxAttempts) return response;
      const retryAfter = parseRetryAfter(response.headers.get("retry-after"), clock.now());
      if (retryAfter !== undefined && retryAfter > policy.maxRetryAfterMs) {
        logger.log(
          "warn",
          `${request.method} ${redactUrl(request.url)}: HTTP ${response.status} asks to retry after ${Math.ceil(retryAfter / 1000)} s, more than the ${Math.ceil(policy.maxRetryAfterMs / 1000)} s cap; giving up`,
        );
        return response;
      }
      const wait = retryAfter ?? this.backoffMs(attempt);
      await response.discard();
      logger.log("info", `retrying ${request.method} ${redactUrl(request.url)} in ${wait} ms`, {
        attempt,
        status: response.status,
      });
      await clock.sleep(wait, request.signal);
    }
  }
}

function withAttempts(error: RegistryError, attempts: number): RegistryError {
  return new RegistryError(error.code, error.summary, { ...error.details, attempts }, { cause: error.cause });
}
