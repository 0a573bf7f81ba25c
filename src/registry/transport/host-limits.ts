import { foldHostCase } from "../../reference/index.js";
import { Semaphore } from "../../concurrency/index.js";
import type { Logger } from "../../log.js";
import type { Clock } from "./clock.js";
import { QuotaPacer, QuotaSpent, type QuotaReport } from "./quota.js";
import { requestError } from "./request-error.js";
import { hostWithoutPort } from "./security-policy.js";
import type { HttpRequest, HttpResponse, Transport } from "./types.js";

/**
 * Per-host limits: how many requests may be in flight at once and how many may start per second.
 * Quotas are per registry (and per storage backend a registry redirects to), so each host
 * (`name[:port]` of the URL) has its own limiter.
 *
 * A concurrency slot is held from sending the request until its response headers arrive (for an
 * upload that includes sending the whole body). It is not held while a response body streams:
 * a copy that reads a blob from a host and uploads it to the same host would otherwise hold one
 * slot while waiting for another, and N such copies would deadlock a limit of N. How many blob
 * bodies stream at once is the copy engine's own concurrency setting.
 *
 * On top of the limits set by the operator, each host is paced by what it says of its own quota
 * (429 answers, `RateLimit-*` headers; see quota.ts): the limits one host earns do not slow the
 * others.
 */
export interface HostLimit {
  /** Requests in flight at once; undefined or 0: no limit. */
  readonly maxConcurrent?: number;
  /** Requests started per second; undefined or 0: no limit. */
  readonly requestsPerSecond?: number;
}

export interface HostLimitsOptions {
  /** Limits of every host not named in `perHost`. */
  readonly defaults?: HostLimit;
  /** Limits by `host` or `host:port` (the more specific entry wins). */
  readonly perHost?: Readonly<Record<string, HostLimit>>;
  readonly clock: Clock;
  /** The longest quota pause a request waits for (default 60 s); longer ones fail it. */
  readonly maxQuotaWaitMs?: number;
  /** Gets one line per host when its quota starts to hold it back. */
  readonly logger?: Logger;
}

const DEFAULT_MAX_QUOTA_WAIT_MS = 60_000;

/** The release of a host without a concurrency limit. */
const noSlot = (): void => undefined;

export const DEFAULT_MAX_CONCURRENT_PER_HOST = 16;

/**
 * Spaces request starts `1/rate` seconds apart (a generic cell rate algorithm with no burst):
 * within any one-second window at most `rate` (rounded up) requests start.
 */
export class RateLimiter {
  private readonly intervalMs: number;
  private nextStart = Number.NEGATIVE_INFINITY;

  constructor(
    readonly requestsPerSecond: number,
    private readonly clock: Clock,
  ) {
    this.intervalMs = 1000 / requestsPerSecond;
  }

  async acquire(signal?: AbortSignal): Promise<void> {
    const now = this.clock.now();
    const start = Math.max(now, this.nextStart);
    // Reserve the slot before waiting so callers queue in order.
    this.nextStart = start + this.intervalMs;
    const wait = start - now;
    if (wait > 0) await this.clock.sleep(wait, signal);
  }
}

interface HostLimiter {
  readonly concurrency?: Semaphore;
  readonly rate?: RateLimiter;
  readonly quota: QuotaPacer;
}

export class HostLimitTransport implements Transport {
  private readonly limiters = new Map<string, HostLimiter>();

  constructor(
    private readonly next: Transport,
    private readonly options: HostLimitsOptions,
  ) {}

  /** The limits that apply to `host` (`name[:port]`). */
  limitFor(host: string): HostLimit {
    const key = foldHostCase(host);
    const perHost = this.options.perHost ?? {};
    return perHost[key] ?? perHost[hostWithoutPort(key)] ?? this.options.defaults ?? {};
  }

  private limiterFor(host: string): HostLimiter {
    const key = foldHostCase(host);
    let limiter = this.limiters.get(key);
    if (!limiter) {
      const limit = this.limitFor(key);
      const { logger } = this.options;
      limiter = {
        ...(limit.maxConcurrent ? { concurrency: new Semaphore(limit.maxConcurrent) } : {}),
        ...(limit.requestsPerSecond
          ? { rate: new RateLimiter(limit.requestsPerSecond, this.options.clock) }
          : {}),
        quota: new QuotaPacer({
          clock: this.options.clock,
          maxWaitMs: this.options.maxQuotaWaitMs ?? DEFAULT_MAX_QUOTA_WAIT_MS,
          ...(logger
            ? {
                onChange: (message: string) => {
                  logger.log("warn", `registry host ${key} ${message}`);
                },
              }
            : {}),
        }),
      };
      this.limiters.set(key, limiter);
    }
    return limiter;
  }

  send(request: HttpRequest): Promise<HttpResponse> {
    const limiter = this.limiterFor(request.url.host);
    // Most requests find a free slot and nothing in the quota to wait for: they go at once,
    // without the promises of waiting (a run checking 700,000 tags does this for each).
    if (!limiter.rate && !request.signal?.aborted) {
      const release = limiter.concurrency ? limiter.concurrency.tryAcquire() : noSlot;
      if (release !== undefined) {
        const startedAt = limiter.quota.startNow();
        if (startedAt !== undefined) return this.sendStarted(request, limiter, startedAt, release);
        release();
      }
    }
    return this.sendWhenAllowed(request, limiter);
  }

  private async sendStarted(
    request: HttpRequest,
    limiter: HostLimiter,
    startedAt: number,
    release: () => void,
  ): Promise<HttpResponse> {
    try {
      const response = await this.next.send(request);
      limiter.quota.observe(response.status, response.headers, startedAt);
      return response;
    } finally {
      release();
    }
  }

  /** A request that waits for a slot, the rate or the quota first (they may abort the wait). */
  private async sendWhenAllowed(request: HttpRequest, limiter: HostLimiter): Promise<HttpResponse> {
    const release = limiter.concurrency ? await limiter.concurrency.acquire(request.signal) : noSlot;
    let startedAt: number;
    try {
      if (limiter.rate) await limiter.rate.acquire(request.signal);
      startedAt = await limiter.quota.acquire(request.signal);
    } catch (error) {
      release();
      if (!(error instanceof QuotaSpent)) throw error;
      throw requestError(
        "registry-quota",
        `the quota of ${request.url.host} is spent for ${Math.ceil(error.waitMs / 1000)} s more, longer than the ${Math.ceil((this.options.maxQuotaWaitMs ?? DEFAULT_MAX_QUOTA_WAIT_MS) / 1000)} s a run waits; not sent`,
        request,
      );
    }
    return this.sendStarted(request, limiter, startedAt, release);
  }

  /** The hosts whose quota held requests back or answered 429, with how long and how often. */
  quotaReport(): QuotaReport[] {
    const hosts: QuotaReport[] = [];
    for (const [host, { quota }] of this.limiters) {
      if (quota.throttledResponses === 0 && quota.waitedMs === 0 && quota.refusedRequests === 0) continue;
      const slowed = quota.slowedToPerSecond();
      hosts.push({
        host,
        throttledResponses: quota.throttledResponses,
        waitedMs: Math.round(quota.waitedMs),
        refusedRequests: quota.refusedRequests,
        ...(slowed === undefined ? {} : { slowedToPerSecond: slowed }),
      });
    }
    return hosts;
  }
}
