import { WorkLimiter } from "../concurrency/index.js";
import { describeError } from "../errors.js";
import type { Logger } from "../log.js";
import { parseManifest } from "../oci/index.js";
import {
  formatRepositoryLocation,
  type Digest,
  type RepositoryLocation,
  type Tag,
} from "../reference/index.js";
import { openOnSide, type RepositoryOpener } from "../registry/index.js";
import { manifestShape } from "../sign/index.js";
import type { ManifestFacts } from "./decide.js";
import type { DesiredRepository } from "./desired-state.js";
import { UNATTRIBUTED_HOST } from "./event.js";
import type { ManifestLookup } from "./observe.js";

/**
 * The auditor's `ManifestLookup` over registries: reads a manifest from the production repository
 * and, when it is not there (yet), from the staging sources the manifests name for that
 * repository. Manifests are content-addressed, so what was read is cached by digest for good;
 * "not found" is cached briefly and forgotten as soon as an event pushes that digest.
 */

/** Digests whose facts are kept; beyond it the oldest are dropped. */
export const MAX_CACHED_MANIFESTS = 200_000;
/** How long "could not read" is remembered, so re-judging pending events stays cheap. */
export const NEGATIVE_CACHE_MS = 30_000;
/** Manifest reads in flight at once. */
export const LOOKUP_CONCURRENCY = 8;

export interface RegistryLookupOptions {
  readonly provider: RepositoryOpener;
  readonly logger: Logger;
  /** Tags already verified per repository: the findings store answers this. */
  readonly verifiedTagFor: (repositoryKey: string, digest: Digest) => Tag | undefined;
  readonly signal?: AbortSignal;
  readonly now?: () => number;
}

export class RegistryManifestLookup implements ManifestLookup {
  private readonly provider: RepositoryOpener;
  private readonly logger: Logger;
  private readonly verifiedTag: RegistryLookupOptions["verifiedTagFor"];
  private readonly signal: AbortSignal | undefined;
  private readonly now: () => number;
  private readonly facts = new Map<Digest, ManifestFacts>();
  /** digest -> repository key -> when it could not be read there (a digest may be in one repository only). */
  private readonly missing = new Map<Digest, Map<string, number>>();
  private readonly hints = new Map<Digest, ManifestFacts>();
  private readonly inFlight = new Map<string, Promise<ManifestFacts | undefined>>();
  /** Without the signal: each read is given it, and fails and is logged like any other once it fires. */
  private readonly reads = new WorkLimiter(LOOKUP_CONCURRENCY);

  constructor(options: RegistryLookupOptions) {
    this.provider = options.provider;
    this.logger = options.logger;
    this.verifiedTag = options.verifiedTagFor;
    this.signal = options.signal;
    this.now = options.now ?? Date.now;
  }

  /** Drops "not found" for a digest: an event just pushed it somewhere. */
  forget(digest: Digest): void {
    this.missing.delete(digest);
  }

  /**
   * Children an event told (an index push with `references`). Only a fallback for when the
   * manifest cannot be read: an event does not say whether the index has a `subject`.
   */
  learn(digest: Digest, facts: ManifestFacts): void {
    if (this.hints.size >= MAX_CACHED_MANIFESTS) this.hints.clear();
    this.hints.set(digest, facts);
  }

  verifiedTagFor(repositoryKey: string, digest: Digest): Tag | undefined {
    return this.verifiedTag(repositoryKey, digest);
  }

  async resolveTag(repository: DesiredRepository, tag: Tag): Promise<Digest | undefined> {
    try {
      const descriptor = await this.reads.run(() =>
        openOnSide(this.provider, repository.location, "destination").resolve(
          tag,
          this.signal ? { signal: this.signal } : {},
        ),
      );
      return descriptor?.digest;
    } catch (error) {
      this.logger.log("warn", "could not resolve tag", {
        repository: repository.key,
        tag,
        error: describeError(error),
      });
      return undefined;
    }
  }

  async manifest(repository: DesiredRepository, digest: Digest): Promise<ManifestFacts | undefined> {
    const known = this.facts.get(digest);
    if (known) return known;
    // An event no registry was attributed to has no registry to read from.
    if (repository.location.kind === "remote" && repository.location.host === UNATTRIBUTED_HOST) {
      return this.hints.get(digest);
    }
    const missingAt = this.missing.get(digest)?.get(repository.key);
    if (missingAt !== undefined && this.now() - missingAt < NEGATIVE_CACHE_MS) return this.hints.get(digest);
    const key = `${repository.key}@${digest}`;
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.read(repository, digest).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    return pending;
  }

  private async read(repository: DesiredRepository, digest: Digest): Promise<ManifestFacts | undefined> {
    for (const location of this.candidates(repository, digest)) {
      const side = location === repository.location ? "destination" : "source";
      try {
        const content = await this.reads.run(() =>
          openOnSide(this.provider, location, side).getManifest(
            digest,
            this.signal ? { signal: this.signal } : {},
          ),
        );
        if (!content) continue;
        const parsed = parseManifest(
          content.bytes,
          content.mediaType,
          `${formatRepositoryLocation(location)}@${digest}`,
        );
        const facts: ManifestFacts = {
          mediaType: parsed.mediaType,
          children: parsed.kind === "index" ? parsed.manifests.map((entry) => entry.digest) : [],
          ...(parsed.subject ? { subject: parsed.subject.digest } : {}),
          shape: manifestShape(parsed),
        };
        this.remember(digest, facts);
        return facts;
      } catch (error) {
        this.logger.log("warn", "could not read manifest for the audit", {
          repository: formatRepositoryLocation(location),
          digest,
          error: describeError(error),
        });
      }
    }
    let byRepository = this.missing.get(digest);
    if (!byRepository) {
      if (this.missing.size >= MAX_CACHED_MANIFESTS) this.missing.clear();
      byRepository = new Map();
      this.missing.set(digest, byRepository);
    }
    byRepository.set(repository.key, this.now());
    return this.hints.get(digest);
  }

  /** The production repository first, then the distinct sources of its promoted digests. */
  private candidates(repository: DesiredRepository, digest: Digest): RepositoryLocation[] {
    const locations: RepositoryLocation[] = [repository.location];
    const seen = new Set<string>([repository.key]);
    const add = (sources: readonly RepositoryLocation[]): void => {
      for (const source of sources) {
        const key = formatRepositoryLocation(source);
        if (!seen.has(key)) {
          seen.add(key);
          locations.push(source);
        }
      }
    };
    // The digest's own sources first; a child of a promoted index sits with its parent's.
    add(repository.digests.get(digest)?.sources ?? []);
    for (const wanted of repository.digests.values()) add(wanted.sources);
    return locations;
  }

  private remember(digest: Digest, facts: ManifestFacts): void {
    this.missing.delete(digest);
    if (this.facts.size >= MAX_CACHED_MANIFESTS) {
      const oldest = this.facts.keys().next();
      if (!oldest.done) this.facts.delete(oldest.value);
    }
    this.facts.set(digest, facts);
  }
}
