import { InvalidNameError } from "../errors.js";
import { quoteExcerpt } from "../excerpt.js";

/**
 * Repository and registry names per the distribution reference grammar:
 * https://github.com/distribution/reference/blob/main/reference.go
 *
 *   path-component := alpha-numeric [separator alpha-numeric]*
 *   alpha-numeric  := /[a-z0-9]+/
 *   separator      := /[_.]|__|[-]+/
 *   domain         := host [':' port-number]
 *   host           := domain-name | IPv4address | '[' IPv6address ']'
 */

/** A repository path below a registry host, e.g. `k8s-staging-kubernetes/pause`. */
export type RepositoryPath = string & { readonly __brand: "RepositoryPath" };

/**
 * A registry host with optional port, e.g. `gcr.io`, `127.0.0.1:5000`, `[::1]:5000`, in lower
 * case: host names are case-insensitive (RFC 4343), and every parser that makes one folds or
 * refuses upper case, so keys and comparisons never fold it again.
 */
export type RegistryHost = string & { readonly __brand: "RegistryHost" };

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6_HOST = /^\[[a-fA-F0-9:.]+\]$/;
const PORT = /^[0-9]{1,5}$/;

/** The longest name (host and path together) the reference grammar allows. */
export const MAX_NAME_LENGTH = 255;

export function pathComponentProblem(component: string): string | undefined {
  if (component.length === 0) return "empty path component (two slashes, or a leading or trailing slash)";
  if (PATH_COMPONENT.test(component)) return undefined;
  if (/[A-Z]/.test(component)) return `path component ${quoteExcerpt(component)} has upper-case letters`;
  if (/^[._-]|[._-]$/.test(component)) {
    return `path component ${quoteExcerpt(component)} must start and end with a letter or digit`;
  }
  const bad = /[^a-z0-9._-]/.exec(component);
  if (bad) return `character ${quoteExcerpt(bad[0])} is not allowed in ${quoteExcerpt(component)}`;
  return `path component ${quoteExcerpt(component)} has an invalid separator (use ".", "_", "__" or dashes)`;
}

export function repositoryPathProblem(input: string): string | undefined {
  if (input.length === 0) return "a repository name cannot be empty";
  if (input.length > MAX_NAME_LENGTH) return `longer than ${MAX_NAME_LENGTH} characters`;
  for (const component of input.split("/")) {
    const problem = pathComponentProblem(component);
    if (problem) return problem;
  }
  return undefined;
}

export function isRepositoryPath(input: string): input is RepositoryPath {
  return repositoryPathProblem(input) === undefined;
}

export function parseRepositoryPath(input: string): RepositoryPath {
  const problem = repositoryPathProblem(input);
  if (problem) throw new InvalidNameError("repository", input, problem);
  return input as RepositoryPath;
}

/** Joins repository path pieces, skipping empty ones (a registry without a path prefix). */
export function joinRepositoryPath(...parts: readonly string[]): RepositoryPath {
  return parseRepositoryPath(parts.filter((part) => part.length > 0).join("/"));
}

export function registryHostProblem(input: string): string | undefined {
  if (input.length === 0) return "a registry host cannot be empty";
  let host = input;
  let port: string | undefined;
  if (input.startsWith("[")) {
    const close = input.indexOf("]");
    if (close < 0) return "an IPv6 address must be closed with ]";
    host = input.slice(0, close + 1);
    const rest = input.slice(close + 1);
    if (rest.length > 0) {
      if (!rest.startsWith(":")) return "only :port may follow an IPv6 address";
      port = rest.slice(1);
    }
    if (!IPV6_HOST.test(host)) return `${quoteExcerpt(host)} is not an IPv6 address`;
  } else {
    const colon = input.lastIndexOf(":");
    if (colon >= 0) {
      host = input.slice(0, colon);
      port = input.slice(colon + 1);
    }
    if (host.length === 0) return "the host part is empty";
    for (const component of host.split(".")) {
      if (!DOMAIN_COMPONENT.test(component)) {
        return `${quoteExcerpt(host)} is not a host name (letters, digits and dashes between dots)`;
      }
    }
  }
  if (port !== undefined && (!PORT.test(port) || Number(port) > 65535)) {
    return `port ${quoteExcerpt(port)} must be a number from 0 to 65535`;
  }
  return undefined;
}

/**
 * The one spelling hosts are compared and keyed in: lower case (RFC 4343). For host text from
 * outside (a flag, a header, a URL, a credential file); a `RegistryHost` is folded already.
 */
export function foldHostCase(host: string): string {
  return host.toLowerCase();
}

/** A registry host from outside (a flag, an event), folded to lower case. */
export function parseRegistryHost(input: string): RegistryHost {
  const problem = registryHostProblem(input);
  if (problem) throw new InvalidNameError("registry", input, problem);
  return foldHostCase(input) as RegistryHost;
}

/**
 * Whether the first component of a name is a registry host rather than part of a Docker Hub
 * path: it has a dot or a colon, is `localhost`, is an IPv6 literal, or has upper-case letters
 * (which a path component never has). The same rule as distribution's `splitDockerDomain`.
 */
export function looksLikeRegistryHost(component: string): boolean {
  return (
    component.includes(".") ||
    component.includes(":") ||
    component === "localhost" ||
    component.startsWith("[") ||
    component !== component.toLowerCase()
  );
}

/** The host name without port or IPv6 brackets, for address checks (loopback, private). */
export function hostnameOf(host: RegistryHost): string {
  if (host.startsWith("[")) return host.slice(1, host.indexOf("]"));
  const colon = host.lastIndexOf(":");
  return colon >= 0 ? host.slice(0, colon) : host;
}

/** Registries reached over plain HTTP by default, as Docker does for local registries. */
export function isLoopbackHost(host: RegistryHost | string): boolean {
  const name = foldHostCase(hostnameOf(host as RegistryHost));
  if (name === "localhost" || name === "::1") return true;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}
