import { describe, expect, it } from "vitest";
import type { DesiredState } from "./desired-state.js";
import {
  MAX_WINDOW_REVISIONS,
  MERGE_CLOCK_TOLERANCE_MS,
  RevisionHistory,
  type ManifestRevision,
} from "./revision-history.js";

const MINUTE = 60_000;
const T0 = Date.parse("2026-01-01T00:00:00Z");

function commitId(n: number): string {
  return n.toString(16).padStart(40, "0");
}

function stateNamed(name: string): DesiredState {
  return { repositories: new Map(), registries: [], edgeCount: name.length };
}

/** The chain newest first: commit n was made at T0 + n minutes. */
function chain(...minutes: number[]): { commit: string; committedAt: number }[] {
  return minutes.map((minute) => ({ commit: commitId(minute), committedAt: T0 + minute * MINUTE }));
}

describe("RevisionHistory", () => {
  it("lists the revisions on the branch around a moment, newest first, with when each was replaced", () => {
    const history = new RevisionHistory(10 * MINUTE);
    history.observeChain(chain(30, 20, 5), T0 + 31 * MINUTE);
    // At minute 25, commit 20 is on the branch, and commit 5 was replaced 5 minutes before.
    expect(history.around(T0 + 25 * MINUTE).map(({ revision }) => revision.id)).toEqual([
      commitId(20),
      commitId(5),
    ]);
    // Commit 30 reached the branch at minute 30: it explains nothing that arrived before.
    expect(history.around(T0 + 31 * MINUTE).map(({ revision, until }) => [revision.id, until])).toEqual([
      [commitId(30), undefined],
      [commitId(20), T0 + 30 * MINUTE],
    ]);
  });

  it("keeps a replaced revision for the window after it was replaced, then drops it", () => {
    const history = new RevisionHistory(10 * MINUTE);
    history.observeChain(chain(30, 20), T0 + 31 * MINUTE);
    expect(history.around(T0 + 39 * MINUTE).map(({ revision }) => revision.id)).toEqual([
      commitId(30),
      commitId(20),
    ]);
    expect(history.around(T0 + 41 * MINUTE).map(({ revision }) => revision.id)).toEqual([commitId(30)]);
  });

  it("never lets a revision explain an event that arrived before it reached the branch", () => {
    const history = new RevisionHistory(10 * MINUTE);
    history.observeChain(chain(30, 20), T0 + 31 * MINUTE);
    const justBefore = T0 + 30 * MINUTE - MERGE_CLOCK_TOLERANCE_MS - 1;
    expect(history.around(justBefore).map(({ revision }) => revision.id)).toEqual([commitId(20)]);
    const withinTolerance = T0 + 30 * MINUTE - MERGE_CLOCK_TOLERANCE_MS;
    expect(history.around(withinTolerance).map(({ revision }) => revision.id)).toEqual([
      commitId(30),
      commitId(20),
    ]);
  });

  it("caps a commit time in the future at when the auditor first saw the commit", () => {
    const history = new RevisionHistory(10 * MINUTE);
    const seenAt = T0 + 31 * MINUTE;
    // A commit dated a day ahead (a lying committer clock) reached the branch when it was seen.
    history.observeChain([{ commit: commitId(1), committedAt: T0 + 24 * 60 * MINUTE }], seenAt);
    expect(history.newest?.since).toBe(seenAt);
    // Seen again later: still when it was first seen.
    history.observeChain([{ commit: commitId(1), committedAt: T0 + 24 * 60 * MINUTE }], seenAt + MINUTE);
    expect(history.newest?.since).toBe(seenAt);
    expect(history.around(seenAt - MERGE_CLOCK_TOLERANCE_MS - 1)).toEqual([]);
  });

  it("never dates a new commit before the last fetch that did not list it (a backdated commit)", () => {
    const history = new RevisionHistory(10 * MINUTE);
    history.observeChain(chain(20), T0 + 21 * MINUTE, T0 + 21 * MINUTE);
    // A fetch started at minute 30 did not list it; one started at minute 40 lists a commit
    // dated minute 25 (its author chose the date): it reached the branch after minute 30.
    history.observeChain(chain(20), T0 + 30 * MINUTE, T0 + 30 * MINUTE);
    history.observeChain(chain(25, 20), T0 + 40 * MINUTE, T0 + 40 * MINUTE);
    expect(history.newest?.since).toBe(T0 + 30 * MINUTE);
    expect(history.around(T0 + 27 * MINUTE).map(({ revision }) => revision.id)).toEqual([commitId(20)]);
    // Commits the first fetch listed keep their commit time.
    expect(history.revision(commitId(20))?.since).toBe(T0 + 20 * MINUTE);
  });

  it("leaves out a revision whose replacement is dated before it (it was never the branch's state)", () => {
    const history = new RevisionHistory(10 * MINUTE);
    history.observeChain(chain(20, 30), T0 + 31 * MINUTE);
    expect(history.around(T0 + 31 * MINUTE).map(({ revision }) => revision.id)).toEqual([commitId(20)]);
  });

  it("leaves out the commits that reached the branch with the one after them (a pull request merged by fast-forward)", () => {
    const history = new RevisionHistory(10 * MINUTE);
    history.observeChain(chain(20), T0 + 21 * MINUTE, T0 + 21 * MINUTE);
    // Three commits dated by their author (minutes 1 to 3) come in one push, found by the fetch
    // of minute 30: all are dated minute 21, and only the last was ever the branch's state.
    history.observeChain(chain(3, 2, 1, 20), T0 + 30 * MINUTE, T0 + 30 * MINUTE);
    expect(history.around(T0 + 30 * MINUTE).map(({ revision }) => revision.id)).toEqual([
      commitId(3),
      commitId(20),
    ]);
    // Two merges made apart between the fetches both count.
    history.observeChain(chain(35, 33, 3, 20), T0 + 36 * MINUTE, T0 + 36 * MINUTE);
    expect(history.around(T0 + 36 * MINUTE).map(({ revision }) => revision.id)).toEqual([
      commitId(35),
      commitId(33),
      commitId(3),
    ]);
  });

  it("keeps at most MAX_WINDOW_REVISIONS revisions and reports when the newest changed", () => {
    const history = new RevisionHistory(10 * MINUTE);
    const long = Array.from({ length: MAX_WINDOW_REVISIONS + 5 }, (_, i) => MAX_WINDOW_REVISIONS + 5 - i);
    expect(history.observeChain(chain(...long), T0 + 60 * MINUTE)).toBe(true);
    expect(history.observeChain(chain(...long), T0 + 61 * MINUTE)).toBe(false);
    expect(history.revision(commitId(long[MAX_WINDOW_REVISIONS - 1] ?? 0))).toBeDefined();
    expect(history.revision(commitId(long[MAX_WINDOW_REVISIONS] ?? 0))).toBeUndefined();
  });

  it("loads each revision's state once, shares a load in progress, and does not retry one that failed", async () => {
    const history = new RevisionHistory(10 * MINUTE);
    history.observeChain(chain(30, 20, 10), T0 + 31 * MINUTE);
    const loads: string[] = [];
    const failures: string[] = [];
    const load = async (revision: ManifestRevision): Promise<DesiredState> => {
      loads.push(revision.id);
      await Promise.resolve();
      if (revision.id === commitId(20)) throw new Error("tree unreadable");
      return stateNamed(revision.id);
    };
    const onFailure = (revision: ManifestRevision): void => {
      failures.push(revision.id);
    };
    const at = T0 + 30 * MINUTE;
    const [first, second] = await Promise.all([
      history.statesAround(at, load, onFailure),
      history.statesAround(at, load, onFailure),
    ]);
    expect(first.map(({ revision }) => revision.id)).toEqual([commitId(30), commitId(10)]);
    expect(second.map(({ revision }) => revision.id)).toEqual([commitId(30), commitId(10)]);
    expect(loads).toEqual([commitId(30), commitId(20), commitId(10)]);
    expect(failures).toEqual([commitId(20)]);
    await history.statesAround(at, load, onFailure);
    expect(loads).toHaveLength(3);
  });

  it("keeps a state remembered for the current commit, and forgets states replaced long ago", async () => {
    const history = new RevisionHistory(10 * MINUTE);
    history.observeChain(chain(30, 20), T0 + 31 * MINUTE);
    history.remember(commitId(30), stateNamed("current"));
    const loads: string[] = [];
    const load = (revision: ManifestRevision): Promise<DesiredState> => {
      loads.push(revision.id);
      return Promise.resolve(stateNamed(revision.id));
    };
    await history.statesAround(T0 + 30 * MINUTE, load, () => undefined);
    expect(loads).toEqual([commitId(20)]);
    history.release(T0 + 30 * MINUTE + 2 * 10 * MINUTE + 1);
    await history.statesAround(T0 + 30 * MINUTE, load, () => undefined);
    expect(loads).toEqual([commitId(20), commitId(20)]);
  });

  it("a new version of manifest files replaces the newest revision", () => {
    const history = new RevisionHistory(10 * MINUTE);
    const first = { id: "a", label: "the manifest files as of then", since: T0 };
    const second = { id: "b", label: "the manifest files as of now", since: T0 + 5 * MINUTE };
    history.observeLoaded(first, stateNamed("a"));
    history.observeLoaded(first, stateNamed("a"));
    history.observeLoaded(second, stateNamed("b"));
    expect(history.around(T0 + 6 * MINUTE).map(({ revision, until }) => [revision.id, until])).toEqual([
      ["b", undefined],
      ["a", T0 + 5 * MINUTE],
    ]);
  });
});
