import { RemoteRepository, type ContentDeleter, type RepositoryStore } from "../../src/registry/index.js";

/**
 * The deleting role of a registry repository the store provider opened. Promotion never deletes,
 * so the provider's stores do not offer it (docs/decisions/0003-store-roles.md); tests that check
 * deletes, or clean up, ask for it here.
 */
export function remoteDeleter(store: RepositoryStore): ContentDeleter {
  if (!(store instanceof RemoteRepository)) {
    throw new Error(`${store.name} is not a registry repository opened by the store provider`);
  }
  return store;
}
