import type { RepositoryIdentity, RepositoryStore } from "./store.js";
import type { RequestCounter } from "./transport/request-counter.js";

/**
 * Counts the operations on a store that makes no HTTP requests (an OCI layout directory) under
 * one key (`oci:DIR`), with the method the same operation would use against a registry, so that
 * per-edge request reports cover both kinds of store.
 */
type CountedOperation = Exclude<keyof RepositoryStore, keyof RepositoryIdentity | "canMountFrom">;

const METHOD_OF: Readonly<Record<CountedOperation, string>> = {
  resolve: "HEAD",
  getManifest: "GET",
  putManifest: "PUT",
  hasBlob: "HEAD",
  openBlob: "GET",
  putBlob: "PUT",
  mountBlob: "POST",
  listTags: "GET",
  listTagsAndManifests: "GET",
  referrers: "GET",
};

export function countingStore(store: RepositoryStore, counter: RequestCounter, key: string): RepositoryStore {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof property !== "string" || typeof value !== "function") return value;
      const method = Object.hasOwn(METHOD_OF, property) ? METHOD_OF[property as CountedOperation] : undefined;
      if (method === undefined) return (value as (...args: unknown[]) => unknown).bind(target);
      return (...args: unknown[]) => {
        counter.record(key, method);
        return (value as (...args: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}
