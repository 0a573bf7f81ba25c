import { foldHostCase, isLoopbackHost } from "../../reference/index.js";

/**
 * Which hosts may be reached over plain HTTP: loopback hosts (127.0.0.0/8, ::1, localhost), as
 * Docker does for local registries, and the hosts named with `--insecure-registry HOST[:PORT]`;
 * except the hosts named with `--https-registry HOST[:PORT]`, which are HTTPS even on a loopback
 * address (a local registry with TLS). Everything else is HTTPS with certificate verification.
 */
export class SecurityPolicy {
  private readonly insecure: ReadonlySet<string>;
  private readonly https: ReadonlySet<string>;

  /**
   * `insecureRegistries`: `HOST` (any port) or `HOST:PORT` entries reached over plain HTTP;
   * `httpsRegistries`: entries of the same form that must be reached over HTTPS.
   */
  constructor(insecureRegistries: readonly string[] = [], httpsRegistries: readonly string[] = []) {
    this.insecure = hostSet(insecureRegistries);
    this.https = hostSet(httpsRegistries);
  }

  /** Whether `host` (`name[:port]`, as in a URL) was named insecure. */
  isNamedInsecure(host: string): boolean {
    return matches(this.insecure, host);
  }

  /** Whether `host` was named with `--https-registry`: HTTPS only, loopback or not. */
  requiresHttps(host: string): boolean {
    return matches(this.https, host);
  }

  /** Whether plain HTTP to `host` is allowed. */
  allowsPlainHttp(host: string): boolean {
    if (this.requiresHttps(host)) return false;
    return isLoopbackHost(host) || this.isNamedInsecure(host);
  }

  /** The scheme a registry's API is reached with. */
  schemeFor(host: string): "http" | "https" {
    return this.allowsPlainHttp(host) ? "http" : "https";
  }
}

function hostSet(entries: readonly string[]): ReadonlySet<string> {
  return new Set(entries.map((entry) => foldHostCase(entry.trim())).filter(Boolean));
}

/** Whether `host` or its name without the port is in `set`. */
function matches(set: ReadonlySet<string>, host: string): boolean {
  const normalized = foldHostCase(host);
  return set.has(normalized) || set.has(hostWithoutPort(normalized));
}

/** `name[:port]` (as in a URL) without the port; an IPv6 literal keeps its brackets. */
export function hostWithoutPort(host: string): string {
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  const colon = host.lastIndexOf(":");
  return colon >= 0 ? host.slice(0, colon) : host;
}
