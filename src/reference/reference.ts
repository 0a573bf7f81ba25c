import { InvalidNameError } from "../errors.js";
import { quoteExcerpt } from "../excerpt.js";
import { isDigest, digestProblem, type Digest } from "./digest.js";
import {
  foldHostCase,
  joinRepositoryPath,
  looksLikeRegistryHost,
  MAX_NAME_LENGTH,
  registryHostProblem,
  repositoryPathProblem,
  type RegistryHost,
  type RepositoryPath,
} from "./name.js";
import { canonicalRegistryHostProblem } from "./registry-host.js";
import { isTag, tagProblem, type Tag } from "./tag.js";

/** Docker Hub's canonical name; its API lives at `registry-1.docker.io`. */
export const DOCKER_HUB = "docker.io" as RegistryHost;
/** Docker Hub's names: its canonical name, its index and its API host. */
const DOCKER_HUB_ALIASES: ReadonlySet<string> = new Set([
  DOCKER_HUB,
  "index.docker.io",
  "registry-1.docker.io",
]);

/** Whether `host` (lower case) is one of Docker Hub's names. */
export function isDockerHubName(host: string): boolean {
  return DOCKER_HUB_ALIASES.has(host);
}

/** The prefix that names a local OCI image layout directory instead of a registry. */
export const OCI_LAYOUT_PREFIX = "oci:";

/** A fully qualified image reference in a registry: `host/path[:tag][@digest]`. */
export interface ImageReference {
  readonly registry: RegistryHost;
  readonly repository: RepositoryPath;
  readonly tag?: Tag;
  readonly digest?: Digest;
}

/**
 * Parses `[host[:port]/]path[:tag][@digest]` with Docker's normalisation: a name without a
 * registry host means Docker Hub, and a single-component Docker Hub name lives under `library/`
 * (`ubuntu` -> `docker.io/library/ubuntu`).
 */
export function parseImageReference(input: string): ImageReference {
  const fail = (reason: string): never => {
    throw new InvalidNameError("reference", input, reason);
  };
  if (input.length === 0) fail("a reference cannot be empty");

  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf("@");
  if (at >= 0) {
    const candidate = rest.slice(at + 1);
    if (!isDigest(candidate)) fail(digestProblem(candidate) ?? "invalid digest");
    digest = candidate as Digest;
    rest = rest.slice(0, at);
  }

  let tag: Tag | undefined;
  const lastSlash = rest.lastIndexOf("/");
  const lastColon = rest.lastIndexOf(":");
  // A colon after the last slash separates the tag; one before it belongs to host:port.
  if (lastColon > lastSlash) {
    const candidate = rest.slice(lastColon + 1);
    if (!isTag(candidate)) fail(tagProblem(candidate) ?? "invalid tag");
    tag = candidate as Tag;
    rest = rest.slice(0, lastColon);
  }

  const slash = rest.indexOf("/");
  let host: string;
  let path: string;
  if (slash >= 0 && looksLikeRegistryHost(rest.slice(0, slash))) {
    host = rest.slice(0, slash);
    path = rest.slice(slash + 1);
  } else {
    host = DOCKER_HUB;
    path = rest;
  }
  host = foldHostCase(host);
  if (isDockerHubName(host)) {
    host = DOCKER_HUB;
    if (!path.includes("/")) path = `library/${path}`;
  }
  const hostProblem = registryHostProblem(host);
  if (hostProblem) fail(hostProblem);
  const pathProblem = repositoryPathProblem(path);
  if (pathProblem) fail(pathProblem);
  if (host.length + 1 + path.length > MAX_NAME_LENGTH) {
    fail(`a name is at most ${MAX_NAME_LENGTH} characters`);
  }
  return {
    registry: host as RegistryHost,
    repository: path as RepositoryPath,
    ...(tag === undefined ? {} : { tag }),
    ...(digest === undefined ? {} : { digest }),
  };
}

export function formatImageReference(reference: ImageReference): string {
  let text = `${reference.registry}/${reference.repository}`;
  if (reference.tag !== undefined) text += `:${reference.tag}`;
  if (reference.digest !== undefined) text += `@${reference.digest}`;
  return text;
}

/**
 * Where a registry named in a promotion manifest lives: a remote registry host with an optional
 * path prefix (`gcr.io/k8s-staging-foo`), or a local OCI image layout tree (`oci:PATH`), in which
 * each repository is its own layout directory at `PATH/<repository>`.
 */
export type RegistryLocation =
  | {
      readonly kind: "remote";
      readonly host: RegistryHost;
      /** Path prefix below the host; empty when images sit at the top level. */
      readonly prefix: RepositoryPath | "";
      /** The name as written, for messages and plans. */
      readonly name: string;
    }
  | {
      readonly kind: "oci-layout";
      /** The directory as written after `oci:`, resolved against the manifest's folder by loaders. */
      readonly directory: string;
      readonly name: string;
    };

/** Why a registry name from a manifest is unusable, or undefined. */
export function registryLocationProblem(name: string): string | undefined {
  if (name.startsWith(OCI_LAYOUT_PREFIX)) {
    const directory = name.slice(OCI_LAYOUT_PREFIX.length);
    if (directory.length === 0) return "oci: needs a directory, e.g. oci:./staging";
    if (directory.includes("\0")) return "a directory name cannot contain NUL";
    return undefined;
  }
  if (name.length === 0) return "a registry name cannot be empty";
  // Without this, "https://gcr.io/x" was refused for its "port" (the empty text after "https:").
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(name);
  if (scheme) {
    return `a registry name has no scheme: write ${quoteExcerpt(name.slice(scheme[0].length))}, not ${quoteExcerpt(name)} (HTTPS is used unless the registry is on loopback or named with --insecure-registry)`;
  }
  if (name.endsWith("/")) return "a registry name cannot end with /";
  const slash = name.indexOf("/");
  const host = slash < 0 ? name : name.slice(0, slash);
  if (!looksLikeRegistryHost(host)) {
    // Docker and kpromo (go-containerregistry) would read it as a path on Docker Hub; a reader
    // of the manifest may read a host of the local network: ambiguous, so it is refused.
    return `${quoteExcerpt(host)} is not a registry host (expected a host such as gcr.io or 127.0.0.1:5000, or oci:DIR; for Docker Hub write ${quoteExcerpt(`docker.io/${name}`)})`;
  }
  const hostProblem = canonicalRegistryHostProblem(host);
  if (hostProblem) return hostProblem;
  if (slash >= 0) return repositoryPathProblem(name.slice(slash + 1));
  return undefined;
}

export function parseRegistryLocation(name: string): RegistryLocation {
  const problem = registryLocationProblem(name);
  if (problem) throw new InvalidNameError("registry", name, problem);
  if (name.startsWith(OCI_LAYOUT_PREFIX)) {
    return { kind: "oci-layout", directory: name.slice(OCI_LAYOUT_PREFIX.length), name };
  }
  const slash = name.indexOf("/");
  return {
    kind: "remote",
    host: (slash < 0 ? name : name.slice(0, slash)) as RegistryHost,
    prefix: (slash < 0 ? "" : name.slice(slash + 1)) as RepositoryPath | "",
    name,
  };
}

/** Where one image of a promotion manifest lives inside a registry location. */
export type RepositoryLocation =
  | { readonly kind: "remote"; readonly host: RegistryHost; readonly repository: RepositoryPath }
  | { readonly kind: "oci-layout"; readonly directory: string; readonly repository: RepositoryPath };

/**
 * The repository an image lands in: `<registry name>/<image name>` (a destination deeper than the
 * source "rebases" the image under its own prefix, as kpromo does).
 */
export function repositoryIn(location: RegistryLocation, image: RepositoryPath): RepositoryLocation {
  if (location.kind === "remote") {
    return { kind: "remote", host: location.host, repository: joinRepositoryPath(location.prefix, image) };
  }
  return { kind: "oci-layout", directory: location.directory, repository: image };
}
