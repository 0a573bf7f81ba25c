import { silentLogger, type Logger } from "../log.js";
import { Redactor, redactingLogger } from "./redact.js";
import { systemClock, type Clock } from "./transport/clock.js";
import { CircuitBreakerTransport } from "./transport/circuit-breaker.js";
import { HostLimitTransport } from "./transport/host-limits.js";
import { RedirectTransport } from "./transport/redirect.js";
import { DEFAULT_RETRY_POLICY, RetryTransport, type RetryPolicy } from "./transport/retry.js";
import { SecurityPolicy } from "./transport/security-policy.js";
import { UndiciTransport } from "./transport/undici-transport.js";
import type { Transport } from "./transport/types.js";

/**
 * The registry client's transport stack without its registry-specific top (token auth), for the
 * other HTTP APIs the promoter speaks (the GitHub REST API of `promoter pr`): one stack, so that
 * every request of the tool gets the same scheme policy (plain HTTP to loopback only, TLS always
 * verified), deadlines, retries with backoff and `Retry-After`, and redirects that drop
 * credentials once they leave the request's origin and never carry a body there.
 *
 *   redirect -> retry -> host limits -> circuit breaker -> undici
 *
 * The caller attaches its own `Authorization` header; the redirect layer removes it on any hop
 * to another origin.
 */
export interface HttpStackOptions {
  readonly logger?: Logger;
  /** Secrets the caller sends (tokens): removed from every log line the stack writes. */
  readonly redactor?: Redactor;
  readonly clock?: Clock;
  readonly retry?: Partial<RetryPolicy>;
  readonly userAgent?: string;
  /** Requests in flight at once per host. Default 8. */
  readonly maxConcurrentPerHost?: number;
}

export interface HttpStack {
  readonly transport: Transport;
  /** Closes idle connections (pending requests finish first). */
  close(): Promise<void>;
}

const DEFAULT_MAX_CONCURRENT = 8;

export function createHttpStack(options: HttpStackOptions = {}): HttpStack {
  const clock = options.clock ?? systemClock;
  const logger = redactingLogger(options.logger ?? silentLogger, options.redactor ?? new Redactor());
  const network = new UndiciTransport({
    policy: new SecurityPolicy(),
    logger,
    ...(options.userAgent === undefined ? {} : { userAgent: options.userAgent }),
  });
  const breaker = new CircuitBreakerTransport(network, { logger });
  const limited = new HostLimitTransport(breaker, {
    defaults: { maxConcurrent: options.maxConcurrentPerHost ?? DEFAULT_MAX_CONCURRENT },
    clock,
  });
  const retried = new RetryTransport(limited, {
    policy: { ...DEFAULT_RETRY_POLICY, ...options.retry },
    clock,
    logger,
  });
  const transport = new RedirectTransport(retried, { logger });
  return { transport, close: () => network.close() };
}
