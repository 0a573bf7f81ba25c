import { foldHostCase } from "../../reference/index.js";
import type { Logger } from "../../log.js";
import { RegistryError } from "../errors.js";
import { describeRequest } from "./request-error.js";
import { isSilentHostTimeout, networkErrorCode } from "./undici-transport.js";
import type { HttpRequest, HttpResponse, Transport } from "./types.js";

/**
 * A circuit breaker per host (`name[:port]` of the URL): once a host has failed in a way that
 * another attempt will not fix within a run (nothing listens, its name does not resolve, its TLS
 * cannot be verified, or it sent nothing at all before the deadline twice in a row), every later request
 * to it fails at once with that first cause, without touching the network. A run over thousands
 * of repositories on a dead mirror then costs one failure, not one DNS wait or one timeout per
 * request, while the other hosts go on at full speed. The breaker stays open for the rest of
 * the run (a run is minutes; a promotion is re-run, not resumed mid-way), and says so once per
 * host, in the log and in `report()`.
 *
 * It sits right above the network layer, below the per-host limits, so a request that waited
 * for a slot behind the one that tripped the breaker fails at once too; and below the retry
 * layer, whose retries of the tripping request then fail at once instead of waiting for backoff.
 * Failures it does not know to be lasting (a reset connection, an HTTP error status) pass
 * through unchanged.
 */
export interface CircuitBreakerOptions {
  readonly logger: Logger;
  /** Timeouts in a row, with no answer from the host in between, that open its circuit. Default 2. */
  readonly timeoutsToOpen?: number;
}

/** An open circuit, as reports show it: the host, the first cause, and what was not sent. */
export interface UnreachableHost {
  readonly host: string;
  /** The error code and message of the failure that opened the circuit. */
  readonly code: string;
  readonly message: string;
  /** Requests failed at once, without being sent, after the circuit opened. */
  readonly requestsNotSent: number;
}

/** Socket and resolver codes that mean nobody answers at that name or address. */
const UNREACHABLE_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EAI_FAIL",
  "EAI_NODATA",
  "EAI_NONAME",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EHOSTDOWN",
  "ENETDOWN",
  "EADDRNOTAVAIL",
]);

/** Node's TLS verification codes (OpenSSL's X509_V_ERR names) and its TLS/SSL error codes. */
function isTlsFailureCode(code: string): boolean {
  return (
    code.startsWith("ERR_TLS_") ||
    code.startsWith("ERR_SSL_") ||
    code.startsWith("CERT_") ||
    code.includes("_CERT") ||
    code.startsWith("UNABLE_TO_") ||
    code === "HOSTNAME_MISMATCH"
  );
}

/** How a failure bears on its host: lasting (open now), a timeout (open when repeated), or neither. */
export function hostFailureKind(error: unknown): "lasting" | "timeout" | undefined {
  if (!(error instanceof RegistryError)) return undefined;
  if (error.code === "registry-https-required") return "lasting";
  // A slow answer or upload is a transfer's problem, not the host's: only silence counts.
  if (error.code === "registry-timeout") return isSilentHostTimeout(error) ? "timeout" : undefined;
  if (error.code !== "registry-network") return undefined;
  const code = networkErrorCode(error.cause);
  if (code === undefined) return undefined;
  return UNREACHABLE_CODES.has(code) || isTlsFailureCode(code) ? "lasting" : undefined;
}

interface HostCircuit {
  consecutiveTimeouts: number;
  opened?: RegistryError;
  requestsNotSent: number;
}

export class CircuitBreakerTransport implements Transport {
  private readonly circuits = new Map<string, HostCircuit>();
  private readonly timeoutsToOpen: number;

  constructor(
    private readonly next: Transport,
    private readonly options: CircuitBreakerOptions,
  ) {
    this.timeoutsToOpen = Math.max(1, options.timeoutsToOpen ?? 2);
  }

  private circuitFor(host: string): HostCircuit {
    const key = foldHostCase(host);
    let circuit = this.circuits.get(key);
    if (!circuit) {
      circuit = { consecutiveTimeouts: 0, requestsNotSent: 0 };
      this.circuits.set(key, circuit);
    }
    return circuit;
  }

  async send(request: HttpRequest): Promise<HttpResponse> {
    const circuit = this.circuitFor(request.url.host);
    if (circuit.opened) {
      circuit.requestsNotSent += 1;
      throw unreachable(circuit.opened, request);
    }
    let response: HttpResponse;
    try {
      response = await this.next.send(request);
    } catch (error) {
      throw this.failed(circuit, request, error);
    }
    circuit.consecutiveTimeouts = 0;
    return response;
  }

  /** The error to raise for `error`: the host's unreachable error once its circuit is open. */
  private failed(circuit: HostCircuit, request: HttpRequest, error: unknown): unknown {
    if (circuit.opened) return unreachable(circuit.opened, request);
    const kind = hostFailureKind(error);
    if (kind === undefined) return error;
    if (kind === "timeout") {
      circuit.consecutiveTimeouts += 1;
      if (circuit.consecutiveTimeouts < this.timeoutsToOpen) return error;
    }
    const cause = error as RegistryError;
    circuit.opened = cause;
    this.options.logger.log(
      "warn",
      `registry host ${request.url.host} is unreachable: ${cause.summary} (${describeRequest(request)}); its remaining requests fail at once`,
    );
    return unreachable(cause, request);
  }

  /** The hosts whose circuit opened, in the order they did. */
  report(): UnreachableHost[] {
    const hosts: UnreachableHost[] = [];
    for (const [host, circuit] of this.circuits) {
      if (!circuit.opened) continue;
      hosts.push({
        host,
        code: circuit.opened.code,
        message: circuit.opened.message,
        requestsNotSent: circuit.requestsNotSent,
      });
    }
    return hosts;
  }
}

/**
 * A request's failure on an open circuit: its own context (operation, repository, request),
 * the host's first cause first in the summary, and a code the retry layer does not retry.
 */
function unreachable(cause: RegistryError, request: HttpRequest): RegistryError {
  return new RegistryError(
    "registry-unreachable",
    `${cause.summary} (${request.url.host} is unreachable: not asked again this run)`,
    { ...request.context, request: describeRequest(request) },
    { cause },
  );
}
