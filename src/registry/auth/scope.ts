import type { RepositoryPath } from "../../reference/index.js";

/**
 * Token scopes: `resourcetype:resourcename:action[,action...]`.
 * https://distribution.github.io/distribution/spec/auth/scope/
 */

/** Reads: manifests, blobs, tags, referrers. */
export function pullScope(repository: RepositoryPath | string): string {
  return `repository:${repository}:pull`;
}

/** Writes: uploads and manifest pushes need pull as well (HEAD before PUT, mounts). */
export function pushScope(repository: RepositoryPath | string): string {
  return `repository:${repository}:pull,push`;
}

/** Deletes of manifests and blobs (distribution asks for the `delete` action). */
export function deleteScope(repository: RepositoryPath | string): string {
  return `repository:${repository}:delete`;
}

/** The registry-wide repository listing. */
export const CATALOG_SCOPE = "registry:catalog:*";

/**
 * Merges scopes on the same resource into one (`repository:a:pull` + `repository:a:push` ->
 * `repository:a:pull,push`), drops duplicates and sorts, so equal needs share a cached token.
 * The resource name may contain colons (`registry:catalog:*` has none, but a host:port might).
 */
export function mergeScopes(scopes: Iterable<string>): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const scope of scopes) {
    for (const single of scope.split(" ")) {
      const last = single.lastIndexOf(":");
      const first = single.indexOf(":");
      if (first < 0 || last === first) continue;
      const resource = single.slice(0, last);
      const actions = single
        .slice(last + 1)
        .split(",")
        .filter(Boolean);
      let set = byResource.get(resource);
      if (!set) {
        set = new Set();
        byResource.set(resource, set);
      }
      for (const action of actions) set.add(action);
    }
  }
  return [...byResource.entries()]
    .map(([resource, actions]) => `${resource}:${[...actions].sort().join(",")}`)
    .sort();
}
