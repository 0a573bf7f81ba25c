import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { appDesiredState } from "../../test/support/audit-state.js";
import { MemoryLogger } from "../log.js";
import type { Digest, RepositoryPath, Tag } from "../reference/index.js";
import type { AlertResultListener, AlertSink } from "./alert.js";
import { Auditor } from "./auditor.js";
import type { ManifestFacts } from "./decide.js";
import type { DesiredState } from "./desired-state.js";
import type { RegistryEvent } from "./event.js";
import { FindingStore } from "./finding-store.js";
import {
  RevisionHistory,
  type ChainCommit,
  type CheckRecord,
  type ManifestHistory,
  type ManifestRevision,
  type RevisionState,
} from "./revision-history.js";

/**
 * The auditor's timing rules (docs/auditor.md, "Timing: a promotion right after its merge") with
 * a scripted manifest history and clock: what a check of the manifests finds is decided by each
 * test, as git would answer it.
 */

const RELEASE = `sha256:${"1".repeat(64)}` as Digest;
const IMAGE_TYPE = "application/vnd.oci.image.manifest.v1+json";
const T0 = Date.parse("2026-01-31T12:00:00Z");
const MINUTE = 60_000;

function commitId(fill: string): string {
  return fill.repeat(40);
}

const BEFORE = commitId("a");
const RELEASED = commitId("b");
const STATES = new Map<string, DesiredState>([
  [BEFORE, appDesiredState({})],
  [RELEASED, appDesiredState({ [RELEASE]: ["1.0"] })],
]);

function releaseTagPush(): RegistryEvent {
  return {
    id: `distribution:release-${Math.random()}`,
    source: "distribution",
    action: "push",
    targetKind: "manifest",
    host: "reg.example",
    attribution: "endpoint",
    repository: "prod/app" as RepositoryPath,
    mediaType: IMAGE_TYPE,
    digest: RELEASE,
    tag: "1.0" as Tag,
  };
}

class RecordingAlerts implements AlertSink {
  readonly texts: string[] = [];
  send(text: string, onResult?: AlertResultListener): void {
    this.texts.push(text);
    onResult?.(true);
  }
  drain(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {
    // Nothing queued.
  }
}

/** The branch as the test says git shows it; `requestCheck` runs the test's `onCheck`. */
class ScriptedHistory implements ManifestHistory {
  revisions = new RevisionHistory(60 * MINUTE);
  record: CheckRecord | undefined;
  checks = 0;
  onCheck: () => void = () => undefined;

  lastCheck(): CheckRecord | undefined {
    return this.record;
  }

  requestCheck(): Promise<void> {
    this.checks += 1;
    this.onCheck();
    return Promise.resolve();
  }

  statesAround(at: number): Promise<readonly RevisionState[]> {
    return this.revisions.statesAround(
      at,
      (revision) => Promise.resolve(STATES.get(revision.id) ?? appDesiredState({})),
      () => undefined,
    );
  }
}

/** A push by digest only (a signature manifest, a child, or a rogue image): it waits for its grace. */
function releaseDigestPush(): RegistryEvent {
  const { tag: _tag, ...event } = releaseTagPush();
  return event;
}

describe("Auditor timing", () => {
  let directory: string;
  let store: FindingStore;
  let alerts: RecordingAlerts;
  let clock: number;
  let history: ScriptedHistory;
  const auditors: Auditor[] = [];

  const lookup = {
    manifest: (): Promise<ManifestFacts | undefined> => Promise.resolve(undefined),
    verifiedTagFor: (): Tag | undefined => undefined,
  };

  function auditor(options: { maxCheckWaitMs?: number } = {}): Auditor {
    const chain: ChainCommit[] = [{ commit: BEFORE, committedAt: T0 - 60 * MINUTE }];
    history.revisions.observeChain(chain, T0 - 30 * MINUTE);
    history.record = { startedAt: T0 - 30 * MINUTE, lastSuccessStartedAt: T0 - 30 * MINUTE };
    const created = new Auditor(STATES.get(BEFORE) ?? appDesiredState({}), {
      store,
      lookup,
      logger: new MemoryLogger(),
      alerts,
      now: () => clock,
      pendingGraceMs: 5 * MINUTE,
      sweepIntervalMs: 5,
      history,
      ...revisionOf(BEFORE),
      ...options,
    });
    created.start();
    auditors.push(created);
    return created;
  }

  function revisionOf(commit: string): { revision?: ManifestRevision } {
    const revision = history.revisions.revision(commit);
    return revision === undefined ? {} : { revision };
  }

  /** git answers: the release was merged at `mergedAt`; the check started at `startedAt`. */
  function mergeSeen(subject: Auditor, mergedAt: number, startedAt: number): void {
    history.revisions.observeChain(
      [
        { commit: RELEASED, committedAt: mergedAt },
        { commit: BEFORE, committedAt: T0 - 60 * MINUTE },
      ],
      startedAt,
      startedAt,
    );
    history.record = { startedAt, lastSuccessStartedAt: startedAt };
    subject.setDesiredState(STATES.get(RELEASED) ?? appDesiredState({}), revisionOf(RELEASED).revision);
    subject.manifestsChecked({ historyChanged: true });
  }

  beforeEach(() => {
    directory = mkdtempSync(path.join(os.tmpdir(), "promoter-auditor-timing-"));
    store = FindingStore.open(path.join(directory, "audit.db"));
    alerts = new RecordingAlerts();
    clock = T0;
    history = new ScriptedHistory();
  });

  afterEach(async () => {
    for (const created of auditors.splice(0)) await created.close();
    store.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it("holds a would-be violation for a check after its arrival: a merge made before it explains it", async () => {
    const subject = auditor();
    history.onCheck = () => {
      clock = T0 + 1000;
      // Merged a second before the promotion's first event; the auditor had not fetched it yet.
      mergeSeen(subject, T0 - 1000, T0 + 1000);
    };
    subject.receive([releaseTagPush()]);
    await subject.idle();
    await subject.idle();
    expect(history.checks).toBe(1);
    expect(store.query()).toMatchObject([{ verdict: "verified", rule: "promoted-tag" }]);
    expect(alerts.texts).toEqual([]);
  });

  it("a violation a check after its arrival confirmed is final: a merge dated before it does not retract it", async () => {
    const subject = auditor();
    history.onCheck = () => {
      clock = T0 + 1000;
      history.record = { startedAt: T0 + 1000, lastSuccessStartedAt: T0 + 1000 };
      subject.manifestsChecked({ historyChanged: false });
    };
    subject.receive([releaseTagPush()]);
    await subject.idle();
    await subject.idle();
    expect(store.query()).toMatchObject([
      { verdict: "violation", rule: "unmanaged-repository", retracted: null },
    ]);
    expect(alerts.texts).toHaveLength(1);
    // Later the release is merged with a commit date ten minutes before the push, and the
    // auditor had no fetch to bound it by (it restarted meanwhile).
    clock = T0 + 5 * MINUTE;
    history.revisions = new RevisionHistory(60 * MINUTE);
    mergeSeen(subject, T0 - 10 * MINUTE, T0 + 5 * MINUTE);
    await subject.idle();
    expect(store.query()).toMatchObject([
      { verdict: "violation", rule: "unmanaged-repository", retracted: null },
    ]);
    expect(alerts.texts).toHaveLength(1);
  });

  it("a violation declared while the check failed is retracted once a check shows a merge of its time: in the store and by alert", async () => {
    const subject = auditor();
    history.onCheck = () => {
      clock = T0 + 1000;
      history.record = {
        startedAt: T0 + 1000,
        error: "git fetch failed",
        lastSuccessStartedAt: T0 - 30 * MINUTE,
      };
      subject.manifestsChecked({ historyChanged: false });
    };
    subject.receive([releaseTagPush()]);
    await subject.idle();
    await subject.idle();
    const [violation] = store.query();
    expect(violation).toMatchObject({ verdict: "violation", rule: "unmanaged-repository" });
    expect(violation?.reason).toMatch(/could not be refreshed before judging: git fetch failed/);
    expect(alerts.texts).toHaveLength(1);

    clock = T0 + 2 * MINUTE;
    mergeSeen(subject, T0 - 1000, T0 + 2 * MINUTE);
    await subject.idle();
    expect(store.query()).toMatchObject([
      {
        verdict: "verified",
        rule: "promoted-tag",
        retracted: { rule: "unmanaged-repository", at: new Date(T0 + 2 * MINUTE).toISOString() },
      },
    ]);
    expect(alerts.texts).toHaveLength(2);
    expect(alerts.texts[1]).toMatch(
      /^promoter audit: retracted violation \(unmanaged-repository\) push .* now verified/,
    );
  });

  it("never retracts on the word of a merge made after the event", async () => {
    const subject = auditor();
    history.onCheck = () => {
      clock = T0 + 1000;
      history.record = {
        startedAt: T0 + 1000,
        error: "git fetch failed",
        lastSuccessStartedAt: T0 - 30 * MINUTE,
      };
      subject.manifestsChecked({ historyChanged: false });
    };
    subject.receive([releaseTagPush()]);
    await subject.idle();
    await subject.idle();
    clock = T0 + 2 * MINUTE;
    mergeSeen(subject, T0 + MINUTE, T0 + 2 * MINUTE);
    await subject.idle();
    expect(store.query()).toMatchObject([
      { verdict: "violation", rule: "unmanaged-repository", retracted: null },
    ]);
    expect(alerts.texts).toHaveLength(1);
  });

  it("a push by digest found a violation when its grace ends still waits for a check after its arrival, so a merge made later and dated before it cannot retract it", async () => {
    const subject = auditor();
    // The repository is managed: a push by digest there waits for its grace period.
    subject.setDesiredState(
      appDesiredState({ [`sha256:${"2".repeat(64)}`]: ["0.9"] }),
      revisionOf(BEFORE).revision,
    );
    subject.receive([releaseDigestPush()]);
    await subject.idle();
    // Nothing fetches meanwhile (a long --reload-interval): the grace period ends.
    history.onCheck = () => {
      history.revisions.observeChain([{ commit: BEFORE, committedAt: T0 - 60 * MINUTE }], clock, clock);
      history.record = { startedAt: clock, lastSuccessStartedAt: clock };
      subject.manifestsChecked({ historyChanged: false });
    };
    clock = T0 + 5 * MINUTE + 1000;
    await expect.poll(() => store.query().length).toBe(1);
    expect(history.checks).toBe(1);
    const [violation] = store.query();
    expect(violation).toMatchObject({ verdict: "violation", rule: "unexpected-digest" });
    expect(violation?.reason).not.toMatch(/could not be refreshed/);

    // Ten minutes later a pull request adding it is merged, its commit dated before the push.
    clock = T0 + 15 * MINUTE;
    mergeSeen(subject, T0 - 10 * MINUTE, T0 + 15 * MINUTE);
    await subject.idle();
    expect(store.query()).toMatchObject([
      { verdict: "violation", rule: "unexpected-digest", retracted: null },
    ]);
  });

  it("a violation declared while git was down becomes final once a check after its arrival succeeds: a restart does not reopen it", async () => {
    const subject = auditor();
    history.onCheck = () => {
      clock = T0 + 1000;
      history.record = {
        startedAt: T0 + 1000,
        error: "git fetch failed",
        lastSuccessStartedAt: T0 - 30 * MINUTE,
      };
      subject.manifestsChecked({ historyChanged: false });
    };
    subject.receive([releaseTagPush()]);
    await subject.idle();
    await subject.idle();
    expect(store.query()).toMatchObject([{ verdict: "violation", rule: "unmanaged-repository" }]);

    // git answers again: the branch has not moved, nothing explains the push.
    clock = T0 + MINUTE;
    history.revisions.observeChain([{ commit: BEFORE, committedAt: T0 - 60 * MINUTE }], clock, clock);
    history.record = { startedAt: clock, lastSuccessStartedAt: clock };
    subject.manifestsChecked({ historyChanged: false });
    await subject.idle();
    await subject.close();

    // A pull request adding the image is merged, its commit dated before the push, and the
    // auditor restarts before it fetches again: its first fetch has no earlier one to bound the date.
    clock = T0 + 10 * MINUTE;
    history.revisions = new RevisionHistory(60 * MINUTE);
    history.revisions.observeChain(
      [
        { commit: RELEASED, committedAt: T0 - 10 * MINUTE },
        { commit: BEFORE, committedAt: T0 - 60 * MINUTE },
      ],
      clock,
    );
    history.record = { startedAt: clock, lastSuccessStartedAt: clock };
    const restarted = new Auditor(STATES.get(RELEASED) ?? appDesiredState({}), {
      store,
      lookup,
      logger: new MemoryLogger(),
      alerts,
      now: () => clock,
      sweepIntervalMs: 5,
      history,
      ...revisionOf(RELEASED),
    });
    auditors.push(restarted);
    restarted.start();
    await restarted.idle();
    expect(store.query()).toMatchObject([
      { verdict: "violation", rule: "unmanaged-repository", retracted: null },
    ]);
    expect(alerts.texts).toHaveLength(1);
  });

  it("a push by digest waiting for a check is judged again when the check finishes or the wait ends, not at every sweep", async () => {
    // git does not answer: the checks asked for never finish.
    const subject = auditor({ maxCheckWaitMs: 30 * MINUTE });
    subject.setDesiredState(
      appDesiredState({ [`sha256:${"2".repeat(64)}`]: ["0.9"] }),
      revisionOf(BEFORE).revision,
    );
    subject.receive([releaseDigestPush()]);
    await subject.idle();
    clock = T0 + 5 * MINUTE + 1000;
    await expect.poll(() => history.checks).toBe(1);
    // A second push by digest whose grace ends later: the sweep that finds it due has run once
    // it asks for its check.
    subject.receive([
      { ...releaseDigestPush(), id: "distribution:second", digest: `sha256:${"3".repeat(64)}` as Digest },
    ]);
    await subject.idle();
    clock = T0 + 10 * MINUTE + 2000;
    await expect.poll(() => history.checks).toBeGreaterThanOrEqual(2);
    expect(history.checks).toBe(2);
    expect(subject.pendingCount).toBe(2);
  });
});
