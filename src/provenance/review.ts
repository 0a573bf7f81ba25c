import { realpath } from "node:fs/promises";
import * as path from "node:path";
import { AbortedError, describeError } from "../errors.js";
import { escapeExcerpt } from "../excerpt.js";
import { replaceUnsafeCharacters } from "../output/encode.js";
import {
  approvalProblem,
  currentApprovals,
  DEFAULT_GITHUB_API_URL,
  GITHUB_TOKEN_VARIABLE,
  GitHubClient,
  isCommitSha,
  parseRepoName,
  pullRequestReviews,
  pullRequestsOfCommit,
  pullRequestUrl,
  type GitHubPullRequest,
  type RepoName,
} from "../github/index.js";
import { locateRepository, runGit, type GitRepository } from "../gitops/index.js";
import type { Logger } from "../log.js";
import type { SourcePosition } from "../manifest/index.js";
import type { Clock, Redactor, Transport } from "../registry/index.js";
import { addedInCommits, epochToRfc3339, type AddedInCommits } from "./added-in.js";
import { readGitHubEvent } from "./github-event.js";
import type { Approver, CommitRecord, PullRequestRecord, ReviewRecord } from "./promotion-record.js";
import {
  branchRef,
  parsePullNumber,
  parsePullRefs,
  publicRepositoryUrl,
  pullNumberFromSubject,
  recordText,
} from "./review-facts.js";

/**
 * The facts of the change a promotion runs for: which repository and commit the manifests come
 * from, and the pull request that changed them and who approved it, as the CI says. The sources,
 * in the order they are asked, are described in docs/signing.md "Where the review facts come
 * from". Missing facts never stop a promotion: each problem is one warning, and the record then
 * holds what is known (at least the manifest line; the commits when the manifests are in git).
 */

export interface ReviewContextOptions {
  /** A folder holding the manifests (the thin tree, or the folder of the manifest file). */
  readonly manifestDir: string;
  /** The promoter's environment: the CI's variables and `GITHUB_TOKEN`. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly logger: Logger;
  /** The HTTP stack GitHub's API is asked through; without it (or a token) the API is not asked. */
  readonly http?: {
    readonly transport: Transport;
    /** Learns the token, so that no message carries it. */
    readonly redactor: Redactor;
    readonly clock?: Clock;
  };
  readonly signal?: AbortSignal;
  /** The git program (default `git` from PATH). */
  readonly gitProgram?: string;
}

export type ContinuousIntegration = "github-actions" | "prow" | "none";

export interface ReviewContext {
  /** What manifest paths are relative to: the repository's top, or the manifest folder outside git. */
  readonly root: string;
  readonly git?: GitRepository;
  readonly ci: ContinuousIntegration;
  /** The manifests' repository (`https://github.com/org/repo`), when known. */
  readonly repository?: string;
  /** HEAD of the manifests' repository: on a merge job, the merge commit. */
  readonly merge?: CommitRecord;
  /** The pull requests of this run: none, one, or several in a Prow batch. */
  readonly pullRequests: readonly PullRequestRecord[];
  /**
   * The commits each pull request brought over its base, to tell which edges it approved: an
   * edge is the pull request's only when the commit that wrote its line is one of them (an edge
   * added long ago and promoted again, to a new mirror, was approved by another change).
   */
  readonly commitsByPullRequest?: ReadonlyMap<number, ReadonlySet<string>>;
  /** The manifest folder as given and as the file system resolves it, when they differ. */
  readonly aliases?: readonly { readonly given: string; readonly real: string }[];
}

const DEFAULT_GITHUB_SERVER = "https://github.com";
/** Commits of one batched pull request read to tell which pull request added an edge. */
const MAX_BATCH_COMMITS = 10_000;
const JOB_TYPES = new Set(["presubmit", "postsubmit", "batch", "periodic"]);

interface HeadCommit {
  readonly record: CommitRecord;
}

interface Collector {
  readonly options: ReviewContextOptions;
  readonly warn: (message: string) => void;
  readonly git?: GitRepository;
  readonly head?: HeadCommit;
  readonly client?: GitHubClient;
}

function gitOptions(collector: Collector, repository: GitRepository) {
  const { signal, gitProgram } = collector.options;
  return { repository, ...(signal ? { signal } : {}), ...(gitProgram ? { program: gitProgram } : {}) };
}

/** Rethrows an abort; every other failure becomes a warning. */
function rethrowAbort(error: unknown): void {
  if (error instanceof AbortedError) throw error;
}

async function readHead(options: ReviewContextOptions, repository: GitRepository): Promise<HeadCommit> {
  const output = await runGit(
    [
      "log",
      "-1",
      "--no-show-signature",
      "--no-mailmap",
      "--format=%H%x00%an <%ae>%x00%ct%x00%s",
      "--end-of-options",
      "HEAD",
    ],
    {
      repository,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.gitProgram ? { program: options.gitProgram } : {}),
    },
  );
  const [sha = "", author = "", time = "", subject = ""] = output.toString("utf8").split("\0");
  if (!isCommitSha(sha)) throw new Error(`git log printed ${escapeExcerpt(sha, 80)} for HEAD`);
  const when = epochToRfc3339(Number(time));
  const cleanAuthor = recordText(author);
  const cleanSubject = recordText(subject);
  return {
    record: {
      sha,
      ...(cleanAuthor === "" ? {} : { author: cleanAuthor }),
      ...(when === undefined ? {} : { time: when }),
      ...(cleanSubject === "" ? {} : { subject: cleanSubject }),
    },
  };
}

async function originUrl(collector: Collector, repository: GitRepository): Promise<string | undefined> {
  try {
    const output = await runGit(["config", "--get", "remote.origin.url"], gitOptions(collector, repository));
    return publicRepositoryUrl(output.toString("utf8"));
  } catch (error) {
    rethrowAbort(error);
    // No origin remote: a local repository names no place a reader could look.
    return undefined;
  }
}

/** `GITHUB_SERVER_URL` when it is a plain http(s) origin, else github.com (with a warning). */
function githubServer(collector: Collector): string {
  const text = collector.options.env.GITHUB_SERVER_URL;
  if (text === undefined || text === "") return DEFAULT_GITHUB_SERVER;
  try {
    const url = new URL(text);
    if (
      (url.protocol === "https:" || url.protocol === "http:") &&
      url.username === "" &&
      url.password === "" &&
      (url.pathname === "/" || url.pathname === "") &&
      url.search === "" &&
      url.hash === ""
    ) {
      return url.origin;
    }
  } catch {
    // Reported below.
  }
  // Not quoted: a URL with a user part may carry a credential.
  collector.warn(
    `GITHUB_SERVER_URL is not a server's address (https://HOST); using ${DEFAULT_GITHUB_SERVER}`,
  );
  return DEFAULT_GITHUB_SERVER;
}

function repoFrom(collector: Collector, text: string | undefined, variable: string): RepoName | undefined {
  if (text === undefined || text === "") {
    collector.warn(`${variable} is not set`);
    return undefined;
  }
  try {
    return parseRepoName(text, variable);
  } catch (error) {
    collector.warn(describeError(error));
    return undefined;
  }
}

function githubClient(collector: Collector): GitHubClient | undefined {
  const { env, http, signal } = collector.options;
  const token = env[GITHUB_TOKEN_VARIABLE]?.trim();
  if (token === undefined || token === "" || http === undefined) return undefined;
  try {
    return new GitHubClient({
      apiUrl:
        env.GITHUB_API_URL === undefined || env.GITHUB_API_URL.trim() === ""
          ? DEFAULT_GITHUB_API_URL
          : env.GITHUB_API_URL.trim(),
      token,
      transport: http.transport,
      redactor: http.redactor,
      ...(http.clock ? { clock: http.clock } : {}),
      ...(signal ? { signal } : {}),
    });
  } catch (error) {
    collector.warn(`GITHUB_API_URL: ${describeError(error)}; approvals are not read from GitHub's API`);
    return undefined;
  }
}

/** An approver with their page on the server (an app's account, `name[bot]`, is at `/apps/name`). */
function approver(server: string, login: string): Approver {
  const app = /^(.*)\[bot\]$/.exec(login);
  return { name: login, uri: app ? `${server}/apps/${app[1] ?? ""}` : `${server}/${login}` };
}

/** The approvals GitHub's API records for a pull request, or nothing (and a warning) when it cannot say. */
async function apiApprovals(
  collector: Collector,
  client: GitHubClient,
  repo: RepoName,
  number: number,
  server: string,
  head: string | undefined,
): Promise<Pick<PullRequestRecord, "approvers" | "approvalSource" | "reviewTime"> | undefined> {
  try {
    const approvals = currentApprovals(await pullRequestReviews(client, repo, number), head);
    if (approvals.notEntitled.length > 0) {
      collector.warn(
        `pull request #${number}: approvals that do not count, not recorded: ${approvals.notEntitled.map((review) => `${review.login} (${review.problem})`).join(", ")}`,
      );
    }
    if (approvals.stale.length > 0) {
      const who = approvals.stale.map(
        (review) =>
          `${review.login} (of ${review.commitId === undefined ? "an unnamed commit" : review.commitId.slice(0, 12)})`,
      );
      collector.warn(
        head === undefined
          ? `pull request #${number}: its head commit is unknown, so no approval can be shown to be of what was merged; not recorded: ${who.join(", ")}`
          : `pull request #${number}: approvals of an earlier commit than its head ${head.slice(0, 12)} did not see what was merged; not recorded: ${who.join(", ")}`,
      );
    }
    return {
      approvers: approvals.logins.map((login) => approver(server, login)),
      approvalSource: "github-api",
      ...(approvals.lastApprovedAt === undefined ? {} : { reviewTime: approvals.lastApprovedAt }),
    };
  } catch (error) {
    rethrowAbort(error);
    collector.warn(`the approvals of pull request #${number} are not recorded: ${describeError(error)}`);
    return undefined;
  }
}

function pullRecord(
  pull: Partial<GitHubPullRequest> & { readonly number: number },
  repo: RepoName,
  server: string,
  approvals: Pick<PullRequestRecord, "approvers" | "approvalSource" | "reviewTime"> | undefined,
): PullRequestRecord {
  const url =
    pull.url ??
    pullRequestUrl(`${server}/${repo.owner}/${repo.name}/pull/${pull.number}`, repo, pull.number, server);
  const baseRef = branchRef(pull.baseRef);
  return {
    number: pull.number,
    ...(url === undefined ? {} : { url }),
    ...(pull.author === undefined ? {} : { author: pull.author }),
    ...(pull.headSha === undefined ? {} : { headSha: pull.headSha }),
    ...(baseRef === undefined ? {} : { baseRef }),
    ...(pull.baseSha === undefined ? {} : { baseSha: pull.baseSha }),
    approvers: approvals?.approvers ?? [],
    ...(approvals?.approvalSource === undefined ? {} : { approvalSource: approvals.approvalSource }),
    ...(approvals?.reviewTime === undefined ? {} : { reviewTime: approvals.reviewTime }),
  };
}

/**
 * The pull request HEAD merged, as GitHub's API associates the commit with a merged pull request
 * (the subject's `#N` only picks among several). Without the API nothing is recorded: a commit's
 * message is its author's text (a rebase or squash merge makes the pull request's own commit
 * HEAD, and GitHub's merge message carries the pull request's title), so "#N" there proves nothing.
 */
async function mergedPullRequest(
  collector: Collector,
  repo: RepoName,
  server: string,
): Promise<(Partial<GitHubPullRequest> & { number: number }) | undefined> {
  const head = collector.head?.record;
  if (head === undefined) return undefined;
  if (!collector.client) {
    collector.warn(
      `no ${GITHUB_TOKEN_VARIABLE}: the pull request ${head.sha} merged is not looked up in GitHub's API, and a commit message proves none; only the commits are recorded`,
    );
    return undefined;
  }
  const named = head.subject === undefined ? undefined : pullNumberFromSubject(head.subject);
  try {
    const pulls = await pullRequestsOfCommit(collector.client, repo, head.sha, server);
    const merged =
      pulls.find((pull) => pull.merged && pull.mergeCommitSha === head.sha) ??
      pulls.find((pull) => pull.merged && pull.number === named);
    if (!merged && named !== undefined) {
      collector.warn(
        `the commit ${head.sha} names pull request #${named}, but GitHub does not associate that merged pull request with it; no pull request is recorded`,
      );
    }
    return merged;
  } catch (error) {
    rethrowAbort(error);
    collector.warn(`the pull request of ${head.sha} is not read from GitHub's API: ${describeError(error)}`);
    return undefined;
  }
}

async function fromGitHubActions(collector: Collector): Promise<Partial<ReviewContext>> {
  const { env } = collector.options;
  const server = githubServer(collector);
  const repo = repoFrom(collector, env.GITHUB_REPOSITORY, "GITHUB_REPOSITORY");
  if (repo === undefined) return {};
  const repository = `${server}/${repo.owner}/${repo.name}`;
  const eventName = env.GITHUB_EVENT_NAME ?? "";
  const eventPath = env.GITHUB_EVENT_PATH;
  if (eventPath === undefined || eventPath === "") {
    collector.warn("GITHUB_EVENT_PATH is not set: the run's event is unknown");
    return { repository };
  }
  const event = await readGitHubEvent(eventName, eventPath, repo, server);
  if ("warning" in event) {
    collector.warn(event.warning);
    return { repository };
  }
  if (event.kind === "pull-request") {
    let approvals = collector.client
      ? await apiApprovals(collector, collector.client, repo, event.pull.number, server, event.pull.headSha)
      : undefined;
    const approvalOfHead =
      event.approval?.commitId !== undefined && event.approval.commitId === event.pull.headSha;
    const notEntitled = event.approval ? approvalProblem(event.approval) : undefined;
    if (approvals === undefined && event.approval && notEntitled !== undefined) {
      collector.warn(
        `the approval by ${event.approval.login} in the event does not count (${notEntitled}); not recorded`,
      );
    } else if (approvals === undefined && event.approval && !approvalOfHead) {
      collector.warn(
        `the approval by ${event.approval.login} in the event is not of the pull request's head commit; not recorded`,
      );
    } else if (approvals === undefined && event.approval) {
      approvals = {
        approvers: [approver(server, event.approval.login)],
        approvalSource: "github-event",
        ...(event.approval.submittedAt === undefined ? {} : { reviewTime: event.approval.submittedAt }),
      };
    }
    return onePullRequest(collector, repository, pullRecord(event.pull, repo, server, approvals));
  }
  if (event.kind === "push") {
    const head = collector.head?.record;
    if (event.after !== undefined && head !== undefined && event.after !== head.sha) {
      collector.warn(`the push event is about ${event.after}, but the manifests' checkout is at ${head.sha}`);
    }
    const merged = await mergedPullRequest(collector, repo, server);
    if (merged === undefined || !collector.client) return { repository };
    const approvals = await apiApprovals(
      collector,
      collector.client,
      repo,
      merged.number,
      server,
      merged.headSha,
    );
    return onePullRequest(collector, repository, pullRecord(merged, repo, server, approvals));
  }
  return { repository };
}

/** The commits each batched pull request adds over the base, to tell which one added an edge. */
async function batchCommits(
  collector: Collector,
  pulls: readonly { number: number; sha: string }[],
  baseSha: string | undefined,
): Promise<Map<number, Set<string>> | undefined> {
  const git = collector.git;
  if (git === undefined || baseSha === undefined) return undefined;
  const result = new Map<number, Set<string>>();
  for (const pull of pulls) {
    try {
      const output = await runGit(
        ["rev-list", `--max-count=${MAX_BATCH_COMMITS}`, "--end-of-options", pull.sha, `^${baseSha}`],
        gitOptions(collector, git),
      );
      result.set(pull.number, new Set(output.toString("utf8").split("\n").filter(isCommitSha)));
    } catch (error) {
      rethrowAbort(error);
      collector.warn(
        `the commits of pull request #${pull.number} are not in the checkout: ${describeError(error)}`,
      );
    }
  }
  return result;
}

/**
 * The commits HEAD brought over its first parent: for a merge commit (GitHub's merge button, the
 * merge Actions and Prow check out for a pull request, Tide's merge) the pull request's commits
 * and the merge itself; for a squash or rebase merge, HEAD alone (a rebased pull request's
 * earlier commits are then not attributed: the record says less, never more). Never the push's
 * `before`: a push can carry several merges (a merge queue), and the pull request of HEAD
 * approved only its own. All of HEAD's history for a first commit; undefined (and a warning)
 * when git cannot say.
 */
async function changeCommits(collector: Collector): Promise<Set<string> | undefined> {
  const git = collector.git;
  if (git === undefined || collector.head === undefined) return undefined;
  const head = collector.head.record.sha;
  for (const range of [[head, `^${head}^1`], [head]]) {
    try {
      const output = await runGit(
        ["rev-list", `--max-count=${MAX_BATCH_COMMITS}`, "--end-of-options", ...range],
        gitOptions(collector, git),
      );
      return new Set(output.toString("utf8").split("\n").filter(isCommitSha));
    } catch (error) {
      rethrowAbort(error);
      // HEAD has no parent (or it is not in a shallow checkout): the next range.
    }
  }
  collector.warn(`the commits of ${head} are not readable: no edge is attributed to a pull request`);
  return undefined;
}

/** The pull request of a run that has one, with the commits it brought. */
async function onePullRequest(
  collector: Collector,
  repository: string,
  pull: PullRequestRecord,
): Promise<Partial<ReviewContext>> {
  const commits = await changeCommits(collector);
  return {
    repository,
    pullRequests: [pull],
    ...(commits ? { commitsByPullRequest: new Map([[pull.number, commits]]) } : {}),
  };
}

async function fromProw(collector: Collector): Promise<Partial<ReviewContext>> {
  const { env } = collector.options;
  const server = DEFAULT_GITHUB_SERVER;
  const jobType = env.JOB_TYPE ?? "";
  if (!JOB_TYPES.has(jobType)) {
    collector.warn(`JOB_TYPE ${escapeExcerpt(jobType, 40)} is not presubmit, postsubmit, batch or periodic`);
    return {};
  }
  if (jobType === "periodic") return {};
  const owner = env.REPO_OWNER ?? "";
  const name = env.REPO_NAME ?? "";
  const repo = repoFrom(
    collector,
    owner === "" && name === "" ? undefined : `${owner}/${name}`,
    "REPO_OWNER/REPO_NAME",
  );
  if (repo === undefined) return {};
  const repository = `${server}/${repo.owner}/${repo.name}`;
  const refsText = env.PULL_REFS;
  const refs = refsText === undefined || refsText === "" ? undefined : parsePullRefs(refsText);
  if (refs && "error" in refs) collector.warn(`PULL_REFS: ${refs.error}`);
  const parsedRefs = refs && !("error" in refs) ? refs : undefined;
  const baseRef = env.PULL_BASE_REF ?? parsedRefs?.baseRef;
  const baseShaText = env.PULL_BASE_SHA ?? parsedRefs?.baseSha;
  if (baseShaText !== undefined && !isCommitSha(baseShaText)) {
    collector.warn(`PULL_BASE_SHA ${escapeExcerpt(baseShaText, 80)} is not a commit id`);
  }
  const baseSha = isCommitSha(baseShaText) ? baseShaText : undefined;
  const base = {
    ...(baseRef === undefined ? {} : { baseRef }),
    ...(baseSha === undefined ? {} : { baseSha }),
  };
  const client = collector.client;

  if (jobType === "postsubmit") {
    const head = collector.head;
    if (head && baseSha !== undefined && head.record.sha !== baseSha) {
      collector.warn(`PULL_BASE_SHA is ${baseSha}, but the manifests' checkout is at ${head.record.sha}`);
    }
    const merged = await mergedPullRequest(collector, repo, server);
    if (merged === undefined || !client) return { repository };
    const approvals = await apiApprovals(collector, client, repo, merged.number, server, merged.headSha);
    return onePullRequest(collector, repository, pullRecord({ ...base, ...merged }, repo, server, approvals));
  }

  // presubmit and batch: the pull requests under test, from PULL_NUMBER or PULL_REFS.
  let pulls: { number: number; sha: string }[];
  if (jobType === "presubmit" && env.PULL_NUMBER !== undefined) {
    const number = parsePullNumber(env.PULL_NUMBER);
    const sha = env.PULL_PULL_SHA;
    if (number === undefined) {
      collector.warn(`PULL_NUMBER ${escapeExcerpt(env.PULL_NUMBER, 40)} is not a pull request number`);
      return { repository };
    }
    if (sha !== undefined && !isCommitSha(sha)) {
      collector.warn(`PULL_PULL_SHA ${escapeExcerpt(sha, 80)} is not a commit id`);
    }
    pulls = [{ number, sha: isCommitSha(sha) ? sha : "" }];
  } else {
    pulls = parsedRefs ? [...parsedRefs.pulls] : [];
  }
  if (pulls.length === 0) {
    collector.warn(`the ${jobType} job names no pull request (PULL_NUMBER, PULL_REFS)`);
    return { repository };
  }
  const records: PullRequestRecord[] = [];
  for (const pull of pulls) {
    const approvals = client
      ? await apiApprovals(
          collector,
          client,
          repo,
          pull.number,
          server,
          pull.sha === "" ? undefined : pull.sha,
        )
      : undefined;
    records.push(
      pullRecord(
        { number: pull.number, ...(pull.sha === "" ? {} : { headSha: pull.sha }), ...base },
        repo,
        server,
        approvals,
      ),
    );
  }
  const [only] = records;
  if (records.length === 1 && only) return onePullRequest(collector, repository, only);
  const commitsByPullRequest = await batchCommits(
    collector,
    pulls.filter((pull) => pull.sha !== ""),
    baseSha,
  );
  return { repository, pullRequests: records, ...(commitsByPullRequest ? { commitsByPullRequest } : {}) };
}

function detectCi(env: Readonly<Record<string, string | undefined>>): ContinuousIntegration {
  if (env.GITHUB_ACTIONS === "true") return "github-actions";
  if ((env.PROW_JOB_ID ?? "") !== "" || JOB_TYPES.has(env.JOB_TYPE ?? "")) return "prow";
  return "none";
}

/** The review facts of this run; never rejects but for an abort (problems are warnings). */
export async function collectReviewContext(options: ReviewContextOptions): Promise<ReviewContext> {
  const { logger } = options;
  const manifestDir = path.resolve(options.manifestDir);
  const warnings = { count: 0 };
  const warn = (message: string) => {
    warnings.count++;
    logger.log("warn", `review facts: ${message}`);
  };
  let git: GitRepository | undefined;
  let head: HeadCommit | undefined;
  try {
    git = await locateRepository(manifestDir, {
      ...(options.signal ? { signal: options.signal } : {}),
      ...(options.gitProgram ? { program: options.gitProgram } : {}),
    });
    head = await readHead(options, git);
  } catch (error) {
    rethrowAbort(error);
    warn(`the manifests' commit is not recorded: ${describeError(error)}`);
  }
  const base: Collector = { options, warn, ...(git ? { git } : {}), ...(head ? { head } : {}) };
  const client = githubClient(base);
  const collector: Collector = { ...base, ...(client ? { client } : {}) };
  const ci = detectCi(options.env);
  const found =
    ci === "github-actions"
      ? await fromGitHubActions(collector)
      : ci === "prow"
        ? await fromProw(collector)
        : {};
  const repository = found.repository ?? (git ? await originUrl(collector, git) : undefined);
  const pullRequests = found.pullRequests ?? [];
  if (pullRequests.length === 0 && warnings.count === 0) {
    warn(
      ci === "none"
        ? "not in GitHub Actions or Prow: no pull request or approvers are recorded, only the manifests' commits"
        : "no pull request found for this run: no approvers are recorded, only the manifests' commits",
    );
  }
  const aliases: { given: string; real: string }[] = [];
  try {
    const real = await realpath(manifestDir);
    if (real !== manifestDir) aliases.push({ given: manifestDir, real });
  } catch {
    // The manifests' loader reports a missing folder.
  }
  return {
    root: git?.workTree ?? manifestDir,
    ...(git ? { git } : {}),
    ci,
    ...(repository === undefined ? {} : { repository }),
    ...(head ? { merge: head.record } : {}),
    pullRequests,
    ...(found.commitsByPullRequest ? { commitsByPullRequest: found.commitsByPullRequest } : {}),
    ...(aliases.length > 0 ? { aliases } : {}),
  };
}

function relativeTo(root: string, file: string): string | undefined {
  const inside = path.relative(root, file);
  return inside === "" || inside.startsWith("..") || path.isAbsolute(inside) ? undefined : inside;
}

/** The manifest file's path from the context's root, `/`-separated (its name alone when outside). */
export function manifestPath(context: ReviewContext, file: string): string {
  let inside = relativeTo(context.root, file);
  for (const alias of context.aliases ?? []) {
    if (inside !== undefined) break;
    const rest = relativeTo(alias.given, file);
    if (rest !== undefined) inside = relativeTo(context.root, path.join(alias.real, rest));
  }
  return recordPath((inside ?? path.basename(file)).split(path.sep).join("/"));
}

/**
 * A path as a signed record carries it: the folder names are the pull request author's, and a
 * bidi override or a zero-width character would show the path reordered or hidden wherever the
 * record is read (jq, cosign, a browser). Those characters (and `%`, so that the result is read
 * back unambiguously) are percent-encoded as UTF-8 bytes, as in a URI.
 */
function recordPath(text: string): string {
  const encode = (character: string) =>
    [...Buffer.from(character, "utf8")]
      .map((byte) => `%${byte.toString(16).toUpperCase().padStart(2, "0")}`)
      .join("");
  return replaceUnsafeCharacters(text.replace(/%/g, "%25"), encode);
}

/** The pull request that approved an edge: the one of the run's whose commits wrote its line. */
function pullRequestFor(
  context: ReviewContext,
  addedIn: CommitRecord | undefined,
): PullRequestRecord | undefined {
  if (addedIn === undefined || context.commitsByPullRequest === undefined) return undefined;
  for (const pull of context.pullRequests) {
    if (context.commitsByPullRequest.get(pull.number)?.has(addedIn.sha)) return pull;
  }
  return undefined;
}

/** The review record of one promoted edge, whose digest stands at `position`. */
export function reviewRecordFor(
  context: ReviewContext,
  position: Pick<SourcePosition, "file" | "line">,
  addedIn: CommitRecord | undefined,
): ReviewRecord {
  const pullRequest = pullRequestFor(context, addedIn);
  return {
    manifest: { path: manifestPath(context, position.file), line: position.line },
    ...(context.repository === undefined ? {} : { repository: context.repository }),
    ...(addedIn === undefined ? {} : { addedIn }),
    ...(context.merge === undefined ? {} : { merge: context.merge }),
    ...(pullRequest === undefined ? {} : { pullRequest }),
  };
}

/**
 * The review record of every promoted manifest position: the run's review context, and the
 * commit that wrote each line (one `git blame` per manifest file). Never rejects but for an
 * abort: what cannot be found is a warning, and the records hold what is known (at least the
 * manifest file and line).
 */
export async function collectReviewRecords(
  options: ReviewContextOptions,
  positions: readonly Pick<SourcePosition, "file" | "line">[],
): Promise<(position: Pick<SourcePosition, "file" | "line">) => ReviewRecord> {
  const context = await collectReviewContext(options);
  let addedIn: AddedInCommits | undefined;
  if (context.git) {
    try {
      addedIn = await addedInCommits(context.git, positions, {
        logger: options.logger,
        ...(options.signal ? { signal: options.signal } : {}),
        ...(options.gitProgram ? { gitProgram: options.gitProgram } : {}),
      });
    } catch (error) {
      rethrowAbort(error);
      options.logger.log(
        "warn",
        `review facts: the commits that added the manifest lines are not recorded: ${describeError(error)}`,
      );
    }
  }
  return (position) => reviewRecordFor(context, position, addedIn?.get(position));
}
