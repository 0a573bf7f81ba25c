import { silentLogger, type Logger } from "../../log.js";
import type { RegistryHost, RepositoryPath } from "../../reference/index.js";
import type { Credential, CredentialSource } from "./types.js";

/**
 * Asks credential sources in order and remembers the answer per registry and repository, so a
 * helper program runs once per registry in a run, not once per request.
 */
export class CredentialStore {
  private readonly cache = new Map<string, Promise<Credential | undefined>>();
  /** `registry source` pairs already told: which file a credential came from, said once. */
  private readonly told = new Set<string>();

  constructor(
    private readonly sources: readonly CredentialSource[],
    private readonly logger: Logger = silentLogger,
  ) {}

  lookup(
    registry: RegistryHost,
    repository: RepositoryPath | undefined,
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<Credential | undefined> {
    const key = `${registry}/${repository ?? ""}`;
    let answer = this.cache.get(key);
    if (!answer) {
      answer = this.ask(registry, repository, options);
      this.cache.set(key, answer);
      // A failure (a helper that timed out) is not remembered: the next request asks again.
      answer.catch(() => this.cache.delete(key));
    }
    return answer;
  }

  private async ask(
    registry: RegistryHost,
    repository: RepositoryPath | undefined,
    options: { readonly signal?: AbortSignal },
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
