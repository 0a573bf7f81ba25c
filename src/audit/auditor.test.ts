import { mkdtempSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { appDesiredState } from "../../test/support/audit-state.js";
import { MemoryLogger } from "../log.js";
import type { Digest, RepositoryPath, Tag } from "../reference/index.js";
import type { AlertResultListener, AlertSink } from "./alert.js";
import { Auditor } from "./auditor.js";
import type { ManifestFacts } from "./decide.js";
import type { DesiredState } from "./desired-state.js";
import type { RegistryEvent } from "./event.js";
import { FindingStore } from "./finding-store.js";
import { AuditMetrics } from "./metrics.js";

/** How often the auditor looks for events whose grace period is over (a faked timer where it matters). */
const SWEEP_INTERVAL_MS = 5;

const digest = (fill: string): Digest => `sha256:${fill.repeat(64)}` as Digest;
const INDEX = digest("1");
const CHILD_A = digest("2");
const CHILD_B = digest("3");
const ROGUE_INDEX = digest("4");
const ROGUE_CHILD = digest("5");
const SIGNATURE = digest("6");
const STRANGER = digest("7");
const INDEX_TYPE = "application/vnd.oci.image.index.v1+json";
const IMAGE_TYPE = "application/vnd.oci.image.manifest.v1+json";

function desiredState(): DesiredState {
  return appDesiredState({ [INDEX]: ["1.0"] });
}

/**
 * Facts as a registry holds them: what was pushed to production is readable there; staging is
 * not readable at all here (the auditor has no staging credentials), the hard case.
 */
class RegistryLikeLookup {
  readonly pushed = new Map<Digest, ManifestFacts>();
  readonly store: () => FindingStore;

  constructor(store: () => FindingStore) {
    this.store = store;
  }

  manifest(_repository: unknown, wanted: Digest): Promise<ManifestFacts | undefined> {
    return Promise.resolve(this.pushed.get(wanted));
  }

  verifiedTagFor(repositoryKey: string, wanted: Digest): Tag | undefined {
    return this.store().verifiedTagFor(repositoryKey, wanted) as Tag | undefined;
  }
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

let counter = 0;
function push(fields: Partial<RegistryEvent>): RegistryEvent {
  counter += 1;
  return {
    id: `distribution:e${counter}`,
    source: "distribution",
    action: "push",
    targetKind: "manifest",
    host: "reg.example",
    repository: "prod/app" as RepositoryPath,
    mediaType: IMAGE_TYPE,
    ...fields,
  };
}

describe("Auditor", () => {
  let directory: string;
  let store: FindingStore;
  let lookup: RegistryLikeLookup;
  let alerts: RecordingAlerts;
  let clock: number;
  let logger: MemoryLogger;
  let metrics: AuditMetrics;
  const auditors: Auditor[] = [];

  function auditor(options: { graceMs?: number } = {}): Auditor {
    const created = new Auditor(desiredState(), {
      store,
      lookup,
      logger,
      metrics,
      alerts,
      now: () => clock,
      pendingGraceMs: options.graceMs ?? 60_000,
      sweepIntervalMs: SWEEP_INTERVAL_MS,
    });
    created.start();
    auditors.push(created);
    return created;
  }

  /**
   * Runs the sweep timer once and waits for what it enqueued. Tests that call it fake the timer
   * (`vi.useFakeTimers` before creating the auditor), so the sweep runs exactly then.
   */
  async function sweepOnce(subject: Auditor): Promise<void> {
    await vi.advanceTimersByTimeAsync(SWEEP_INTERVAL_MS);
    await subject.idle();
  }

  beforeEach(() => {
    directory = mkdtempSync(path.join(os.tmpdir(), "promoter-auditor-test-"));
    store = FindingStore.open(path.join(directory, "audit.db"));
    lookup = new RegistryLikeLookup(() => store);
    alerts = new RecordingAlerts();
    clock = Date.parse("2026-01-31T12:00:00Z");
    logger = new MemoryLogger();
    metrics = new AuditMetrics();
  });

  afterEach(async () => {
    for (const created of auditors.splice(0)) await created.close();
    vi.useRealTimers();
    store.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it("raises no alarm for a promotion: children first, then the index, then tags and signatures", async () => {
    const subject = auditor();
    // Children arrive before their index: nothing explains them yet (staging is unreadable).
    lookup.pushed.set(CHILD_A, { mediaType: IMAGE_TYPE, children: [] });
    lookup.pushed.set(CHILD_B, { mediaType: IMAGE_TYPE, children: [] });
    subject.receive([
      push({ targetKind: "blob", mediaType: "application/octet-stream", digest: STRANGER }),
      push({ digest: CHILD_A }),
      push({ digest: CHILD_B }),
    ]);
    await subject.idle();
    expect(subject.pendingCount).toBe(2);
    // The index by digest: now readable in production; the waiting children are explained.
    lookup.pushed.set(INDEX, { mediaType: INDEX_TYPE, children: [CHILD_A, CHILD_B] });
    subject.receive([push({ digest: INDEX, mediaType: INDEX_TYPE })]);
    await subject.idle();
    expect(subject.pendingCount).toBe(0);
    // The signature manifest by digest, then its tag; then the image tag.
    const signatureTag = `sha256-${INDEX.slice(7)}.sig` as Tag;
    lookup.pushed.set(SIGNATURE, {
      mediaType: IMAGE_TYPE,
      children: [],
      shape: {
        mediaType: IMAGE_TYPE,
        configMediaType: "application/vnd.oci.image.config.v1+json",
        layerMediaTypes: ["application/vnd.dev.cosign.simplesigning.v1+json"],
      },
    });
    subject.receive([push({ digest: SIGNATURE })]);
    await subject.idle();
    subject.receive([
      push({ digest: SIGNATURE, tag: signatureTag }),
      push({ digest: INDEX, tag: "1.0" as Tag, mediaType: INDEX_TYPE }),
    ]);
    await subject.idle();
    const findings = store.query();
    // Oldest first: the index is decided first, the children it explains right after.
    expect(findings.map((finding) => [finding.rule, finding.digest]).reverse()).toEqual([
      ["promoted-digest", INDEX],
      ["child-of-promoted-index", CHILD_A],
      ["child-of-promoted-index", CHILD_B],
      ["attached-artifact-tag", SIGNATURE],
      ["tagged-after-push", SIGNATURE],
      ["promoted-tag", INDEX],
    ]);
    expect(findings.every((finding) => finding.verdict === "verified")).toBe(true);
    expect(findings.find((finding) => finding.digest === CHILD_A)?.parent).toBe(INDEX);
    expect(alerts.texts).toEqual([]);
    expect(metrics.events.get("ignored")).toBe(1);
  });

  it("reports a hand-pushed index once, with its children recorded under it", async () => {
    const subject = auditor();
    lookup.pushed.set(ROGUE_CHILD, { mediaType: IMAGE_TYPE, children: [] });
    subject.receive([push({ digest: ROGUE_CHILD })]);
    await subject.idle();
    subject.receive([
      push({
        digest: ROGUE_INDEX,
        tag: "hand" as Tag,
        mediaType: INDEX_TYPE,
        references: [{ digest: ROGUE_CHILD, mediaType: IMAGE_TYPE }],
      }),
    ]);
    await subject.idle();
    const findings = store.query();
    expect(findings.map((finding) => [finding.verdict, finding.rule, finding.alert])).toEqual([
      ["violation", "child-of-unexpected-index", "none"],
      ["violation", "unexpected-tag", "sent"],
    ]);
    expect(alerts.texts).toHaveLength(1);
    expect(alerts.texts[0]).toContain("reg.example/prod/app:hand@");
    expect(logger.lines.filter((line) => line.message === "audit violation")).toHaveLength(2);
  });

  it("calls an unexplained tagless push a violation when its grace period ends", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const subject = auditor({ graceMs: 1000 });
    subject.receive([push({ digest: STRANGER })]);
    await sweepOnce(subject);
    expect(store.query()).toEqual([]);
    expect(subject.pendingCount).toBe(1);
    clock += 1000;
    await sweepOnce(subject);
    const [finding] = store.query();
    expect(finding).toMatchObject({ verdict: "violation", rule: "unexpected-digest", digest: STRANGER });
    expect(alerts.texts).toHaveLength(1);
  });

  it("records a redelivered event once, also after a restart, and resumes pending events", async () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval"] });
    const first = auditor({ graceMs: 1000 });
    const tagged = push({ digest: STRANGER, tag: "extra" as Tag });
    const tagless = push({ digest: ROGUE_CHILD });
    expect(first.receive([tagged, tagless])).toEqual({ accepted: 2, duplicates: 0, ignored: 0 });
    expect(first.receive([tagged])).toEqual({ accepted: 0, duplicates: 1, ignored: 0 });
    await first.close();
    expect(store.query()).toHaveLength(1);

    const second = auditor({ graceMs: 1000 });
    expect(second.pendingCount).toBe(1);
    expect(second.receive([tagged, tagless])).toEqual({ accepted: 0, duplicates: 2, ignored: 0 });
    clock += 1000;
    await sweepOnce(second);
    expect(store.query().map((finding) => finding.rule)).toEqual(["unexpected-digest", "unexpected-tag"]);
    expect(metrics.events.get("duplicate")).toBe(3);
  });

  it("judges pending events again when the manifests change", async () => {
    const subject = auditor();
    subject.receive([push({ digest: STRANGER })]);
    await subject.idle();
    expect(subject.pendingCount).toBe(1);
    subject.setDesiredState(appDesiredState({ [STRANGER]: [] }));
    await subject.idle();
    expect(store.query()[0]).toMatchObject({ verdict: "verified", rule: "promoted-digest" });
  });

  it("re-sends alerts a stopped process could not deliver", async () => {
    const first = auditor();
    const silent = new RecordingAlerts();
    silent.send = (text) => {
      silent.texts.push(text); // Never reports a result: the process "stopped".
    };
    const withSilentAlerts = new Auditor(desiredState(), {
      store,
      lookup,
      logger,
      alerts: silent,
      now: () => clock,
    });
    withSilentAlerts.receive([push({ digest: STRANGER, tag: "x" as Tag })]);
    await withSilentAlerts.idle();
    expect(store.query()[0]?.alert).toBe("pending");
    await first.close();
    const restarted = auditor();
    await restarted.idle();
    expect(alerts.texts).toHaveLength(1);
    expect(store.query()[0]?.alert).toBe("sent");
  });
});
