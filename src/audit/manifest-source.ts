import { createHash } from "node:crypto";
import { mkdtemp, readdir, realpath, rm, stat } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { describeError, PromoterError } from "../errors.js";
import { escapeExcerpt } from "../excerpt.js";
import type { Logger } from "../log.js";
import { formatPosition, loadManifests, type Finding, type ManifestSet } from "../manifest/index.js";
import { buildDesiredState, type DesiredState } from "./desired-state.js";
import { GitCheckout, redactGitUrl } from "./git-checkout.js";

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

export class ManifestReloadError extends PromoterError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("audit-manifest-reload", message, options);
  }
}

export interface LoadedState {
  readonly state: DesiredState;
  /** A fingerprint (files) or commit (git) of what was loaded. */
  readonly version: string;
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
  /** A check confirmed the state is current (unchanged, or reloaded). */
  readonly onChecked?: () => void;
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

async function fingerprintFiles(root: string, signal?: AbortSignal): Promise<string> {
  const hash = createHash("sha256");
  const info = await stat(root);
  if (!info.isDirectory()) {
    hash.update(`${root}\u0000${info.size}\u0000${info.mtimeMs}\u0000${info.ino}`);
    return hash.digest("hex");
  }
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
  return hash.digest("hex");
}

export class ManifestWatcher {
  private readonly origin: ManifestOrigin;
  private readonly cwd: string;
  private readonly logger: Logger;
  private readonly intervalMs: number;
  private readonly onState: ManifestWatcherOptions["onState"];
  private readonly onBroken: ManifestWatcherOptions["onBroken"];
  private readonly onChecked: () => void;
  private failures = 0;
  private readonly controller = new AbortController();
  private git: GitCheckout | undefined;
  private gitDirectory: string | undefined;
  private version: string | undefined;
  private brokenVersion: string | undefined;
  private knownErrors = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;

  constructor(options: ManifestWatcherOptions) {
    this.origin = options.origin;
    this.cwd = options.cwd;
    this.logger = options.logger;
    this.intervalMs = options.intervalMs ?? DEFAULT_RELOAD_INTERVAL_MS;
    this.onState = options.onState;
    this.onBroken = options.onBroken;
    this.onChecked =
      options.onChecked ??
      (() => {
        // Nothing to record.
      });
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
    }
    const loaded = await this.load(combined);
    this.accept(loaded);
    return loaded;
  }

  /** Polls for changes every interval until `close()`. */
  start(): void {
    const tick = (): void => {
      this.polling = this.check()
        .then((result) => {
          this.failures = 0;
          if (result !== "broken") this.onChecked();
        })
        .catch((error: unknown) => {
          this.failures += 1;
          const details = { source: this.describe(), error: describeError(error), failures: this.failures };
          // One alert when checks keep failing (a fetch that fails once is noise); logs every time.
          if (this.failures === FAILED_CHECKS_BEFORE_ALERT) {
            this.onBroken("manifest checks keep failing; the desired state may be stale", details);
          } else {
            this.logger.log("warn", "manifest check failed", details);
          }
        })
        .finally(() => {
          this.polling = undefined;
          if (!this.controller.signal.aborted) {
            this.timer = setTimeout(tick, this.intervalMs);
            this.timer.unref();
          }
        });
    };
    this.timer = setTimeout(tick, this.intervalMs);
    this.timer.unref();
  }

  /** Checks once for a change and loads it (also what the timer does). */
  async check(): Promise<"unchanged" | "reloaded" | "broken"> {
    const signal = this.controller.signal;
    if (this.git) {
      const { changed, commit } = await this.git.update(signal);
      if (changed) this.logger.log("info", "manifest repository changed", { commit });
    }
    const version = await this.currentVersion(signal);
    if (version === this.version) return "unchanged";
    // Still the broken change: alerted once already; the state stays stale until it is fixed.
    if (version === this.brokenVersion) return "broken";
    let loaded: LoadedState;
    try {
      loaded = await this.load(signal, version);
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
    await this.polling;
    if (this.gitDirectory) await rm(this.gitDirectory, { recursive: true, force: true });
  }

  private accept(loaded: LoadedState): void {
    this.version = loaded.version;
    this.brokenVersion = undefined;
    this.knownErrors = new Set(loaded.errors.map(findingKey));
    for (const finding of loaded.errors) {
      this.logger.log("warn", "manifest error: the entry is left out", { finding: describeFinding(finding) });
    }
    this.onState(loaded);
  }

  /** The file or directory the manifests are read from. */
  private async target(): Promise<{ manifest: string } | { thinManifestDir: string }> {
    switch (this.origin.kind) {
      case "manifest":
        return { manifest: path.resolve(this.cwd, this.origin.file) };
      case "thin-manifest-dir":
        return { thinManifestDir: path.resolve(this.cwd, this.origin.directory) };
      case "git": {
        const checkout = this.git?.directory ?? "";
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

  private async currentVersion(signal: AbortSignal): Promise<string> {
    const target = await this.target();
    const root = "manifest" in target ? target.manifest : target.thinManifestDir;
    const files = await fingerprintFiles(root, signal);
    return this.git ? `${await this.git.commit(signal)}:${files}` : files;
  }

  private async load(signal: AbortSignal, knownVersion?: string): Promise<LoadedState> {
    const version = knownVersion ?? (await this.currentVersion(signal));
    const target = await this.target();
    const set: ManifestSet = await loadManifests(target, { signal, cwd: this.cwd });
    const errors = set.findings.filter((finding) => finding.severity === "error");
    const warnings = set.findings.length - errors.length;
    return { state: buildDesiredState(set), version, errors, warnings };
  }
}
