import { createHash } from "node:crypto";
import { mkdtemp, readdir, realpath, rm, stat } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { describeError, PromoterError } from "../errors.js";
import { escapeExcerpt } from "../excerpt.js";
import type { Logger } from "../log.js";
import { formatPosition, type Finding, type ManifestSet } from "../manifest/index.js";
import { loadManifests, loadRegistryPolicy } from "../manifest-files/index.js";
import { buildDesiredState, type DesiredState } from "./desired-state.js";
import { GitCheckout, redactGitUrl } from "./git-checkout.js";
import {
  commitLabel,
  DEFAULT_REVISION_WINDOW_MS,
  RevisionHistory,
  type CheckRecord,
  type ManifestHistory,
  type ManifestRevision,
  type RevisionState,
} from "./revision-history.js";

/**
 * Where the auditor's manifests come from, and how it notices changes: a manifest file or a
 * thin-manifest tree (polled: a fingerprint of every file's path, size and modification time),
 * or a git repository it clones and fetches on the same interval. A change is loaded in full;
 * when the new manifests are broken the last good desired state stays in use.
 *
 * "Broken" means: loading failed (unreadable files, no manifests at all), or the load has error
 * findings that the last good load did not have. Errors already present at the first load do not
 * count (the registry.k8s.io tree carries one invalid digest; its entry is left out and the rest
 * is used, as `promoter promote` does), but a change that adds one is refused: a half-parsed
 * manifest would turn every push of the images it lost into a violation.
 *
 * The watcher is also the auditor's `ManifestHistory` (docs/auditor.md, "Timing"): before an
 * event is declared a violation the auditor asks for a check now (`requestCheck`: concurrent
 * requests share one, and checks start at least `MIN_CHECK_INTERVAL_MS` apart, so events cannot
 * make it fetch in a loop), and judges the event against every revision that was on the branch
 * around its arrival (`statesAround`), loading a past commit's manifests from the clone when
 * needed. A failed check is tried again sooner than the interval.
 */

export type ManifestOrigin =
  | { readonly kind: "manifest"; readonly file: string }
  | { readonly kind: "thin-manifest-dir"; readonly directory: string }
  | { readonly kind: "git"; readonly url: string; readonly branch?: string; readonly path?: string };

export const DEFAULT_RELOAD_INTERVAL_MS = 30_000;
/** Files fingerprinted in a thin tree at most: a bigger tree is refused rather than polled. */
export const MAX_FINGERPRINT_FILES = 100_000;
/** Consecutive failed checks (git fetch, unreadable tree) before an alert is raised. */
export const FAILED_CHECKS_BEFORE_ALERT = 3;
/** Checks (polled or asked for) start at least this far apart, or the interval when shorter. */
export const MIN_CHECK_INTERVAL_MS = 5_000;
/** After a failed check the next comes this much later, doubling per failure up to the interval. */
export const CHECK_RETRY_BASE_MS = 5_000;

export class ManifestReloadError extends PromoterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("audit-manifest-reload", message, options);
  }
}

export interface LoadedState {
  readonly state: DesiredState;
  /** A fingerprint (files) or commit (git) of what was loaded. */
  readonly version: string;
  /** The revision loaded, and when it reached the branch. */
  readonly revision: ManifestRevision;
  /** Error findings of the load (known and tolerated). */
  readonly errors: readonly Finding[];
  readonly warnings: number;
}

export interface ManifestWatcherOptions {
  readonly origin: ManifestOrigin;
  readonly cwd: string;
  readonly logger: Logger;
  readonly intervalMs?: number;
  /** A new good state was loaded. */
  readonly onState: (loaded: LoadedState) => void;
  /** A change could not be used, or checks keep failing; the last good state stays. */
  readonly onBroken: (message: string, details: Readonly<Record<string, unknown>>) => void;
  /** Every check, after its outcome is known (and after `onState` when it loaded a revision). */
  readonly onChecked?: (outcome: CheckOutcome) => void;
  /** How long after it was replaced a revision still explains events (default one hour). */
  readonly revisionWindowMs?: number;
  /** Epoch milliseconds; tests pass their own clock. */
  readonly now?: () => number;
  /**
   * Apply the registry policy (docs/manifest-format.md, "Registry policy") to every revision
   * loaded, with these operator exceptions (`--allow-registry` values, relative to `cwd`): a
   * registry the policy refuses is left out of the desired state, so it is never read. Default:
   * no policy.
   */
  readonly allowRegistry?: readonly string[];
}

export interface CheckOutcome {
  /** Epoch milliseconds at which the check started. */
  readonly startedAt: number;
  /** unchanged or reloaded: the state is current; broken: the new revision could not be used; failed: the check itself failed. */
  readonly result: "unchanged" | "reloaded" | "broken" | "failed";
  /** Why it failed. */
  readonly error?: string;
  /** The branch moved (new revisions may explain events judged before). */
  readonly historyChanged: boolean;
}

/** Whether `candidate` is `folder` or below it (both absolute and normalised). */
function isWithin(folder: string, candidate: string): boolean {
  return candidate === folder || candidate.startsWith(`${folder}${path.sep}`);
}

function findingKey(finding: Finding): string {
  // Not the line: an unrelated edit above an old error moves it.
  return `${finding.rule}\u0000${finding.position.file}\u0000${finding.message}`;
}

function describeFinding(finding: Finding): string {
  return `${formatPosition(finding.position)}: ${finding.rule}: ${finding.message}`;
}

/** A fingerprint of the files, and the newest modification time among them (epoch ms). */
async function fingerprintFiles(
  root: string,
  signal?: AbortSignal,
): Promise<{ fingerprint: string; newestChange: number }> {
  const hash = createHash("sha256");
  const info = await stat(root);
  if (!info.isDirectory()) {
    hash.update(`${root}\u0000${info.size}\u0000${info.mtimeMs}\u0000${info.ino}`);
    return { fingerprint: hash.digest("hex"), newestChange: info.mtimeMs };
  }
  let newestChange = 0;
  const entries: string[] = [];
  const walk = async (directory: string): Promise<void> => {
    if (signal?.aborted) throw new ManifestReloadError("aborted");
    const children = await readdir(directory, { withFileTypes: true });
    for (const child of children) {
      if (child.name === ".git") continue;
      const full = path.join(directory, child.name);
      if (child.isDirectory()) {
        await walk(full);
      } else if (child.isFile() || child.isSymbolicLink()) {
        const childInfo = await stat(full).catch(() => undefined);
        if (!childInfo) continue;
        newestChange = Math.max(newestChange, childInfo.mtimeMs);
        entries.push(
          `${path.relative(root, full)}\u0000${childInfo.size}\u0000${childInfo.mtimeMs}\u0000${childInfo.ino}`,
        );
        if (entries.length > MAX_FINGERPRINT_FILES) {
          throw new ManifestReloadError(`${root} has more than ${MAX_FINGERPRINT_FILES} files`);
        }
      }
    }
  };
  await walk(root);
  entries.sort();
  for (const entry of entries) hash.update(`${entry}\n`);
  return { fingerprint: hash.digest("hex"), newestChange };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/** What the current files or commit are. */
interface CurrentVersion {
  readonly version: string;
  readonly revision: ManifestRevision;
}

export class ManifestWatcher implements ManifestHistory {
  private readonly origin: ManifestOrigin;
  private readonly cwd: string;
  private readonly logger: Logger;
  private readonly intervalMs: number;
  private readonly minCheckIntervalMs: number;
  private readonly onState: ManifestWatcherOptions["onState"];
  private readonly onBroken: ManifestWatcherOptions["onBroken"];
  private readonly onChecked: (outcome: CheckOutcome) => void;
  private readonly now: () => number;
  private readonly allowRegistry: readonly string[] | undefined;
  private readonly history: RevisionHistory;
  private failures = 0;
  private readonly controller = new AbortController();
  private git: GitCheckout | undefined;
  private gitDirectory: string | undefined;
  private version: string | undefined;
  private brokenVersion: string | undefined;
  private knownErrors = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  /** The last check that finished (or fetched, for one still loading). */
  private lastCheckRecord: CheckRecord | undefined;
  private lastCheckStart = Number.NEGATIVE_INFINITY;
  /** The check waiting to start: requests made meanwhile share it. */
  private queued: Promise<void> | undefined;
  /** The check running. */
  private running: Promise<void> | undefined;

  constructor(options: ManifestWatcherOptions) {
    this.origin = options.origin;
    this.cwd = options.cwd;
    this.logger = options.logger;
    this.intervalMs = options.intervalMs ?? DEFAULT_RELOAD_INTERVAL_MS;
    this.minCheckIntervalMs = Math.min(MIN_CHECK_INTERVAL_MS, this.intervalMs);
    this.onState = options.onState;
    this.onBroken = options.onBroken;
    this.allowRegistry = options.allowRegistry;
    this.onChecked =
      options.onChecked ??
      (() => {
        // Nothing to record.
      });
    this.now = options.now ?? Date.now;
    this.history = new RevisionHistory(options.revisionWindowMs ?? DEFAULT_REVISION_WINDOW_MS);
  }

  /** What is watched, for logs (credentials in a git URL removed). */
  describe(): string {
    switch (this.origin.kind) {
      case "manifest":
        return `manifest ${this.origin.file}`;
      case "thin-manifest-dir":
        return `thin-manifest directory ${this.origin.directory}`;
      case "git":
        return `git ${redactGitUrl(this.origin.url)}${this.origin.branch === undefined ? "" : ` branch ${this.origin.branch}`}${this.origin.path === undefined ? "" : ` path ${this.origin.path}`}`;
    }
  }

  /** First load (clone included); throws when the manifests cannot be used at all. */
  async loadInitial(signal?: AbortSignal): Promise<LoadedState> {
    const combined = signal ? AbortSignal.any([signal, this.controller.signal]) : this.controller.signal;
    if (this.origin.kind === "git") {
      this.gitDirectory = await mkdtemp(path.join(os.tmpdir(), "promoter-audit-git-"));
      this.git = new GitCheckout({
        url: this.origin.url,
        ...(this.origin.branch === undefined ? {} : { branch: this.origin.branch }),
        directory: path.join(this.gitDirectory, "checkout"),
      });
      await this.git.clone(combined);
      this.history.observeChain(await this.git.firstParentChain(combined), this.now());
    }
    const loaded = await this.load(combined);
    this.accept(loaded);
    return loaded;
  }

  /** Polls for changes every interval until `close()`. */
  start(): void {
    this.polling = true;
    this.schedule(this.intervalMs);
  }

  /** The last check that finished: when it started and, when it failed, why. */
  lastCheck(): CheckRecord | undefined {
    return this.lastCheckRecord;
  }

  /**
   * Asks for a check that starts now or later: one waiting to start is shared, and a check starts
   * no sooner than `MIN_CHECK_INTERVAL_MS` after the one before. Resolves once it has finished;
   * never rejects (a failure is in `lastCheck()` and `onChecked`).
   */
  requestCheck(): Promise<void> {
    if (this.controller.signal.aborted) return Promise.resolve();
    this.queued ??= this.startWhenAllowed();
    return this.queued;
  }

  /**
   * The revisions that were on the branch at some moment of [at - window, at + tolerance], with
   * their desired states, newest first (revision-history.ts).
   */
  statesAround(at: number): Promise<RevisionState[]> {
    return this.history.statesAround(
      at,
      (revision) => this.loadRevision(revision),
      (revision, error) => {
        this.logger.log(
          "warn",
          "cannot load a past revision of the manifests; events are not judged against it",
          {
            revision: revision.label,
            error: describeError(error),
          },
        );
      },
    );
  }

  private schedule(delayMs: number): void {
    if (!this.polling || this.controller.signal.aborted) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.requestCheck();
    }, delayMs);
    this.timer.unref();
  }

  private async startWhenAllowed(): Promise<void> {
    await this.running;
    const wait = this.lastCheckStart + this.minCheckIntervalMs - this.now();
    if (wait > 0) await sleep(wait, this.controller.signal);
    this.queued = undefined;
    if (this.controller.signal.aborted) return;
    this.running = this.runCheck();
    await this.running;
    this.running = undefined;
  }

  /** One check, with the bookkeeping: failures counted and alerted, `onChecked`, the next poll. */
  private async runCheck(): Promise<void> {
    const startedAt = this.now();
    this.lastCheckStart = startedAt;
    const newestBefore = this.history.newest?.id;
    let outcome: CheckOutcome;
    try {
      const result = await this.check();
      this.failures = 0;
      outcome = { startedAt, result, historyChanged: this.history.newest?.id !== newestBefore };
    } catch (error) {
      this.failures += 1;
      const details = { source: this.describe(), error: describeError(error), failures: this.failures };
      // One alert when checks keep failing (a fetch that fails once is noise); logs every time.
      if (this.failures === FAILED_CHECKS_BEFORE_ALERT) {
        this.onBroken("manifest checks keep failing; the desired state may be stale", details);
      } else {
        this.logger.log("warn", "manifest check failed", details);
      }
      outcome = { startedAt, result: "failed", error: describeError(error), historyChanged: false };
    }
    this.history.release(this.now());
    if (this.controller.signal.aborted) return;
    this.onChecked(outcome);
    const retry = Math.min(this.intervalMs, CHECK_RETRY_BASE_MS * 2 ** Math.max(0, this.failures - 1));
    this.schedule(this.failures > 0 ? retry : this.intervalMs);
  }

  /**
   * Checks once for a change and loads it (what `requestCheck` runs, without its bookkeeping).
   * The check counts as done for `lastCheck()` once the branch is fetched (or the files read),
   * before `onState` announces a new state.
   */
  async check(): Promise<"unchanged" | "reloaded" | "broken"> {
    const signal = this.controller.signal;
    const startedAt = this.now();
    let current: CurrentVersion;
    try {
      if (this.git) {
        const { changed, commit } = await this.git.update(signal);
        if (changed) this.logger.log("info", "manifest repository changed", { commit });
        this.history.observeChain(await this.git.firstParentChain(signal), this.now(), startedAt);
      }
      current = await this.currentVersion(signal);
    } catch (error) {
      const lastSuccessStartedAt = this.lastCheckRecord?.lastSuccessStartedAt;
      this.lastCheckRecord = {
        startedAt,
        error: describeError(error),
        ...(lastSuccessStartedAt === undefined ? {} : { lastSuccessStartedAt }),
      };
      throw error;
    }
    this.lastCheckRecord = { startedAt, lastSuccessStartedAt: startedAt };
    const { version } = current;
    if (version === this.version) return "unchanged";
    // Still the broken change: alerted once already; the state stays stale until it is fixed.
    if (version === this.brokenVersion) return "broken";
    let loaded: LoadedState;
    try {
      loaded = await this.load(signal, current);
    } catch (error) {
      this.brokenVersion = version;
      this.onBroken("manifest reload failed; keeping the last good manifests", {
        source: this.describe(),
        error: describeError(error),
      });
      return "broken";
    }
    const added = loaded.errors.filter((finding) => !this.knownErrors.has(findingKey(finding)));
    if (added.length > 0) {
      this.brokenVersion = version;
      this.onBroken("manifest change has new errors; keeping the last good manifests", {
        source: this.describe(),
        error: added.slice(0, 5).map(describeFinding).join("; "),
        errors: added.length,
      });
      return "broken";
    }
    this.accept(loaded);
    return "reloaded";
  }

  async close(): Promise<void> {
    this.controller.abort();
    if (this.timer) clearTimeout(this.timer);
    await this.queued;
    await this.running;
    if (this.gitDirectory) await rm(this.gitDirectory, { recursive: true, force: true });
  }

  private accept(loaded: LoadedState): void {
    if (this.git) this.history.remember(loaded.revision.id, loaded.state);
    else this.history.observeLoaded(loaded.revision, loaded.state);
    this.version = loaded.version;
    this.brokenVersion = undefined;
    this.knownErrors = new Set(loaded.errors.map(findingKey));
    for (const finding of loaded.errors) {
      this.logger.log("warn", "manifest error: the entry is left out", { finding: describeFinding(finding) });
    }
    this.onState(loaded);
  }

  /**
   * The file or directory the manifests are read from; for git, in `checkout` (the clone's work
   * tree, or the folder a past commit was written to).
   */
  private async target(
    checkout = this.git?.directory ?? "",
  ): Promise<{ manifest: string } | { thinManifestDir: string }> {
    switch (this.origin.kind) {
      case "manifest":
        return { manifest: path.resolve(this.cwd, this.origin.file) };
      case "thin-manifest-dir":
        return { thinManifestDir: path.resolve(this.cwd, this.origin.directory) };
      case "git": {
        const relative = this.origin.path ?? ".";
        const inside = path.resolve(checkout, relative);
        const leaves = (): never => {
          throw new ManifestReloadError(`--path ${escapeExcerpt(relative)} leaves the repository`);
        };
        if (!isWithin(checkout, inside)) leaves();
        // The repository's content may make the path a link: the tree must stay in the checkout.
        const [realCheckout, realInside] = await Promise.all([realpath(checkout), realpath(inside)]).catch(
          (error: unknown) => {
            throw new ManifestReloadError(`--path ${escapeExcerpt(relative)}: ${describeError(error)}`);
          },
        );
        if (!isWithin(realCheckout, realInside)) leaves();
        const info = await stat(realInside).catch((error: unknown) => {
          throw new ManifestReloadError(`--path ${escapeExcerpt(relative)}: ${describeError(error)}`);
        });
        return info.isDirectory() ? { thinManifestDir: inside } : { manifest: inside };
      }
    }
  }

  private async currentVersion(signal: AbortSignal): Promise<CurrentVersion> {
    const target = await this.target();
    const root = "manifest" in target ? target.manifest : target.thinManifestDir;
    const files = await fingerprintFiles(root, signal);
    if (this.git) {
      const commit = await this.git.commit(signal);
      const revision = this.history.revision(commit) ?? {
        id: commit,
        label: commitLabel(commit),
        since: this.now(),
      };
      return { version: `${commit}:${files.fingerprint}`, revision };
    }
    // A file changed no later than it was modified (the writer's clock is this machine's).
    const since = Math.min(files.newestChange, this.now());
    return {
      version: files.fingerprint,
      revision: {
        id: files.fingerprint,
        label: `the manifest files as of ${new Date(since).toISOString()}`,
        since,
      },
    };
  }

  private async load(signal: AbortSignal, known?: CurrentVersion): Promise<LoadedState> {
    const current = known ?? (await this.currentVersion(signal));
    const target = await this.target();
    const { state, errors, warnings } = await this.loadFrom(target, signal);
    return { state, version: current.version, revision: current.revision, errors, warnings };
  }

  private async loadFrom(
    target: { manifest: string } | { thinManifestDir: string },
    signal: AbortSignal,
  ): Promise<Pick<LoadedState, "state" | "errors" | "warnings">> {
    // The policy of the tree being loaded: its own allow-list, and oci: layouts inside it.
    const registryPolicy =
      this.allowRegistry === undefined
        ? undefined
        : await loadRegistryPolicy(target, { cwd: this.cwd, signal, allowRegistry: this.allowRegistry });
    const set: ManifestSet = await loadManifests(target, {
      signal,
      cwd: this.cwd,
      ...(registryPolicy ? { registryPolicy } : {}),
    });
    const errors = set.findings.filter((finding) => finding.severity === "error");
    const warnings = set.findings.length - errors.length;
    return { state: buildDesiredState(set), errors, warnings };
  }

  /**
   * The desired state of a past commit of the branch, written into a folder of its own. Its
   * error findings leave their entries out, as `promote` does: a promotion from that commit
   * promoted the rest.
   */
  private async loadRevision(revision: ManifestRevision): Promise<DesiredState> {
    if (!this.git || this.gitDirectory === undefined) {
      throw new ManifestReloadError(`${revision.label} is no longer available`);
    }
    const signal = this.controller.signal;
    const folder = path.join(this.gitDirectory, "revision");
    await this.git.materialize(revision.id, folder, signal);
    const { state } = await this.loadFrom(await this.target(folder), signal);
    return state;
  }
}
