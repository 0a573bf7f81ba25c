import { describeError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Digest, RegistryHost } from "../reference/index.js";
import type { AlertSink } from "./alert.js";
import {
  ignoredReason,
  judgeEvent,
  type Judgement,
  type ManifestFacts,
  type ManifestLookup,
} from "./decide.js";
import { repositoryStanding, type DesiredRepository, type DesiredState } from "./desired-state.js";
import { eventRepositoryKey, indexChildrenOf, type RegistryEvent } from "./event.js";
import type { AuditFinding, FindingStore, PendingEvent } from "./finding-store.js";
import type { AuditMetrics } from "./metrics.js";

/**
 * The auditor's engine: takes normalised events, records each once, judges it against the
 * current desired state, stores the finding and raises alerts for violations.
 *
 * An accepted event is first written to the `pending_events` table (so the HTTP answer can be
 * given at once and nothing is lost if the process stops), then judged in the background, one
 * event at a time in arrival order. A tagless manifest push that nothing explains yet stays
 * pending (see decide.ts for why: a promotion pushes children before their index) and is judged
 * again after every later manifest event in the same repository, after a manifest reload, and
 * finally when its grace period is over.
 */

/** How long an unexplained tagless manifest push waits for its index or tag. */
export const DEFAULT_PENDING_GRACE_MS = 5 * 60_000;
const DEFAULT_SWEEP_INTERVAL_MS = 1000;

export interface AuditLookup extends ManifestLookup {
  /** An event pushed this digest: forget that it could not be read before. */
  forget?(digest: Digest): void;
  /** An index push told its children. */
  learn?(digest: Digest, facts: ManifestFacts): void;
}

export interface AuditorOptions {
  readonly store: FindingStore;
  readonly lookup: AuditLookup;
  readonly logger: Logger;
  readonly metrics?: AuditMetrics;
  readonly alerts?: AlertSink;
  /** Epoch milliseconds; tests pass their own clock. */
  readonly now?: () => number;
  readonly pendingGraceMs?: number;
  readonly sweepIntervalMs?: number;
}

export interface ReceiveResult {
  /** New events taken for judgement. */
  readonly accepted: number;
  /** Events seen before (a redelivery): not recorded again. */
  readonly duplicates: number;
  /** Pulls, blobs and events outside production: not recorded. */
  readonly ignored: number;
}

/** A repository the manifests do not promote into, for lookups about an unmanaged push. */
function unmanagedRepository(event: RegistryEvent): DesiredRepository {
  return {
    key: eventRepositoryKey(event),
    location: { kind: "remote", host: event.host as RegistryHost, repository: event.repository },
    digests: new Map(),
    tags: new Map(),
  };
}

export class Auditor {
  private state: DesiredState;
  private readonly store: FindingStore;
  private readonly lookup: AuditLookup;
  private readonly logger: Logger;
  private readonly metrics: AuditMetrics | undefined;
  private readonly alerts: AlertSink | undefined;
  private readonly now: () => number;
  private readonly graceMs: number;
  private readonly sweepIntervalMs: number;
  private readonly pending = new Map<string, PendingEvent>();
  private readonly pendingByRepository = new Map<string, Set<string>>();
  private chain: Promise<void> = Promise.resolve();
  private sweepTimer: NodeJS.Timeout | undefined;
  /** A sweep is queued and not started: the next tick does not queue another. */
  private sweepQueued = false;
  private closed = false;

  constructor(state: DesiredState, options: AuditorOptions) {
    this.state = state;
    this.store = options.store;
    this.lookup = options.lookup;
    this.logger = options.logger;
    this.metrics = options.metrics;
    this.alerts = options.alerts;
    this.now = options.now ?? Date.now;
    this.graceMs = options.pendingGraceMs ?? DEFAULT_PENDING_GRACE_MS;
    this.sweepIntervalMs = options.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS;
  }

  get desiredState(): DesiredState {
    return this.state;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /**
   * Resumes events left pending by an earlier run, re-sends alerts it could not deliver, and
   * starts the timer that judges pending events whose grace period is over.
   */
  start(): void {
    for (const entry of this.store.listPending()) this.track(entry);
    if (this.pending.size > 0) {
      this.logger.log("info", "resuming pending audit events", { count: this.pending.size });
      this.enqueue(() => this.rejudge([...this.pending.keys()]));
    }
    if (this.alerts) {
      for (const finding of this.store.undeliveredAlerts()) this.sendAlert(finding);
    }
    this.sweepTimer = setInterval(() => {
      this.sweep();
    }, this.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** Swaps in a new desired state; pending events are judged again against it. */
  setDesiredState(state: DesiredState): void {
    this.state = state;
    if (this.pending.size > 0) this.enqueue(() => this.rejudge([...this.pending.keys()]));
  }

  /**
   * Takes events for judgement. Synchronous up to the durable write, so once it returns the
   * events survive a restart; judging happens in the background (`idle()` waits for it).
   */
  receive(events: readonly RegistryEvent[]): ReceiveResult {
    let accepted = 0;
    let duplicates = 0;
    let ignored = 0;
    const receivedAt = new Date(this.now()).toISOString();
    const deadline = new Date(this.now() + this.graceMs).toISOString();
    const taken: string[] = [];
    for (const event of events) {
      const skip = this.quickIgnore(event);
      if (skip !== undefined) {
        ignored += 1;
        this.metrics?.countEvent("ignored");
        this.logger.log("debug", "audit event ignored", { eventId: event.id, reason: skip });
        continue;
      }
      if (this.pending.has(event.id) || this.store.hasEvent(event.id)) {
        duplicates += 1;
        this.metrics?.countEvent("duplicate");
        continue;
      }
      const entry: PendingEvent = { event, receivedAt, deadline };
      if (!this.store.addPending(entry)) {
        duplicates += 1;
        this.metrics?.countEvent("duplicate");
        continue;
      }
      this.track(entry);
      taken.push(event.id);
      accepted += 1;
    }
    if (taken.length > 0) this.enqueue(() => this.processArrivals(taken));
    return { accepted, duplicates, ignored };
  }

  /** Resolves when every event received so far has been judged (or left pending). */
  async idle(): Promise<void> {
    let current: Promise<void>;
    do {
      current = this.chain;
      await current;
    } while (current !== this.chain);
  }

  /** An operational alert (a manifest reload failed): a log line and the webhook. */
  raiseAlert(message: string, fields: Readonly<Record<string, unknown>> = {}): void {
    this.logger.log("error", message, { alert: true, ...fields });
    const detail = typeof fields.error === "string" ? `: ${fields.error}` : "";
    this.alerts?.send(`promoter audit: ${message}${detail}`, (delivered) => {
      this.countAlert(delivered);
    });
  }

  /** Stops the timer and waits for in-flight judgements; the store stays open for the caller. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    await this.idle();
  }

  /** Events that are not judged at all, decided without touching the store (the judge's own rule). */
  private quickIgnore(event: RegistryEvent): string | undefined {
    return ignoredReason(event, this.state);
  }

  private track(entry: PendingEvent): void {
    this.pending.set(entry.event.id, entry);
    const key = eventRepositoryKey(entry.event);
    let ids = this.pendingByRepository.get(key);
    if (!ids) {
      ids = new Set();
      this.pendingByRepository.set(key, ids);
    }
    ids.add(entry.event.id);
  }

  private untrack(eventId: string): void {
    const entry = this.pending.get(eventId);
    if (!entry) return;
    this.pending.delete(eventId);
    const key = eventRepositoryKey(entry.event);
    const ids = this.pendingByRepository.get(key);
    ids?.delete(eventId);
    if (ids?.size === 0) this.pendingByRepository.delete(key);
  }

  private enqueue(task: () => Promise<void>): void {
    this.chain = this.chain.then(task).catch((error: unknown) => {
      this.logger.log("error", "audit processing failed", { error: describeError(error) });
    });
  }

  private sweep(): void {
    if (this.closed || this.sweepQueued || this.pending.size === 0) return;
    const now = this.now();
    if (![...this.pending.values()].some((entry) => Date.parse(entry.deadline) <= now)) return;
    this.sweepQueued = true;
    this.enqueue(async () => {
      this.sweepQueued = false;
      const due = [...this.pending.values()]
        .filter((entry) => Date.parse(entry.deadline) <= this.now())
        .map((entry) => entry.event.id);
      await this.rejudge(due);
    });
  }

  private async processArrivals(ids: readonly string[]): Promise<void> {
    for (const id of ids) {
      const entry = this.pending.get(id);
      if (!entry) continue;
      const event = entry.event;
      if (event.digest !== undefined) {
        this.lookup.forget?.(event.digest);
        const children = indexChildrenOf(event);
        if (children && event.mediaType !== undefined) {
          this.lookup.learn?.(event.digest, { mediaType: event.mediaType, children });
        }
      }
      const judgement = await this.judge(entry);
      if (judgement.kind === "undetermined") continue;
      await this.settle(entry, judgement);
      // A decided manifest event may explain what waits in its repository (an index and its
      // children, a tag and its signature manifest).
      if (event.action !== "delete") {
        const waiting = [...(this.pendingByRepository.get(eventRepositoryKey(event)) ?? [])];
        if (waiting.length > 0) await this.rejudge(waiting.filter((other) => !ids.includes(other)));
      }
    }
  }

  /** Judges pending events again; those past their deadline for the last time. */
  private async rejudge(ids: readonly string[]): Promise<void> {
    for (const id of ids) {
      const entry = this.pending.get(id);
      if (!entry) continue;
      const judgement = await this.judge(entry);
      if (judgement.kind !== "undetermined") await this.settle(entry, judgement);
    }
  }

  private async judge(entry: PendingEvent): Promise<Judgement> {
    const final = Date.parse(entry.deadline) <= this.now();
    try {
      return await judgeEvent(entry.event, this.state, this.lookup, { final });
    } catch (error) {
      this.logger.log("error", "could not judge audit event", {
        eventId: entry.event.id,
        error: describeError(error),
      });
      if (!final) return { kind: "undetermined", reason: describeError(error) };
      return {
        kind: "decided",
        verdict: "violation",
        rule: "unjudgeable",
        reason: `could not be judged: ${describeError(error)}`,
      };
    }
  }

  private async settle(
    entry: PendingEvent,
    judgement: Exclude<Judgement, { kind: "undetermined" }>,
  ): Promise<void> {
    const event = entry.event;
    this.untrack(event.id);
    if (judgement.kind === "ignored") {
      // Accepted first, ignored on a closer look (the desired state changed meanwhile).
      this.store.removePending(event.id);
      this.metrics?.countEvent("ignored");
      return;
    }
    const finding = this.recordFinding(
      entry,
      judgement,
      this.alerts !== undefined && judgement.verdict === "violation",
    );
    if (finding?.verdict === "violation") await this.settleChildrenOfViolation(event, finding);
  }

  private recordFinding(
    entry: PendingEvent,
    judgement: Extract<Judgement, { kind: "decided" }>,
    alert: boolean,
  ): AuditFinding | undefined {
    const event = entry.event;
    const finding = this.store.record({
      eventId: event.id,
      verdict: judgement.verdict,
      rule: judgement.rule,
      action: event.action,
      repository: eventRepositoryKey(event),
      digest: event.digest ?? null,
      tag: event.tag ?? null,
      mediaType: event.mediaType ?? null,
      reason: judgement.reason,
      parent: judgement.parent ?? null,
      subject: judgement.subject ?? null,
      source: event.source,
      eventTime: event.timestamp ?? null,
      receivedAt: entry.receivedAt,
      decidedAt: new Date(this.now()).toISOString(),
      alert: alert ? "pending" : "none",
    });
    if (!finding) {
      this.metrics?.countEvent("duplicate");
      return undefined;
    }
    this.metrics?.countEvent(finding.verdict);
    const fields = {
      verdict: finding.verdict,
      rule: finding.rule,
      action: finding.action,
      repository: finding.repository,
      digest: finding.digest,
      tag: finding.tag,
      reason: finding.reason,
      parent: finding.parent,
      subject: finding.subject,
      eventId: finding.eventId,
      eventTime: finding.eventTime,
    };
    if (finding.verdict === "violation") {
      this.logger.log("error", "audit violation", fields);
      if (alert) this.sendAlert(finding);
    } else {
      this.logger.log("info", "audit verified", fields);
    }
    return finding;
  }

  /**
   * A hand-pushed index arrives after its children, which wait as pending; they are part of the
   * same violation. They are recorded now, naming the index, without an alert of their own.
   */
  private async settleChildrenOfViolation(event: RegistryEvent, finding: AuditFinding): Promise<void> {
    if (event.action === "delete" || event.digest === undefined) return;
    const waiting = this.pendingByRepository.get(eventRepositoryKey(event));
    if (!waiting || waiting.size === 0) return;
    const standing = repositoryStanding(this.state, event.host, event.repository);
    const repository = standing.kind === "managed" ? standing.repository : unmanagedRepository(event);
    const children =
      indexChildrenOf(event) ?? (await this.lookup.manifest(repository, event.digest))?.children ?? [];
    for (const child of children) {
      for (const id of [...waiting]) {
        const entry = this.pending.get(id);
        if (entry?.event.digest !== child || entry.event.tag !== undefined) continue;
        this.untrack(id);
        this.recordFinding(
          entry,
          {
            kind: "decided",
            verdict: "violation",
            rule: "child-of-unexpected-index",
            reason: `${child} is a child manifest of ${finding.repository}@${event.digest}, itself a violation (alerted with it)`,
            parent: event.digest,
          },
          false,
        );
      }
    }
  }

  private sendAlert(finding: AuditFinding): void {
    if (!this.alerts) return;
    const target = `${finding.repository}${finding.tag === null ? "" : `:${finding.tag}`}${finding.digest === null ? "" : `@${finding.digest}`}`;
    const text =
      `promoter audit: violation (${finding.rule}) ${finding.action} ${target}: ${finding.reason}` +
      ` [event ${finding.eventId}${finding.eventTime === null ? "" : ` at ${finding.eventTime}`}]`;
    this.alerts.send(text, (delivered) => {
      this.countAlert(delivered);
      try {
        this.store.setAlertState(finding.seq, delivered ? "sent" : "failed");
      } catch (error) {
        // The store may be closed when a late alert finishes during shutdown.
        this.logger.log("warn", "could not record alert state", { error: describeError(error) });
      }
    });
  }

  private countAlert(delivered: boolean): void {
    if (!this.metrics) return;
    if (delivered) this.metrics.alertsSent += 1;
    else this.metrics.alertFailures += 1;
  }
}
