import type { Clock } from "./clock.js";
import { parseRetryAfter } from "./retry.js";
import type { ResponseHeaders } from "./types.js";

/**
 * Quota pacing of one host: a registry's quota is not a fault to retry through but a budget to
 * spend evenly. Registries say so in two ways, both read here:
 *
 * - `429 Too Many Requests`, usually with `Retry-After`: the host is paused until then (or for a
 *   growing backoff without it), and its pace is halved, then regained slowly with each answer
 *   that is not a 429 (additive increase, multiplicative decrease, as TCP does), for the rest of
 *   the run: the run does not walk into the limit again and again, nor stay slower than it must.
 *   https://www.rfc-editor.org/rfc/rfc6585#section-4
 * - `RateLimit-*` headers on ordinary answers (the IETF draft's `RateLimit-Limit`,
 *   `RateLimit-Remaining`, `RateLimit-Reset`, its later `RateLimit`/`RateLimit-Policy` fields,
 *   and Docker Hub's `ratelimit-remaining: 76;w=21600`): the requests left are spread over the
 *   time to the reset, keeping a reserve (a tenth of the limit, at least one) for other clients
 *   of the same quota and for the run's own retries; at the reserve the host is paused until
 *   the reset.
 *   https://datatracker.ietf.org/doc/draft-ietf-httpapi-ratelimit-headers/
 *
 * A pause longer than the run may wait fails the host's requests at once (`registry-quota`)
 * rather than hanging the run or reporting it complete. Every figure is per host
 * (`name[:port]`), so a throttled region does not slow the others. Pure of I/O but the clock.
 */

/** What a response says about its host's quota. */
export interface QuotaHeaders {
  /** Requests allowed in the window. */
  readonly limit?: number;
  /** Requests left in the window. */
  readonly remaining?: number;
  /** Milliseconds until the window resets. */
  readonly resetMs?: number;
  /** Length of the window in milliseconds, when only that is said (Docker Hub's `;w=`). */
  readonly windowMs?: number;
}

function leadingInteger(value: string | undefined): number | undefined {
  const match = value === undefined ? null : /^\s*(\d+)/.exec(value);
  return match ? Number(match[1]) : undefined;
}

/** `name=N` (or `name N`) parameter of a structured header value. */
function parameter(value: string | undefined, names: readonly string[]): number | undefined {
  if (value === undefined) return undefined;
  for (const name of names) {
    const match = new RegExp(`(?:^|[;,\\s])${name}=(\\d+)`, "i").exec(value);
    if (match) return Number(match[1]);
  }
  return undefined;
}

/** Seconds until a reset: delta-seconds, or (as some servers send) Unix seconds. */
function resetSeconds(value: number, nowMs: number): number {
  return value > 1_000_000_000 ? Math.max(0, value - nowMs / 1000) : value;
}

/** Reads the quota headers of a response; fields it does not carry are absent. */
export function readQuotaHeaders(headers: ResponseHeaders, nowMs: number): QuotaHeaders {
  const combined = headers.get("ratelimit");
  const policy = headers.get("ratelimit-policy");
  // Not GitHub's `X-RateLimit-*`: an hourly API budget spread evenly would slow a handful of
  // API calls to one a second; the GitHub client reads those itself.
  const limitHeader = headers.get("ratelimit-limit");
  const remainingHeader = headers.get("ratelimit-remaining");
  const resetHeader = headers.get("ratelimit-reset");
  const limit = leadingInteger(limitHeader) ?? parameter(combined, ["limit"]) ?? parameter(policy, ["q"]);
  const remaining = leadingInteger(remainingHeader) ?? parameter(combined, ["remaining", "r"]);
  const reset = leadingInteger(resetHeader) ?? parameter(combined, ["reset", "t"]);
  const window =
    parameter(remainingHeader, ["w"]) ?? parameter(limitHeader, ["w"]) ?? parameter(policy, ["w"]);
  return {
    ...(limit === undefined ? {} : { limit }),
    ...(remaining === undefined ? {} : { remaining }),
    ...(reset === undefined ? {} : { resetMs: Math.round(resetSeconds(reset, nowMs) * 1000) }),
    ...(window === undefined ? {} : { windowMs: window * 1000 }),
  };
}

/** The share of an advertised limit kept in reserve, and its floor. */
export const QUOTA_RESERVE_FRACTION = 0.1;

/** A host's quota figures of the run, for reports. */
export interface QuotaReport {
  readonly host: string;
  /** `429` answers received. */
  readonly throttledResponses: number;
  /** Wall time the host's requests were held back by its quota (overlapping waits count once). */
  readonly waitedMs: number;
  /** The pace the host was slowed to after a 429, in requests per second. */
  readonly slowedToPerSecond?: number;
  /** Requests failed at once because the quota was spent for longer than the run waits. */
  readonly refusedRequests: number;
}

/**
 * Why a request may not start: the host's quota is spent for longer than the run waits. The
 * transport turns it into a `registry-quota` RegistryError naming the request.
 */
export class QuotaSpent extends Error {
  constructor(
    /** Milliseconds until the host may be asked again. */
    readonly waitMs: number,
  ) {
    super(`quota spent for ${Math.ceil(waitMs / 1000)} s more`);
    this.name = "QuotaSpent";
  }
}

/** No slower than this after repeated 429s: one request every 10 s. */
const SLOWEST_INTERVAL_MS = 10_000;
/** Requests per second the pace regains with each answer that is not a 429. */
const RECOVERY_PER_ANSWER = 0.05;
/** Pause after a 429 that says nothing about when to come back, doubled on each in a row. */
const FIRST_BACKOFF_MS = 1000;

export interface QuotaPacerOptions {
  readonly clock: Clock;
  /** The longest pause waited for; a longer one fails requests with `QuotaSpent`. */
  readonly maxWaitMs: number;
  /** Told once per host and kind what the pacer started doing. */
  readonly onChange?: (message: string) => void;
}

export class QuotaPacer {
  private pausedUntil = 0;
  /** Spacing of request starts after 429s (0: none); only grows. */
  private slowIntervalMs = 0;
  /** Spacing of request starts that spreads the advertised budget (0: none). */
  private budgetIntervalMs = 0;
  private nextStart = Number.NEGATIVE_INFINITY;
  private readonly recentStarts: number[] = [];
  private throttledInARow = 0;
  /** The slowest spacing after 429s, for the report. */
  private slowestIntervalMs = 0;
  /** When the pace was last halved. */
  private slowedAt = Number.NEGATIVE_INFINITY;
  private heldUntil = 0;
  private readonly said = new Set<string>();
  throttledResponses = 0;
  waitedMs = 0;
  refusedRequests = 0;

  constructor(private readonly options: QuotaPacerOptions) {}

  /**
   * Waits until the quota lets a request start, and returns when it started (for `observe`);
   * throws QuotaSpent when that is too far off.
   */
  async acquire(signal?: AbortSignal): Promise<number> {
    const { clock } = this.options;
    const now = clock.now();
    if (this.pausedUntil - now > this.options.maxWaitMs) {
      this.refusedRequests += 1;
      throw new QuotaSpent(this.pausedUntil - now);
    }
    const interval = Math.max(this.slowIntervalMs, this.budgetIntervalMs);
    let start = Math.max(now, this.pausedUntil);
    if (interval > 0) {
      start = Math.max(start, this.nextStart);
      this.nextStart = start + interval;
    }
    const wait = start - now;
    if (wait > 0) {
      this.waitedMs += Math.max(0, start - Math.max(now, this.heldUntil));
      this.heldUntil = Math.max(this.heldUntil, start);
      await clock.sleep(wait, signal);
    }
    return this.started(clock.now());
  }

  /**
   * A request may start now, with nothing to wait for (no pause, no pace): its start time, as
   * `acquire` would give it without a promise. Undefined when it must wait (then: `acquire`).
   */
  startNow(): number | undefined {
    const now = this.options.clock.now();
    if (this.pausedUntil > now || this.slowIntervalMs > 0 || this.budgetIntervalMs > 0) return undefined;
    return this.started(now);
  }

  private started(at: number): number {
    this.recentStarts.push(at);
    const since = at - 1000;
    const stale = this.recentStarts.findIndex((time) => time >= since);
    this.recentStarts.splice(0, stale === -1 ? this.recentStarts.length : stale);
    return at;
  }

  /** Learns from a response of the host to a request that started at `startedAt`. */
  observe(status: number, headers: ResponseHeaders, startedAt: number): void {
    const now = this.options.clock.now();
    const quota = readQuotaHeaders(headers, now);
    if (status === 429) {
      this.throttled(now, startedAt, quota, parseRetryAfter(headers.get("retry-after"), now));
      return;
    }
    this.throttledInARow = 0;
    if (this.slowIntervalMs > 0) {
      // Additive increase after the multiplicative decrease (AIMD): the pace creeps back up by
      // RECOVERY_PER_ANSWER requests/s per answer, until the host says no again.
      this.slowIntervalMs = 1000 / (1000 / this.slowIntervalMs + RECOVERY_PER_ANSWER);
    }
    this.spreadBudget(now, quota);
  }

  private throttled(
    now: number,
    startedAt: number,
    quota: QuotaHeaders,
    retryAfterMs: number | undefined,
  ): void {
    this.throttledResponses += 1;
    this.throttledInARow += 1;
    const pause =
      retryAfterMs ?? quota.resetMs ?? Math.min(60_000, FIRST_BACKOFF_MS * 2 ** (this.throttledInARow - 1));
    this.pausedUntil = Math.max(this.pausedUntil, now + pause);
    // A request sent before the last slowdown says nothing about the slowed pace: the requests
    // of one burst halve the pace once, not once each.
    if (startedAt <= this.slowedAt) return;
    this.slowedAt = now;
    // Half the pace the host was asked at when it said no (or half the last slowed pace).
    const startsLastSecond = this.recentStarts.filter((time) => time >= now - 1000).length;
    const halved = this.slowIntervalMs > 0 ? this.slowIntervalMs * 2 : 2000 / Math.max(1, startsLastSecond);
    this.slowIntervalMs = Math.min(SLOWEST_INTERVAL_MS, halved);
    this.slowestIntervalMs = Math.max(this.slowestIntervalMs, this.slowIntervalMs);
    this.once(
      "throttled",
      `answered 429 (quota reached): paused ${Math.ceil(pause / 1000)} s, then slowed to ${this.slowedToPerSecond()} requests/s, regained slowly`,
    );
  }

  private spreadBudget(now: number, quota: QuotaHeaders): void {
    if (quota.remaining === undefined) return;
    const reserve = Math.max(1, Math.ceil((quota.limit ?? 0) * QUOTA_RESERVE_FRACTION));
    const untilReset = quota.resetMs ?? quota.windowMs;
    if (quota.remaining <= reserve) {
      const pause = untilReset ?? FIRST_BACKOFF_MS;
      this.pausedUntil = Math.max(this.pausedUntil, now + pause);
      this.once(
        "reserve",
        `${quota.remaining} request${quota.remaining === 1 ? "" : "s"} left of its quota: keeping them in reserve, paused until the quota resets (${Math.ceil(pause / 1000)} s)`,
      );
      return;
    }
    this.budgetIntervalMs = quota.resetMs === undefined ? 0 : quota.resetMs / (quota.remaining - reserve);
  }

  /** The slowest pace after 429s in requests per second, or undefined when never slowed. */
  slowedToPerSecond(): number | undefined {
    if (this.slowestIntervalMs === 0) return undefined;
    return Number((1000 / this.slowestIntervalMs).toFixed(2));
  }

  private once(kind: string, message: string): void {
    if (this.said.has(kind)) return;
    this.said.add(kind);
    this.options.onChange?.(message);
  }
}
