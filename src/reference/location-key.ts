import type { RegistryHost, RepositoryPath } from "./name.js";
import { OCI_LAYOUT_PREFIX, type RegistryLocation, type RepositoryLocation } from "./reference.js";

/**
 * How registries and repositories are named in messages, plans and findings, and keyed in maps:
 * one spelling per place, so that equal keys mean the same place everywhere (planning, copying,
 * rules, the auditor). A `RegistryHost` is lower case by construction (`parseRegistryHost`,
 * `parseRegistryLocation`), so a remote key is its host and path as they are; an OCI layout is
 * keyed by its directory (loaders resolve it against the manifest's folder) without trailing
 * slashes. Pure.
 */

/** `oci:DIR` without trailing slashes: how an OCI layout tree is shown, and its key. */
export function layoutKey(directory: string): string {
  return `${OCI_LAYOUT_PREFIX}${directory.replace(/\/+$/, "")}`;
}

/**
 * `host/path`: the key of the repository `path` of a registry host. `host` is lower case: a
 * `RegistryHost`, or the host of a registry event, which the event parsers fold.
 */
export function remoteRepositoryKey(
  host: RegistryHost | string,
  repository: RepositoryPath | string,
): string {
  return `${host}/${repository}`;
}

/** `host/path` or `oci:DIR/path`: how a repository is shown, and its key. */
export function formatRepositoryLocation(location: RepositoryLocation): string {
  return location.kind === "remote"
    ? remoteRepositoryKey(location.host, location.repository)
    : `${layoutKey(location.directory)}/${location.repository}`;
}

/** `host`, `host/prefix` or `oci:DIR`: how a registry location is shown, and its key. */
export function formatRegistryLocation(location: RegistryLocation): string {
  if (location.kind === "oci-layout") return layoutKey(location.directory);
  return location.prefix === "" ? location.host : `${location.host}/${location.prefix}`;
}

/** Two registry locations that name the same place: same host and path, or same layout directory. */
export function sameRegistryLocation(a: RegistryLocation, b: RegistryLocation): boolean {
  return formatRegistryLocation(a) === formatRegistryLocation(b);
}

/**
 * A repository as the manifest writes it, the same in every checkout: `host/path/image`, or for
 * an OCI layout the registry name as written (`oci:mirror/image`, `writtenRegistry`), never the
 * resolved directory, which differs between checkouts. The key to use when keys are compared
 * across machines (the shard of a repository, docs/sharding.md).
 */
export function writtenRepositoryName(location: RepositoryLocation, writtenRegistry: string): string {
  return location.kind === "remote"
    ? formatRepositoryLocation(location)
    : `${writtenRegistry.replace(/\/+$/, "")}/${location.repository}`;
}

/**
 * `formatRepositoryLocation`, made once per location object: edges share their
 * `RepositoryLocation` objects, so this keeps planning linear in the number of distinct
 * repositories (the real tree has ~720,000 edges).
 */
export class RepositoryKeyCache {
  private readonly cache = new WeakMap<RepositoryLocation, string>();

  of(location: RepositoryLocation): string {
    let key = this.cache.get(location);
    if (key === undefined) {
      key = formatRepositoryLocation(location);
      this.cache.set(location, key);
    }
    return key;
  }
}
