import { foldHostCase, isLoopbackHost } from "../../reference/index.js";

/**
 * Which hosts may be reached over plain HTTP: loopback hosts (127.0.0.0/8, ::1, localhost), as
 * Docker does for local registries, and the hosts named with `--insecure-registry HOST[:PORT]`.
 * Everything else is HTTPS with certificate verification.
 */
export class SecurityPolicy {
  private readonly insecure: ReadonlySet<string>;

  /** `insecureRegistries`: `HOST` (any port) or `HOST:PORT` entries. */
  constructor(insecureRegistries: readonly string[] = []) {
    this.insecure = new Set(insecureRegistries.map((entry) => foldHostCase(entry.trim())).filter(Boolean));
  }

  /** Whether `host` (`name[:port]`, as in a URL) was named insecure. */
  isNamedInsecure(host: string): boolean {
    const normalized = foldHostCase(host);
    if (this.insecure.has(normalized)) return true;
    const name = hostWithoutPort(normalized);
    return this.insecure.has(name);
  }

  /** Whether plain HTTP to `host` is allowed. */
  allowsPlainHttp(host: string): boolean {
    return isLoopbackHost(host) || this.isNamedInsecure(host);
  }

  /** The scheme a registry's API is reached with. */
  schemeFor(host: string): "http" | "https" {
    return this.allowsPlainHttp(host) ? "http" : "https";
  }
}

/** `name[:port]` (as in a URL) without the port; an IPv6 literal keeps its brackets. */
export function hostWithoutPort(host: string): string {
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  const colon = host.lastIndexOf(":");
  return colon >= 0 ? host.slice(0, colon) : host;
}
