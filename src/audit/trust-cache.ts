import { describeError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Digest, RepositoryLocation } from "../reference/index.js";
import { openOnSide, type RepositoryOpener } from "../registry/index.js";
import { identityFor, verifyPlace, type PlaceExpectation, type PlaceVerification } from "../sign/index.js";
import type { DesiredState } from "./desired-state.js";
import { eventRepositoryKey, type RegistryEvent } from "./event.js";

/**
 * Verified signature and attestation state for the status page (docs/auditor.md, "Signatures and
 * attestations, verified"): per (mirror repository, digest), what `verifyPlace` (the checks of
 * `promoter verify`) answered, computed in the background and cached.
 *
 * A search asks `lookup`; an unknown place answers `checking` and is queued, so the page never
 * waits on a registry. At most `concurrency` checks run at once and `maxQueued` wait, the newest
 * ask first (a full queue drops its oldest ask, which a later ask queues again); the cache
 * keeps `maxEntries` verdicts, the least recently asked dropped first. A manifest or tag pushed or
 * deleted in a repository (a signature, attestation, tag) drops that repository's verdicts, and those
 * already asked about are checked again at once; a push of a digest the manifests promote there
 * is checked before anyone asks. A verdict older than `maxAgeMs` is not shown: the next ask checks
 * again, so a signature replaced or deleted without an event (a registry that does not notify, a
 * lost notification) is seen within that time, not kept "valid" until evicted.
 */

export const DEFAULT_TRUST_CACHE_ENTRIES = 10_000;
export const DEFAULT_TRUST_CONCURRENCY = 4;
export const DEFAULT_TRUST_QUEUE = 1_000;
/** How long a verdict is shown before it is checked again (`--trust-max-age`): 10 minutes. */
export const DEFAULT_TRUST_MAX_AGE_MS = 600_000;
/** One place's check is abandoned after this long (the registry hangs): `unreadable`. */
export const TRUST_CHECK_TIMEOUT_MS = 60_000;

/** One mirror repository's copy of a digest: what is verified. */
export interface TrustPlace {
  /** The repository key (`host/path`), as the desired state names it. */
  readonly repository: string;
  readonly location: RepositoryLocation;
  readonly digest: Digest;
  /** The canonical name the signature must name (`promoter verify`'s identity). */
  readonly identity?: string;
}

export type TrustVerdict =
  | { readonly state: "checking" }
  | { readonly state: "known"; readonly checkedAt: string; readonly result: PlaceVerification };

/** Verifies one place; the I/O (a registry) behind the cache. */
export type PlaceVerifier = (place: TrustPlace, signal: AbortSignal) => Promise<PlaceVerification>;

export interface TrustCacheOptions {
  readonly verify: PlaceVerifier;
  readonly desiredState: () => DesiredState;
  /** `--sign-identity`: a prefix or `{image}` template; default each image's canonical name. */
  readonly identity?: string;
  readonly maxEntries?: number;
  readonly concurrency?: number;
  readonly maxQueued?: number;
  /** A verdict checked longer ago than this is checked again when asked. */
  readonly maxAgeMs?: number;
  readonly timeoutMs?: number;
  readonly now?: () => number;
  readonly logger?: Logger;
}

interface Entry {
  readonly place: TrustPlace;
  verdict: TrustVerdict;
  /** When the check that gave a known verdict finished (`now()`), for its age. */
  checkedAtMs?: number;
}

/** A push or delete of a manifest or tag (a delete may not say which it is). */
export function changesVerdicts(event: Pick<RegistryEvent, "action" | "targetKind">): boolean {
  return (event.action === "push" || event.action === "delete") && event.targetKind !== "blob";
}

function keyOf(repository: string, digest: string): string {
  return `${repository} ${digest}`;
}

export class TrustCache {
  private readonly entries = new Map<string, Entry>();
  private readonly queue: Entry[] = [];
  private running = 0;
  private readonly closing = new AbortController();
  private readonly idleWaiters: (() => void)[] = [];
  private readonly options: TrustCacheOptions;
  private readonly maxEntries: number;
  private readonly concurrency: number;
  private readonly maxQueued: number;
  private readonly maxAgeMs: number;
  /** Checks started, for tests and metrics. */
  checksStarted = 0;

  constructor(options: TrustCacheOptions) {
    this.options = options;
    this.maxEntries = Math.max(1, options.maxEntries ?? DEFAULT_TRUST_CACHE_ENTRIES);
    this.concurrency = Math.max(1, options.concurrency ?? DEFAULT_TRUST_CONCURRENCY);
    this.maxQueued = Math.max(0, options.maxQueued ?? DEFAULT_TRUST_QUEUE);
    this.maxAgeMs = Math.max(0, options.maxAgeMs ?? DEFAULT_TRUST_MAX_AGE_MS);
  }

  get size(): number {
    return this.entries.size;
  }

  get queued(): number {
    return this.queue.length;
  }

  /**
   * The verdict for `digest` in `repository` (a production repository of the desired state), or
   * `checking` while it is being worked out; undefined when the manifests do not promote it there.
   */
  lookup(repository: string, digest: string): TrustVerdict | undefined {
    const key = keyOf(repository, digest);
    const entry = this.entries.get(key);
    if (entry?.checkedAtMs !== undefined && this.now() - entry.checkedAtMs >= this.maxAgeMs) {
      // Too old to vouch for what the mirror serves now (no event may ever say it changed).
      this.entries.delete(key);
      this.schedule(entry.place);
      return { state: "checking" };
    }
    if (entry) {
      // Most recently asked last: eviction takes the first.
      this.entries.delete(key);
      this.entries.set(key, entry);
      return entry.verdict;
    }
    const place = this.placeOf(repository, digest);
    if (!place) return undefined;
    this.schedule(place);
    return { state: "checking" };
  }

  /**
   * Events the auditor received: each repository's verdicts are dropped and those asked about are
   * checked again; a pushed digest the manifests promote there is checked before anyone asks.
   */
  observe(events: readonly RegistryEvent[]): void {
    const touched = new Map<string, Set<string>>();
    for (const event of events) {
      // Only a manifest or tag written or deleted changes what is verified. Pulls (our own
      // checks' reads among them: a registry notifies those too) and blob uploads change nothing.
      if (!changesVerdicts(event)) continue;
      const repository = eventRepositoryKey(event);
      const digests = touched.get(repository) ?? new Set<string>();
      if (event.digest !== undefined && event.action === "push") digests.add(event.digest);
      touched.set(repository, digests);
    }
    for (const [repository, digests] of touched) {
      const again: TrustPlace[] = [];
      for (const [key, entry] of this.entries) {
        if (entry.place.repository !== repository) continue;
        this.entries.delete(key);
        this.dequeue(entry);
        again.push(entry.place);
      }
      for (const place of again) this.schedule(place);
      for (const digest of digests) {
        if (this.entries.has(keyOf(repository, digest))) continue;
        const place = this.placeOf(repository, digest);
        if (place) this.schedule(place);
      }
    }
  }

  /** Resolves when no check is queued or running. */
  idle(): Promise<void> {
    if (this.running === 0 && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Stops the checks under way; their places stay unknown. */
  close(): void {
    this.closing.abort();
    this.queue.length = 0;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private placeOf(repository: string, digest: string): TrustPlace | undefined {
    const desired = this.options.desiredState().repositories.get(repository);
    if (!desired || !(desired.digests as ReadonlyMap<string, unknown>).has(digest)) return undefined;
    const identity =
      this.options.identity !== undefined && desired.image !== undefined
        ? identityFor(this.options.identity, desired.image)
        : desired.identity;
    return {
      repository,
      location: desired.location,
      digest: digest as Digest,
      ...(identity === undefined ? {} : { identity }),
    };
  }

  private schedule(place: TrustPlace): void {
    if (this.closing.signal.aborted) return;
    const key = keyOf(place.repository, place.digest);
    const entry: Entry = { place, verdict: { state: "checking" } };
    this.entries.set(key, entry);
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= this.maxEntries) break;
      const evicted = this.entries.get(oldest);
      this.entries.delete(oldest);
      if (evicted) this.dequeue(evicted);
    }
    if (this.entries.get(key) !== entry) return;
    // Newest first: what the last search shows is checked before what a broad one queued. A full
    // queue drops its oldest ask, which stays unknown until it is asked again.
    this.queue.unshift(entry);
    const room = this.maxQueued + Math.max(0, this.concurrency - this.running);
    while (this.queue.length > room) {
      const dropped = this.queue.pop();
      if (!dropped) break;
      const droppedKey = keyOf(dropped.place.repository, dropped.place.digest);
      if (this.entries.get(droppedKey) === dropped) this.entries.delete(droppedKey);
    }
    this.pump();
  }

  private dequeue(entry: Entry): void {
    const at = this.queue.indexOf(entry);
    if (at >= 0) this.queue.splice(at, 1);
  }

  private pump(): void {
    while (this.running < this.concurrency && this.queue.length > 0) {
      const entry = this.queue.shift();
      if (entry) void this.run(entry);
    }
    if (this.running === 0 && this.queue.length === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  private async run(entry: Entry): Promise<void> {
    this.running += 1;
    this.checksStarted += 1;
    const signal = AbortSignal.any([
      this.closing.signal,
      AbortSignal.timeout(this.options.timeoutMs ?? TRUST_CHECK_TIMEOUT_MS),
    ]);
    let result: PlaceVerification;
    try {
      result = await this.options.verify(entry.place, signal);
    } catch (error) {
      const reason =
        signal.aborted && !this.closing.signal.aborted
          ? "the registry did not answer in time"
          : describeError(error);
      result = {
        signature: { status: "unreadable", signers: [], reasons: [reason] },
        attestation: { status: "unreadable", signers: [], reasons: [reason], reviews: [] },
      };
      this.options.logger?.log("warn", "status page: a signature check failed", {
        repository: entry.place.repository,
        digest: entry.place.digest,
        reason,
      });
    } finally {
      this.running -= 1;
    }
    // Dropped (evicted, or an event came) while it ran: that answer may be stale.
    if (
      this.entries.get(keyOf(entry.place.repository, entry.place.digest)) === entry &&
      !this.closing.signal.aborted
    ) {
      entry.checkedAtMs = this.now();
      entry.verdict = { state: "known", checkedAt: new Date(entry.checkedAtMs).toISOString(), result };
    }
    this.pump();
  }
}

/** The verifier of `audit serve`: the place's repository opened through the registry client. */
export function registryPlaceVerifier(
  provider: RepositoryOpener,
  expectation: Omit<PlaceExpectation, "identity">,
): PlaceVerifier {
  return (place, signal) =>
    verifyPlace(
      openOnSide(provider, place.location, "destination"),
      place.digest,
      { ...expectation, ...(place.identity === undefined ? {} : { identity: place.identity }) },
      { signal },
    );
}
