import { readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { PromoterError, describeError } from "../errors.js";
import { silentLogger, type Logger } from "../log.js";
import {
  foldHostCase,
  layoutKey,
  type RegistryHost,
  type RepositoryLocation,
  type RepositoryPath,
} from "../reference/index.js";
import { AuthTransport } from "./auth/auth-transport.js";
import { CredentialStore } from "./credentials/credential-store.js";
import { defaultCredentialSources } from "./credentials/sources.js";
import type { CredentialSource } from "./credentials/types.js";
import { MAX_CA_BUNDLE_BYTES } from "./limits.js";
import { listOciLayoutRepositories, openOciLayoutRepository } from "./oci-layout/index.js";
import { Redactor, redactingLogger } from "./redact.js";
import { RegistryEndpoint } from "./remote/endpoint.js";
import { listCatalog } from "./remote/listing.js";
import { RemoteRepository } from "./remote/remote-repository.js";
import type { CallOptions, RepositoryStore, RequestCount, StoreProvider } from "./store.js";
import { systemClock, type Clock } from "./transport/clock.js";
import {
  DEFAULT_MAX_CONCURRENT_PER_HOST,
  HostLimitTransport,
  type HostLimit,
} from "./transport/host-limits.js";
import {
  createHostResolver,
  InternalAddressGuard,
  type InternalAddressPolicy,
} from "./transport/network-address.js";
import { RedirectTransport } from "./transport/redirect.js";
import { CountingTransport, RequestCounter } from "./transport/request-counter.js";
import { unexpectedResponse } from "./transport/request-error.js";
import { DEFAULT_RETRY_POLICY, RetryTransport, type RetryPolicy } from "./transport/retry.js";
import { SecurityPolicy } from "./transport/security-policy.js";
import { UndiciTransport } from "./transport/undici-transport.js";
import { countingStore } from "./counting-store.js";
import { CircuitBreakerTransport } from "./transport/circuit-breaker.js";
import type { QuotaReport } from "./transport/quota.js";

export interface StoreTimeouts {
  /** Stall timeout while waiting for response headers (refreshed while a body is sent). Default 60 s. */
  readonly headersMs?: number;
  /** Longest silence while a response body streams. Default 60 s. */
  readonly bodyIdleMs?: number;
  /** TCP and TLS connection set-up. Default 15 s. */
  readonly connectMs?: number;
  /** Wait for the answer to the request that completes a blob upload (registries verify then). Default 10 min. */
  readonly uploadCommitMs?: number;
  /**
   * Minimum average rate of every request once its allowance (`headersMs`, or `uploadCommitMs`
   * for the request that completes an upload) has passed: a request that moves N bytes must end
   * within allowance + N / rate. Default 16 KiB/s. See transport/deadline.ts.
   */
  readonly minBytesPerSecond?: number;
}

export interface StoreProviderOptions {
  /** `HOST` or `HOST:PORT` reached over plain HTTP; loopback hosts always are. */
  readonly insecureRegistries?: readonly string[];
  /**
   * `HOST` or `HOST:PORT` reached over HTTPS only, even on a loopback address (a local registry
   * with TLS); plain HTTP to them is refused.
   */
  readonly httpsRegistries?: readonly string[];
  /** Extra trusted CA certificates, as PEM text (added to Node's bundled roots). */
  readonly caCertificates?: string;
  /** A PEM file of extra trusted CA certificates, read once when the provider is created. */
  readonly caBundleFile?: string;
  /**
   * Where credentials come from, asked in order. Default: `defaultCredentialSources` over `env`
   * and `homeDirectory` (environment variables, REGISTRY_AUTH_FILE, DOCKER_CONFIG, containers
   * auth.json, ~/.docker/config.json).
   */
  readonly credentialSources?: readonly CredentialSource[];
  /** Environment for the default credential sources and helper programs. Default: process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Home directory for the default credential sources. Default: os.homedir(). */
  readonly homeDirectory?: string;
  /**
   * Hosts to treat as Google's registries besides gcr.io, *.gcr.io and *-docker.pkg.dev: the
   * default credential sources give them Google's Application Default Credentials.
   */
  readonly googleRegistries?: readonly string[];
  /** How long a credential helper program may take. Default 30 s. */
  readonly credentialHelperTimeoutMs?: number;
  /**
   * Per-host limits (`host` or `host:port` keys). Default: 16 requests in flight per host, no
   * rate limit.
   */
  readonly limits?: {
    readonly defaults?: HostLimit;
    readonly perHost?: Readonly<Record<string, HostLimit>>;
  };
  readonly timeouts?: StoreTimeouts;
  readonly retry?: Partial<RetryPolicy>;
  readonly logger?: Logger;
  /** Time source for backoff, Retry-After, rate limits and token expiry (tests inject one). */
  readonly clock?: Clock;
  /** Jitter source in [0, 1). */
  readonly random?: () => number;
  /** Host name -> IP address, consulted before DNS (like `curl --resolve`). */
  readonly hostAddresses?: Readonly<Record<string, string>>;
  /**
   * Refuse connections to loopback, private and link-local addresses except on the hosts listed
   * (checked on IP literals and on every DNS answer). Default: not refused.
   */
  readonly internalAddresses?: InternalAddressPolicy;
  /**
   * Offer HTTP/2 to TLS registries for requests without blob bytes (default false: HTTP/1.1
   * with kept-alive connections, which costs Node less than half the CPU per request and waits
   * no longer; see `UndiciTransport`).
   */
  readonly http2?: boolean;
  /** Upload blobs in PATCH chunks of this many bytes (default: one PUT unless the registry asks for chunks). */
  readonly uploadChunkBytes?: number;
  /** Page size (`n`) asked for in tag and catalog listings. Default 1000. */
  readonly listingPageSize?: number;
  readonly userAgent?: string;
  /**
   * Learns every secret the client handles (passwords, tokens obtained at run time) and removes
   * them from its messages and log lines. Pass the run's own so that every output sink of the
   * run removes them too. Default: a redactor of this provider's own.
   */
  readonly redactor?: Redactor;
}

/** A StoreProvider with the client's own extras. */
export interface RegistryStoreProvider extends StoreProvider {
  /** Removes every secret the client has handled from `text`; for output built outside it. */
  redact(text: string): string;
  /**
   * What went wrong with whole hosts during the run, one entry per host and problem: an
   * unreachable host (its circuit opened, see transport/circuit-breaker.ts), a host whose quota
   * held requests back (transport/quota.ts). For the CLI's once-per-host lines.
   */
  hostProblems(): HostProblem[];
  /** Closes idle connections (pending requests finish first). */
  close(): Promise<void>;
}

/** One host's problem of a run, as one line of text. */
export interface HostProblem {
  readonly host: string;
  readonly kind: "unreachable" | "quota";
  readonly text: string;
}

const DEFAULT_UPLOAD_COMMIT_TIMEOUT_MS = 10 * 60_000;

/** One line on a host's quota: how often it said no, how long it held the run back. */
function quotaText(report: QuotaReport): string {
  const parts = [
    `quota: waited ${(report.waitedMs / 1000).toFixed(1)} s in all`,
    `${report.throttledResponses} answer${report.throttledResponses === 1 ? "" : "s"} 429`,
  ];
  if (report.slowedToPerSecond !== undefined) parts.push(`slowed to ${report.slowedToPerSecond} requests/s`);
  if (report.refusedRequests > 0)
    parts.push(
      `${report.refusedRequests} request${report.refusedRequests === 1 ? "" : "s"} not sent (quota spent for longer than a run waits)`,
    );
  return parts.join(", ");
}

function readCaBundle(file: string): string {
  const fail = (reason: string) =>
    new PromoterError("registry-ca", `cannot use CA bundle ${file}: ${reason}`);
  let text: string;
  try {
    if (statSync(file).size > MAX_CA_BUNDLE_BYTES) throw fail(`larger than ${MAX_CA_BUNDLE_BYTES} bytes`);
    text = readFileSync(file, "utf8");
  } catch (error) {
    if (error instanceof PromoterError) throw error;
    throw fail(describeError(error));
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) throw fail("no PEM certificate in it");
  return text;
}

/**
 * The one place that knows registries from layouts: opens remote repositories with the
 * distribution client (one transport stack per provider) and `oci:` locations with the OCI
 * layout backend.
 */
export function createStoreProvider(options: StoreProviderOptions = {}): RegistryStoreProvider {
  const clock = options.clock ?? systemClock;
  const redactor = options.redactor ?? new Redactor();
  const logger = redactingLogger(options.logger ?? silentLogger, redactor);
  const policy = new SecurityPolicy(options.insecureRegistries ?? [], options.httpsRegistries ?? []);
  const hostAddresses = new Map(
    Object.entries(options.hostAddresses ?? {}).map(([name, address]) => [foldHostCase(name), address]),
  );
  const caParts = [
    ...(options.caCertificates === undefined ? [] : [options.caCertificates]),
    ...(options.caBundleFile === undefined ? [] : [readCaBundle(options.caBundleFile)]),
  ];
  const env = options.env ?? process.env;
  const credentials = new CredentialStore(
    options.credentialSources ??
      defaultCredentialSources({
        env,
        homeDirectory: options.homeDirectory ?? homedir(),
        ...(options.googleRegistries === undefined ? {} : { googleRegistries: options.googleRegistries }),
        ...(options.credentialHelperTimeoutMs === undefined
          ? {}
          : { helperTimeoutMs: options.credentialHelperTimeoutMs }),
      }),
    logger,
  );

  const network = new UndiciTransport({
    policy,
    ...(caParts.length > 0 ? { caCertificates: caParts.join("\n") } : {}),
    hostAddresses,
    ...(options.timeouts?.headersMs === undefined ? {} : { headersTimeoutMs: options.timeouts.headersMs }),
    ...(options.timeouts?.bodyIdleMs === undefined ? {} : { bodyTimeoutMs: options.timeouts.bodyIdleMs }),
    ...(options.timeouts?.connectMs === undefined ? {} : { connectTimeoutMs: options.timeouts.connectMs }),
    ...(options.timeouts?.minBytesPerSecond === undefined
      ? {}
      : { minBytesPerSecond: options.timeouts.minBytesPerSecond }),
    ...(options.userAgent === undefined ? {} : { userAgent: options.userAgent }),
    ...(options.http2 === undefined ? {} : { http2: options.http2 }),
    ...(options.internalAddresses === undefined
      ? {}
      : { internalAddressGuard: new InternalAddressGuard(options.internalAddresses) }),
    logger,
  });
  const counter = new RequestCounter();
  const counted = new CountingTransport(network, counter);
  const breaker = new CircuitBreakerTransport(counted, { logger });
  const retryPolicy = { ...DEFAULT_RETRY_POLICY, ...options.retry };
  const limited = new HostLimitTransport(breaker, {
    defaults: options.limits?.defaults ?? { maxConcurrent: DEFAULT_MAX_CONCURRENT_PER_HOST },
    ...(options.limits?.perHost === undefined ? {} : { perHost: options.limits.perHost }),
    clock,
    // A quota pause is waited for as long as a Retry-After is.
    maxQuotaWaitMs: retryPolicy.maxRetryAfterMs,
    logger,
  });
  const retried = new RetryTransport(limited, {
    policy: retryPolicy,
    clock,
    logger,
    ...(options.random === undefined ? {} : { random: options.random }),
  });
  const redirected = new RedirectTransport(retried, { logger });
  const transport = new AuthTransport(redirected, {
    credentials,
    policy,
    resolveHost: createHostResolver(hostAddresses),
    clock,
    logger,
    redactor,
  });

  const upload = {
    ...(options.uploadChunkBytes === undefined ? {} : { chunkBytes: options.uploadChunkBytes }),
    commitTimeoutMs: options.timeouts?.uploadCommitMs ?? DEFAULT_UPLOAD_COMMIT_TIMEOUT_MS,
  };
  const endpoints = new Map<string, RegistryEndpoint>();
  const endpointFor = (host: RegistryHost): RegistryEndpoint => {
    let endpoint = endpoints.get(host);
    if (!endpoint) {
      endpoint = new RegistryEndpoint(
        host,
        policy.schemeFor(host),
        transport,
        redactor,
        logger,
        upload,
        options.listingPageSize,
      );
      endpoints.set(host, endpoint);
    }
    return endpoint;
  };

  return {
    repository(location: RepositoryLocation): RepositoryStore {
      if (location.kind === "remote") {
        return new RemoteRepository(endpointFor(location.host), location.repository, clock);
      }
      const store: RepositoryStore = openOciLayoutRepository(location, { logger });
      return countingStore(store, counter, layoutKey(location.directory));
    },

    async catalog(registry, prefix, callOptions: CallOptions = {}): Promise<RepositoryPath[]> {
      if (registry.kind === "oci-layout") {
        counter.record(layoutKey(registry.directory), "GET");
        return listOciLayoutRepositories(registry.directory, prefix, { ...callOptions, logger });
      }
      const endpoint = endpointFor(registry.host as RegistryHost);
      return listCatalog(
        endpoint,
        prefix,
        (response, request) => unexpectedResponse(response, request, redactor, "cannot list repositories"),
        callOptions,
      );
    },

    requestCounts(): ReadonlyMap<string, RequestCount> {
      const counts = counter.snapshot();
      // A host's problems of the run ride along with its counts (`promote --report`).
      for (const { host, ...unreachable } of breaker.report()) {
        const count = counts.get(host) ?? { total: 0, byMethod: {} };
        counts.set(host, { ...count, unreachable });
      }
      for (const { host, ...quota } of limited.quotaReport()) {
        const count = counts.get(host) ?? { total: 0, byMethod: {} };
        counts.set(host, { ...count, quota });
      }
      return counts;
    },

    hostProblems(): HostProblem[] {
      const unreachable = breaker.report().map(({ host, message, requestsNotSent }): HostProblem => ({
        host,
        kind: "unreachable",
        text: `${message}; ${requestsNotSent} later request${requestsNotSent === 1 ? "" : "s"} failed at once, unsent`,
      }));
      const quota = limited
        .quotaReport()
        .map((report): HostProblem => ({ host: report.host, kind: "quota", text: quotaText(report) }));
      return [...unreachable, ...quota];
    },

    redact(text: string): string {
      return redactor.redact(text);
    },

    close(): Promise<void> {
      return network.close();
    },
  };
}
