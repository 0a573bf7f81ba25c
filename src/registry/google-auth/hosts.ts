import { foldHostCase, hostnameOf, isGoogleRegistryHost, type RegistryHost } from "../../reference/index.js";

/**
 * Whether a registry is Google's: Container Registry (`gcr.io`, `*.gcr.io`), Artifact Registry
 * (`*-docker.pkg.dev`), or a host the user marked as Google's (`--google-registry`, for a
 * private endpoint or a test stand-in). Those registries get Application Default Credentials
 * when no explicit credential names them. The port, if any, is ignored for the well-known
 * names; a marked host matches as written (`host` or `host:port`).
 * https://cloud.google.com/artifact-registry/docs/docker/authentication
 */
export function isGoogleRegistry(registry: RegistryHost, marked: ReadonlySet<string>): boolean {
  const key = foldHostCase(registry);
  if (marked.has(key)) return true;
  const hostname = foldHostCase(hostnameOf(registry));
  if (marked.has(hostname)) return true;
  return isGoogleRegistryHost(hostname);
}

/** The marked hosts as `isGoogleRegistry` compares them. */
export function googleRegistrySet(hosts: readonly string[]): ReadonlySet<string> {
  return new Set(hosts.map((host) => foldHostCase(host)));
}
