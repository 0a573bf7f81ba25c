import { describeError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Digest, RegistryHost } from "../reference/index.js";
import { violationAlertText, type AlertSink } from "./alert.js";
import { ignoredReason, type Judgement, type ManifestFacts } from "./decide.js";
import { repositoryStanding, type DesiredRepository, type DesiredState } from "./desired-state.js";
import { eventRepositoryKey, indexChildrenOf, type RegistryEvent } from "./event.js";
import type { AuditFinding, FindingStore, PendingEvent } from "./finding-store.js";
import type { AuditMetrics } from "./metrics.js";
import { judgeEvent, type ManifestLookup } from "./observe.js";
import {
  DEFAULT_REVISION_WINDOW_MS,
  MERGE_CLOCK_TOLERANCE_MS,
  type ManifestHistory,
  type ManifestRevision,
  type RevisionState,
} from "./revision-history.js";

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
 *
 * Timing (docs/auditor.md, "Timing: a promotion right after its merge"): the manifests the
 * auditor holds may be older than the merge a promotion runs from. So an event is judged against
 * the manifests as they were on the branch when it arrived: the current revision, unless it
 * reached the branch after the event, and every revision replaced within the window before
 * (a promotion may run from a merge just superseded). Before an event is declared a violation,
 * the manifests are checked (git fetched) once more after its arrival: the event waits, pending,
 * for that check (shared by every event waiting, rate-limited by the watcher), then is judged
 * again. A revision that reached the branch after the event never explains it: a push made
 * before its merge stays a violation. When the check fails the violation is declared with what
 * is known, and when the branch moves later, recent violations are judged again: one that a
 * revision on the branch at its arrival explains is retracted, in the store and by an alert.
 */

/** How long an unexplained tagless manifest push waits for its index or tag. */
export const DEFAULT_PENDING_GRACE_MS = 5 * 60_000;
const DEFAULT_SWEEP_INTERVAL_MS = 1000;
/**
 * How long a would-be violation waits for a check of the manifests that started after its
 * arrival, counted from when it was found to be one (its arrival for a tag push, the end of its
 * grace period for a push by digest); past it, it is declared with what is known (and may be
 * retracted later).
 */
export const MAX_CHECK_WAIT_MS = 60_000;
/** Violations judged again at most when the branch moves (the newest first). */
export const MAX_REVIEWED_VIOLATIONS = 1000;

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
  /**
   * Where the manifests come from: checked again before a violation is declared, and its recent
   * revisions judged against. Without it every event is judged against `state` alone.
   */
  readonly history?: ManifestHistory;
  /** The revision `state` was loaded from (when it reached the branch). */
  readonly revision?: ManifestRevision;
  /** Violations received within this are judged again when the branch moves (default one hour). */
  readonly revisionWindowMs?: number;
  readonly maxCheckWaitMs?: number;
}

export interface ReceiveResult {
  /** New events taken for judgement. */
  readonly accepted: number;
  /** Events seen before (a redelivery): not recorded again. */
  readonly duplicates: number;
  /** Pulls, blobs and events outside production: not recorded. */
  readonly ignored: number;
}

type DecidedJudgement = Extract<Judgement, { kind: "decided" }>;

function isViolation(judgement: Judgement | undefined): judgement is DecidedJudgement {
  return judgement?.kind === "decided" && judgement.verdict === "violation";
}

function isVerified(judgement: Judgement | undefined): judgement is DecidedJudgement {
  return judgement?.kind === "decided" && judgement.verdict === "verified";
}

function withNote(judgement: DecidedJudgement, note: string): DecidedJudgement {
  return { ...judgement, reason: `${judgement.reason} (${note})` };
}

/** Names the past revision that explained an event. */
function explainedBy(judgement: DecidedJudgement, past: RevisionState): DecidedJudgement {
  const until =
    past.until === undefined ? "" : `, replaced on the branch at ${new Date(past.until).toISOString()}`;
  return withNote(judgement, `by the manifests of ${past.revision.label}${until}`);
}

/**
 * Whether some revision of the manifests could explain the event: a delete never is, nor an event
 * nothing attributes to a registry.
 */
function manifestsCanExplain(event: RegistryEvent): boolean {
  return event.action !== "delete" && event.attribution !== "none";
}

/** `repository:tag@digest` of a finding, for alerts. */
function alertTarget(finding: AuditFinding): string {
  return `${finding.repository}${finding.tag === null ? "" : `:${finding.tag}`}${finding.digest === null ? "" : `@${finding.digest}`}`;
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
  private revision: ManifestRevision | undefined;
  private readonly history: ManifestHistory | undefined;
  private readonly windowMs: number;
  private readonly maxCheckWaitMs: number;
  /**
   * Would-be violations waiting for a check of the manifests after their arrival, and since when
   * (epoch ms): without a check that started after it arrived, nothing bounds when a merge
   * dated before the event reached the branch, so a violation declared without one could be
   * retracted by a merge made later.
   */
  private readonly awaitingCheck = new Map<string, number>();
  /**
   * Violations declared without a successful check of the manifests after their arrival: the only
   * ones a later check may retract. One that a check after its arrival confirmed is final: the
   * branch it fetched held every revision that was there when the event arrived, and none
   * explained it (a merge that comes later never does, whatever date it carries).
   */
  private readonly unconfirmed = new Set<string>();
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
    this.history = options.history;
    this.revision = options.revision;
    this.windowMs = options.revisionWindowMs ?? DEFAULT_REVISION_WINDOW_MS;
    this.maxCheckWaitMs = options.maxCheckWaitMs ?? MAX_CHECK_WAIT_MS;
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
      for (const finding of this.store.undeliveredRetractionAlerts()) this.sendRetractionAlert(finding);
    }
    // Violations decided before a restart with stale manifests: the first load may explain them.
    if (this.history) this.enqueue(() => this.reviewRecentViolations());
    this.sweepTimer = setInterval(() => {
      this.sweep();
    }, this.sweepIntervalMs);
    this.sweepTimer.unref();
  }

  /** Swaps in a new desired state (of `revision`); pending events are judged again against it. */
  setDesiredState(state: DesiredState, revision?: ManifestRevision): void {
    this.state = state;
    this.revision = revision;
    if (this.pending.size > 0) this.enqueue(() => this.rejudge([...this.pending.keys()]));
  }

  /**
   * A check of the manifests finished (the watcher's `onChecked`): would-be violations waiting
   * for it are judged again, and when the branch moved, recent violations are reviewed.
   */
  manifestsChecked(outcome: { readonly historyChanged: boolean }): void {
    if (this.closed) return;
    if (this.awaitingCheck.size > 0) this.enqueue(() => this.rejudge([...this.awaitingCheck.keys()]));
    if (outcome.historyChanged) this.enqueue(() => this.reviewRecentViolations());
    // Violations declared while the manifests could not be refreshed are final once a check that
    // started after their arrival succeeded (and, when it moved the branch, the review above
    // kept them): as for those confirmed at once, every merge after that check is dated after
    // it. Left open, they could be retracted by a merge made later whose date nothing bounds (the
    // first fetch after a restart has no earlier one to bound it).
    const check = this.history?.lastCheck();
    if (check !== undefined && check.error === undefined && check.lastSuccessStartedAt !== undefined) {
      const confirmedBefore = new Date(check.lastSuccessStartedAt).toISOString();
      this.enqueue(() => {
        const settled = this.store.settleViolations(confirmedBefore);
        if (settled > 0)
          this.logger.log("info", "violations confirmed by a check of the manifests", { settled });
        return Promise.resolve();
      });
    }
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
    this.awaitingCheck.delete(eventId);
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

  /**
   * Whether a pending event is due: it waited for a check too long, or, waiting for none, its
   * grace period is over. One waiting for a check is judged again when a check finishes
   * (`manifestsChecked`), not at every sweep: many of them while git is slow must not keep the
   * auditor judging in a loop.
   */
  private isDue(entry: PendingEvent, now: number): boolean {
    const waitingSince = this.awaitingCheck.get(entry.event.id);
    if (waitingSince !== undefined) return waitingSince + this.maxCheckWaitMs <= now;
    return Date.parse(entry.deadline) <= now;
  }

  private sweep(): void {
    if (this.closed || this.sweepQueued || this.pending.size === 0) return;
    const now = this.now();
    if (![...this.pending.values()].some((entry) => this.isDue(entry, now))) return;
    this.sweepQueued = true;
    this.enqueue(async () => {
      this.sweepQueued = false;
      const current = this.now();
      const due = [...this.pending.values()]
        .filter((entry) => this.isDue(entry, current))
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
      return await this.judgeAtArrival(entry, final, false);
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

  /**
   * Judges an event against the manifests as they were when it arrived (see the top of this
   * file). `reviewing`: a recorded violation judged again after the branch moved, never held.
   */
  private async judgeAtArrival(entry: PendingEvent, final: boolean, reviewing: boolean): Promise<Judgement> {
    const event = entry.event;
    const at = Date.parse(entry.receivedAt);
    const history = this.history;
    const judgeCurrent = (): Promise<Judgement> => judgeEvent(event, this.state, this.lookup, { final });
    if (history === undefined || !manifestsCanExplain(event)) return judgeCurrent();
    // The current revision counts unless it reached the branch after the event arrived.
    const currentCounts = this.revision !== undefined && this.revision.since <= at + MERGE_CLOCK_TOLERANCE_MS;
    const current = currentCounts ? await judgeCurrent() : undefined;
    if (current !== undefined && (current.kind === "ignored" || isVerified(current))) return current;

    // The revisions on the branch around its arrival: replaced within the window, or newer than
    // the current state when the branch moved and the newest revision could not be loaded.
    let other: Judgement | undefined;
    let undetermined = current?.kind === "undetermined";
    for (const past of await history.statesAround(at)) {
      if (currentCounts && past.revision.id === this.revision?.id) continue;
      const judgement = await judgeEvent(event, past.state, this.lookup, { final });
      if (isVerified(judgement)) return explainedBy(judgement, past);
      if (judgement.kind === "undetermined") undetermined = true;
      other ??= judgement;
    }
    if (undetermined && !final) {
      return current?.kind === "undetermined"
        ? current
        : { kind: "undetermined", reason: "not explained yet by the manifests of its time" };
    }
    let judgement = current ?? other;
    if (judgement === undefined) {
      // No revision is known from its time (older than the history kept): the current one
      // judges, as it always did; a review never retracts on its word.
      judgement = await judgeCurrent();
      if (reviewing && isVerified(judgement))
        return { kind: "undetermined", reason: "no revision of its time" };
    }
    if (!isViolation(judgement) || reviewing) return judgement;
    if (!currentCounts && this.revision !== undefined && isVerified(await judgeCurrent())) {
      // Says why the manifests of today do not explain it (and shows a clock that is off).
      judgement = withNote(
        judgement,
        `${this.revision.label} asks for it, but reached the branch at ${new Date(this.revision.since).toISOString()}, after the event arrived`,
      );
    }

    // A violation, unless a check of the manifests after its arrival shows otherwise.
    const check = history.lastCheck();
    if (check?.lastSuccessStartedAt !== undefined && check.lastSuccessStartedAt > at) {
      this.awaitingCheck.delete(event.id);
      return judgement;
    }
    if (check !== undefined && check.startedAt > at && check.error !== undefined) {
      this.awaitingCheck.delete(event.id);
      this.unconfirmed.add(event.id);
      return withNote(
        judgement,
        `the manifests could not be refreshed before judging: ${check.error}; a later check may retract this`,
      );
    }
    const waitingSince = this.awaitingCheck.get(event.id) ?? this.now();
    if (this.now() < waitingSince + this.maxCheckWaitMs) {
      this.awaitingCheck.set(event.id, waitingSince);
      void history.requestCheck();
      return { kind: "undetermined", reason: "a violation unless a check of the manifests explains it" };
    }
    this.awaitingCheck.delete(event.id);
    this.unconfirmed.add(event.id);
    return withNote(
      judgement,
      `the manifests could not be refreshed within ${Math.round(this.maxCheckWaitMs / 1000)} s; a later check may retract this`,
    );
  }

  /**
   * Judges recent violations again after the branch moved: one that a revision on the branch at
   * its arrival explains is retracted (git could not be fetched when it was judged, or answered
   * late). Only revisions from before each event count, so a push made before the merge that
   * adds it is never retracted.
   */
  private async reviewRecentViolations(): Promise<void> {
    const since = new Date(this.now() - this.windowMs).toISOString();
    const candidates = this.store.violationsToReview(since, MAX_REVIEWED_VIOLATIONS);
    let retracted = 0;
    for (const { finding, event } of candidates) {
      if (!manifestsCanExplain(event)) continue;
      const entry: PendingEvent = { event, receivedAt: finding.receivedAt, deadline: finding.receivedAt };
      let judgement: Judgement;
      try {
        judgement = await this.judgeAtArrival(entry, true, true);
      } catch (error) {
        this.logger.log("warn", "could not judge a violation again", {
          eventId: event.id,
          error: describeError(error),
        });
        continue;
      }
      if (!isVerified(judgement)) continue;
      const corrected = this.store.retract(finding.seq, {
        rule: judgement.rule,
        reason: judgement.reason,
        parent: judgement.parent ?? null,
        subject: judgement.subject ?? null,
        at: new Date(this.now()).toISOString(),
        alert: this.alerts !== undefined && finding.alert !== "none" ? "pending" : "none",
      });
      if (!corrected) continue;
      retracted += 1;
      if (this.metrics) this.metrics.retractions += 1;
      this.logger.log("warn", "audit violation retracted", {
        verdict: corrected.verdict,
        rule: corrected.rule,
        reason: corrected.reason,
        retractedRule: corrected.retracted?.rule,
        retractedReason: corrected.retracted?.reason,
        repository: corrected.repository,
        digest: corrected.digest,
        tag: corrected.tag,
        eventId: corrected.eventId,
      });
      if (corrected.retractionAlert === "pending") this.sendRetractionAlert(corrected);
    }
    this.logger.log("info", "recent violations reviewed", { reviewed: candidates.length, retracted });
  }

  private async settle(
    entry: PendingEvent,
    judgement: Exclude<Judgement, { kind: "undetermined" }>,
  ): Promise<void> {
    const event = entry.event;
    this.untrack(event.id);
    const reviewable = this.unconfirmed.delete(event.id);
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
      reviewable,
    );
    if (finding?.verdict === "violation") {
      await this.settleChildrenOfViolation(event, finding, reviewable);
    }
  }

  /** `reviewable`: a violation a later check may retract (it keeps its event for that). */
  private recordFinding(
    entry: PendingEvent,
    judgement: Extract<Judgement, { kind: "decided" }>,
    alert: boolean,
    reviewable: boolean,
  ): AuditFinding | undefined {
    const event = entry.event;
    const finding = this.store.record(
      {
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
      },
      reviewable ? event : undefined,
    );
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
  private async settleChildrenOfViolation(
    event: RegistryEvent,
    finding: AuditFinding,
    reviewable: boolean,
  ): Promise<void> {
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
          reviewable,
        );
      }
    }
  }

  private sendAlert(finding: AuditFinding): void {
    if (!this.alerts) return;
    // A violation retracted before its alert went out is still alerted as it was, then retracted.
    const rule = finding.retracted?.rule ?? finding.rule;
    const reason = finding.retracted?.reason ?? finding.reason;
    const text = violationAlertText({
      rule,
      action: finding.action,
      target: alertTarget(finding),
      reason,
      eventId: finding.eventId,
      eventTime: finding.eventTime,
    });
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

  /** Says that a violation alerted before is retracted, and what explains the event. */
  private sendRetractionAlert(finding: AuditFinding): void {
    if (!this.alerts || !finding.retracted) return;
    const text =
      `promoter audit: retracted violation (${finding.retracted.rule}) ${finding.action} ${alertTarget(finding)}:` +
      ` now verified (${finding.rule}): ${finding.reason}` +
      ` [event ${finding.eventId}${finding.eventTime === null ? "" : ` at ${finding.eventTime}`}]`;
    this.alerts.send(text, (delivered) => {
      this.countAlert(delivered);
      try {
        this.store.setRetractionAlertState(finding.seq, delivered ? "sent" : "failed");
      } catch (error) {
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
