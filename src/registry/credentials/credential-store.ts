import { silentLogger, type Logger } from "../../log.js";
import type { RegistryHost, RepositoryPath } from "../../reference/index.js";
import type { Credential, CredentialSource } from "./types.js";

/**
 * Asks credential sources in order and remembers the answer per registry and repository, so a
 * helper program runs once per registry in a run, not once per request.
 */
export class CredentialStore {
  private readonly cache = new Map<string, Promise<Credential | undefined>>();
  /** When each answered credential is to be asked for again (short-lived ones only). */
  private readonly renewAfter = new Map<string, number>();
  /** `registry source` pairs already told: which file a credential came from, said once. */
  private readonly told = new Set<string>();

  constructor(
    private readonly sources: readonly CredentialSource[],
    private readonly logger: Logger = silentLogger,
    private readonly now: () => number = Date.now,
  ) {}

  lookup(
    registry: RegistryHost,
    repository: RepositoryPath | undefined,
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<Credential | undefined> {
    const key = `${registry}/${repository ?? ""}`;
    const answer = this.cache.get(key);
    const renewAfter = this.renewAfter.get(key);
    // A short-lived credential past its renewal time is asked for again; requests arriving
    // meanwhile share the new answer.
    if (answer && (renewAfter === undefined || this.now() < renewAfter)) return answer;
    return this.start(key, registry, repository, options);
  }

  /**
   * A new credential in place of `stale`, which the registry or its token endpoint refused: for
   * a short-lived credential (`renewAfter`) the sources are asked afresh (a token revoked or
   * expired early, a clock ahead of ours); requests that already hold a newer one keep it. Any
   * other credential is answered as it is: asking again would give the same.
   */
  async renew(
    registry: RegistryHost,
    repository: RepositoryPath | undefined,
    stale: Credential,
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<Credential | undefined> {
    if (stale.kind !== "basic" || stale.renewAfter === undefined) return stale;
    const key = `${registry}/${repository ?? ""}`;
    const cached = this.cache.get(key);
    const current = cached === undefined ? undefined : await cached.catch(() => undefined);
    // Another request renewed it meanwhile, or holds a newer one already: share that.
    if (this.cache.get(key) !== cached || (cached !== undefined && current !== stale)) {
      return this.lookup(registry, repository, options);
    }
    return this.start(key, registry, repository, { ...options, fresh: true });
  }

  private start(
    key: string,
    registry: RegistryHost,
    repository: RepositoryPath | undefined,
    options: { readonly signal?: AbortSignal; readonly fresh?: boolean },
  ): Promise<Credential | undefined> {
    const asked = this.ask(registry, repository, options);
    this.cache.set(key, asked);
    this.renewAfter.delete(key);
    asked.then(
      (credential) => {
        if (
          credential?.kind === "basic" &&
          credential.renewAfter !== undefined &&
          this.cache.get(key) === asked
        ) {
          this.renewAfter.set(key, credential.renewAfter);
        }
      },
      // A failure (a helper that timed out) is not remembered: the next request asks again.
      () => {
        if (this.cache.get(key) === asked) this.cache.delete(key);
      },
    );
    return asked;
  }

  private async ask(
    registry: RegistryHost,
    repository: RepositoryPath | undefined,
    options: { readonly signal?: AbortSignal; readonly fresh?: boolean },
  ): Promise<Credential | undefined> {
    for (const source of this.sources) {
      const credential = await source.lookup(registry, repository, options);
      if (credential) {
        const told = `${registry} ${credential.source}`;
        if (!this.told.has(told)) {
          this.told.add(told);
          this.logger.log("info", `credentials for ${registry} from ${credential.source}`);
        }
        return credential;
      }
    }
    return undefined;
  }

  /** Every place looked in for `registry`, in order. */
  places(registry: RegistryHost): string[] {
    return this.sources.flatMap((source) => source.describe(registry));
  }
}
