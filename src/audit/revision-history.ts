import type { DesiredState } from "./desired-state.js";

/**
 * The recent revisions of the manifests and when each was the one on the branch, so an event is
 * judged against the manifests as they were when it arrived (docs/auditor.md, "Timing"). Pure
 * data: the watcher (manifest-source.ts) feeds it what git or the files say, and loads the
 * desired state of a revision it has not loaded yet.
 *
 * A revision is on the branch from `since` (when it got there) until the `since` of the
 * revision that replaced it. For a commit of the branch's first-parent chain, `since` is its
 * commit time (a merge records when it was made), but never later than when the auditor first saw
 * it there, and never earlier than the start of the last fetch that did not see it: whoever
 * writes a commit chooses its date, and a date set in the past must not let a merge explain a
 * push made before it (a fetch after the push, which every would-be violation waits for,
 * bounds it). For a version of manifest files, the newest modification time of its files, never
 * later than when it was loaded. Only the first-parent chain counts: the commits of a pull
 * request's branch brought in by a merge were never the branch's state, and nobody reviewed
 * them one by one. Nor does a commit that reached the branch together with the one after it
 * (a pull request merged by fast-forward or "rebase and merge" puts each of its commits on the
 * first-parent chain in one push): as far as the auditor can tell it was replaced when it
 * arrived. Its dates are its author's, or the rebase's (the same second), and those older than
 * the last fetch that did not list them, or later than the fetch that did, all become that
 * fetch's bounds; so two merges count apart only when their commit times fall apart between
 * two fetches, as merges made one after the other do.
 */

/** Revisions of the branch kept at most (the git history fetched is this deep). */
export const MAX_WINDOW_REVISIONS = 20;
/** How long after it was replaced a revision still explains events, by default. */
export const DEFAULT_REVISION_WINDOW_MS = 60 * 60_000;
/**
 * A revision explains events that arrived up to this long before it reached the branch: the
 * clocks of the git server and of the auditor may differ a little (commit times are whole
 * seconds, rounded down, which only makes them earlier). A promotion starts after its merge, and
 * its first event comes seconds later; a push more than this before the merge that adds it is
 * not explained by it.
 */
export const MERGE_CLOCK_TOLERANCE_MS = 2_000;

export interface ManifestRevision {
  /** A commit id, or a fingerprint of the files. */
  readonly id: string;
  /** For findings: `commit 1a2b3c4d5e6f` or `the manifest files as of <time>`. */
  readonly label: string;
  /** Epoch milliseconds at which it reached the branch (see above). */
  readonly since: number;
}

/** A revision with its desired state, and when it was replaced (undefined: it is the newest). */
export interface RevisionState {
  readonly revision: ManifestRevision;
  readonly until: number | undefined;
  readonly state: DesiredState;
}

/** The last check of the manifests that finished: when it started, and why it failed when it did. */
export interface CheckRecord {
  /** Epoch milliseconds. */
  readonly startedAt: number;
  readonly error?: string;
  /** When the last check that succeeded started (this one, unless it failed). */
  readonly lastSuccessStartedAt?: number;
}

/** What the auditor asks of the manifests' source before it declares a violation. */
export interface ManifestHistory {
  /** The last check that finished. */
  lastCheck(): CheckRecord | undefined;
  /** A check starting now or later (shared, rate-limited); resolves when it finished, never rejects. */
  requestCheck(): Promise<void>;
  /** Every revision on the branch around `at` (see `RevisionHistory.around`), with its desired state. */
  statesAround(at: number): Promise<readonly RevisionState[]>;
}

/** A commit of the branch's first-parent chain, newest first, as git lists it. */
export interface ChainCommit {
  readonly commit: string;
  /** Commit time, epoch milliseconds. */
  readonly committedAt: number;
}

interface Entry {
  readonly revision: ManifestRevision;
  state: DesiredState | undefined;
  /** A load in progress: callers share it. */
  loading: Promise<DesiredState> | undefined;
  /** The state could not be loaded: not tried again. */
  failed: boolean;
}

/** `commit 1a2b3c4d5e6f`. */
export function commitLabel(commit: string): string {
  return `commit ${commit.slice(0, 12)}`;
}

export class RevisionHistory {
  /** Newest first; at most MAX_WINDOW_REVISIONS. */
  private entries: Entry[] = [];
  /** When each commit of the chain was first seen, to cap its commit time. */
  private firstSeen = new Map<string, number>();
  /** When the fetch behind the last `observeChain` started: a commit it did not list came later. */
  private lastFetchStartedAt: number | undefined;
  readonly windowMs: number;

  constructor(windowMs: number = DEFAULT_REVISION_WINDOW_MS) {
    this.windowMs = windowMs;
  }

  /** The newest revision, when one is known. */
  get newest(): ManifestRevision | undefined {
    return this.entries[0]?.revision;
  }

  /**
   * The branch's first-parent chain as fetched by a fetch that started at `fetchStartedAt` and
   * finished at `seenAt`, newest first: the revisions become its commits (states already loaded
   * are kept). Returns whether the newest commit changed.
   */
  observeChain(chain: readonly ChainCommit[], seenAt: number, fetchStartedAt: number = seenAt): boolean {
    const before = this.entries[0]?.revision.id;
    const known = new Map(this.entries.map((entry) => [entry.revision.id, entry]));
    const firstSeen = new Map<string, number>();
    const entries: Entry[] = [];
    for (const { commit, committedAt } of chain.slice(0, MAX_WINDOW_REVISIONS)) {
      const seen = this.firstSeen.get(commit) ?? seenAt;
      firstSeen.set(commit, seen);
      const previous = known.get(commit);
      // New since the last fetch: it reached the branch after that fetch started.
      const notBefore = this.firstSeen.has(commit) ? undefined : this.lastFetchStartedAt;
      const since = Math.max(Math.min(committedAt, seen), notBefore ?? Number.NEGATIVE_INFINITY);
      entries.push(
        previous ?? {
          revision: { id: commit, label: commitLabel(commit), since },
          state: undefined,
          loading: undefined,
          failed: false,
        },
      );
    }
    this.entries = entries;
    this.firstSeen = firstSeen;
    this.lastFetchStartedAt = fetchStartedAt;
    return this.entries[0]?.revision.id !== before;
  }

  /** A newly loaded revision of files: it replaces the newest unless it is the same one. */
  observeLoaded(revision: ManifestRevision, state: DesiredState): void {
    const newest = this.entries[0];
    if (newest?.revision.id === revision.id) {
      newest.state = state;
      return;
    }
    this.entries = [{ revision, state, loading: undefined, failed: false }, ...this.entries].slice(
      0,
      MAX_WINDOW_REVISIONS,
    );
  }

  /** Records the loaded state of a revision of the chain (the watcher loaded it as the current one). */
  remember(revisionId: string, state: DesiredState): void {
    const entry = this.entries.find((candidate) => candidate.revision.id === revisionId);
    if (entry) {
      entry.state = state;
      entry.failed = false;
    }
  }

  /** The revision of the chain with this id, when known. */
  revision(id: string): ManifestRevision | undefined {
    return this.entries.find((entry) => entry.revision.id === id)?.revision;
  }

  /**
   * The revisions that were on the branch at some moment of [at - window, at + tolerance],
   * newest first, with when each was replaced.
   */
  around(at: number): { revision: ManifestRevision; until: number | undefined }[] {
    const result: { revision: ManifestRevision; until: number | undefined }[] = [];
    for (const [i, entry] of this.entries.entries()) {
      const until = i === 0 ? undefined : this.entries[i - 1]?.revision.since;
      if (entry.revision.since > at + MERGE_CLOCK_TOLERANCE_MS) continue;
      if (until !== undefined && until < at - this.windowMs) continue;
      // Replaced no later than it arrived: it reached the branch in the same push as its
      // replacement (the commits of a pull request merged by fast-forward or rebase, all dated
      // alike, or floored alike by the fetch that found them), or a replacement dated before it
      // (clocks, rewritten dates). Never the branch's state: nobody reviewed it on its own and
      // no promotion ran from it.
      if (until !== undefined && until <= entry.revision.since) continue;
      result.push({ revision: entry.revision, until });
    }
    return result;
  }

  /**
   * `around(at)` with the desired states, loading those not loaded yet with `load` (one at a
   * time, newest first); a revision that cannot be loaded is left out and not tried again.
   */
  async statesAround(
    at: number,
    load: (revision: ManifestRevision) => Promise<DesiredState>,
    onLoadFailure: (revision: ManifestRevision, error: unknown) => void,
  ): Promise<RevisionState[]> {
    const result: RevisionState[] = [];
    for (const { revision, until } of this.around(at)) {
      const entry = this.entries.find((candidate) => candidate.revision.id === revision.id);
      if (!entry || entry.failed) continue;
      let state = entry.state;
      if (!state) {
        // Callers that share a load report its failure once.
        entry.loading ??= load(revision).catch((error: unknown) => {
          entry.failed = true;
          onLoadFailure(revision, error);
          throw error;
        });
        try {
          state = await entry.loading;
          entry.state = state;
        } catch {
          continue;
        } finally {
          entry.loading = undefined;
        }
      }
      result.push({ revision, until, state });
    }
    return result;
  }

  /**
   * Forgets the loaded states of revisions replaced so long ago that they explain no event the
   * auditor may still judge (received within the window): they are loaded again if needed.
   */
  release(now: number): void {
    for (const [i, entry] of this.entries.entries()) {
      const until = i === 0 ? undefined : this.entries[i - 1]?.revision.since;
      if (until !== undefined && until < now - 2 * this.windowMs) entry.state = undefined;
    }
  }
}
