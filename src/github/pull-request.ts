import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { RefusedError, UsageError } from "../errors.js";
import { quoteExcerpt } from "../excerpt.js";
import { addToImagesFile, type ManifestAddResult } from "../gitops/index.js";
import { isJsonObject } from "../json-shape.js";
import { systemClock, type Clock } from "../registry/index.js";
import { apiMessage, GitHubError, type GitHubClient } from "./client.js";
import { downloadThinTree, listThinTree, type RemoteTreeFile } from "./remote-tree.js";
import { formatRepoName, repoPath, sameRepo, type RepoName } from "./repo-name.js";
import { unifiedDiff } from "./text-diff.js";

/**
 * `promoter pr`: kpromo's `pr` workflow over the GitHub REST API, without a clone. It reads
 * everything first (the token's user, the upstream repository and its default branch, the fork,
 * the thin tree at the branch's head, a branch and pull request left by an earlier run), makes
 * the change with `manifest add`'s engine on a local copy of the tree, and only then writes, in
 * order: the fork when there is none, a tree, a commit and a branch on the fork, the pull
 * request against upstream, the reviewers. What was done before is not done again, so a second
 * run with the same arguments writes nothing; `--dry-run` stops before the first write and shows
 * the branch, the diff and the requests it would send.
 */

export interface PromotionPullRequestOptions {
  readonly client: GitHubClient;
  /** The repository that holds the thin tree (kpromo: kubernetes/k8s.io). */
  readonly upstream: RepoName;
  /** The fork to push to: owner (the token's user when undefined) and name (upstream's when undefined). */
  readonly forkOwner?: string;
  readonly forkName?: string;
  /** The thin tree's folder in the repository (kpromo: registry.k8s.io). */
  readonly treePath: string;
  readonly project: string;
  readonly image: string;
  readonly tags: readonly string[];
  readonly digest?: string;
  /** Users (`login`) and teams (`org/team`) to request reviews from. */
  readonly reviewers: readonly string[];
  /** The branch on the fork; default `<project>-<image>-<tag>-image-promotion`. */
  readonly branch?: string;
  readonly dryRun: boolean;
  /**
   * Makes the change on the thin tree copied to `dir`: `addToManifest` with the registry
   * provider and policy of the run (the digests are looked up in the project's staging registry).
   */
  readonly edit: (dir: string) => Promise<ManifestAddResult>;
  /** The command line as the user could run it again, quoted in the pull request's body. */
  readonly commandLine: string;
  readonly clock?: Clock;
  readonly signal?: AbortSignal;
  /** How long to wait for a new fork to answer (GitHub creates forks asynchronously). Default 60 s. */
  readonly forkWaitMs?: number;
}

/** A write request the run sends (or, in a dry run, would send). */
export interface PlannedRequest {
  readonly method: "POST";
  readonly path: string;
  /** What it does, in words. */
  readonly purpose: string;
}

export interface PromotionPullRequest {
  /** `nothing-to-do`: upstream already lists the image with those tags. */
  readonly outcome: "nothing-to-do" | "dry-run" | "done";
  readonly upstream: RepoName;
  readonly defaultBranch: string;
  readonly baseCommit: string;
  readonly fork: RepoName;
  readonly forkExists: boolean;
  readonly branch: string;
  readonly branchExists: boolean;
  /** The images file's path in the repository. */
  readonly file: string;
  readonly title: string;
  readonly diff: string;
  readonly edit: ManifestAddResult;
  readonly writes: readonly PlannedRequest[];
  readonly pullRequest?: { readonly number: number; readonly url: string; readonly existed: boolean };
  readonly commit?: string;
  readonly reviewersRequested: readonly string[];
}

interface Reviewers {
  readonly users: readonly string[];
  readonly teams: readonly string[];
}

interface OpenPullRequest {
  readonly number: number;
  readonly url: string;
  readonly users: readonly string[];
  readonly teams: readonly string[];
}

const BRANCH_SUFFIX = "-image-promotion";
const FORK_POLL_MS = 2_000;
const DEFAULT_FORK_WAIT_MS = 60_000;

/** `login` or `@login`, `org/team` or `@org/team`; a team's org must own the upstream repository. */
export function parseReviewers(entries: readonly string[], upstream: RepoName): Reviewers {
  const users: string[] = [];
  const teams: string[] = [];
  for (const raw of entries.flatMap((entry) => entry.split(","))) {
    const entry = raw.trim().replace(/^@/, "");
    if (entry === "") continue;
    const [owner = "", team, ...rest] = entry.split("/");
    const valid = /^[A-Za-z0-9][A-Za-z0-9-]{0,38}$/;
    if (
      rest.length > 0 ||
      !valid.test(owner) ||
      (team !== undefined && !/^[A-Za-z0-9._-]{1,100}$/.test(team))
    ) {
      throw new UsageError(`--reviewers ${quoteExcerpt(raw)}: give a GitHub login or ORG/TEAM`);
    }
    if (team === undefined) users.push(owner);
    else if (owner.toLowerCase() !== upstream.owner.toLowerCase()) {
      throw new UsageError(
        `--reviewers ${quoteExcerpt(raw)}: a team reviewer must be a team of ${upstream.owner}, which owns ${formatRepoName(upstream)}`,
      );
    } else teams.push(team);
  }
  return { users: [...new Set(users)], teams: [...new Set(teams)] };
}

/** kpromo's branch name (`<project>-<tag>-image-promotion`), with the image so two images of one tag differ. */
export function defaultBranchName(
  project: string,
  image: string,
  tags: readonly string[],
  digest?: string,
): string {
  const version = tags[0] ?? digest?.replace(/^[a-z0-9]+:/, "").slice(0, 12) ?? "";
  const raw = `${project}-${image}-${version}${BRANCH_SUFFIX}`;
  return raw
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .replace(/\.{2,}/g, ".")
    .replace(/^[-.]+/, "");
}

/** Git's rules for a branch name (git check-ref-format), the ones a flag can break. */
function checkBranchName(branch: string): void {
  const bad =
    branch === "" ||
    branch.length > 200 ||
    !/^[A-Za-z0-9._/-]+$/.test(branch) ||
    branch.startsWith("-") ||
    branch.startsWith("/") ||
    branch.endsWith("/") ||
    branch.endsWith(".") ||
    branch.endsWith(".lock") ||
    branch.includes("..") ||
    branch.includes("//") ||
    branch.split("/").some((part) => part.startsWith("."));
  if (bad) throw new UsageError(`--branch ${quoteExcerpt(branch)} is not a valid branch name`);
}

function title(options: PromotionPullRequestOptions, edit: ManifestAddResult): string {
  const versions =
    options.tags.length > 0
      ? options.tags.join(" / ")
      : edit.additions.map((addition) => addition.digest.slice(0, 19)).join(" / ");
  return `Image promotion for ${options.project} ${options.image} ${versions}`;
}

function body(
  options: PromotionPullRequestOptions,
  edit: ManifestAddResult,
  file: string,
  reviewers: Reviewers,
): string {
  const rows = edit.changes.map(
    (change) =>
      `| \`${change.image}\` | \`${change.digest}\` | ${change.addedTags.map((tag) => `\`${tag}\``).join(", ") || "(no tag)"} |`,
  );
  const cc = [
    ...reviewers.users.map((user) => `@${user}`),
    ...reviewers.teams.map((team) => `@${options.upstream.owner}/${team}`),
  ];
  return [
    `Image promotion for project \`${options.project}\`: adds to \`${file}\``,
    "",
    "| image | digest | tags |",
    "| --- | --- | --- |",
    ...rows,
    "",
    `The digests were looked up in the staging repository \`${edit.source}\`.`,
    "",
    "This pull request was opened by `promoter pr`:",
    "",
    "```",
    options.commandLine,
    "```",
    ...(cc.length > 0 ? ["", `cc: ${cc.join(" ")}`] : []),
    "",
  ].join("\n");
}

function field(json: unknown, name: string, what: string): string {
  const value = isJsonObject(json) ? json[name] : undefined;
  if (typeof value !== "string" || value === "") {
    throw new GitHubError("github-protocol", `${what}: the answer has no ${name}`);
  }
  return value;
}

function refSha(json: unknown, what: string): string {
  if (!isJsonObject(json) || !isJsonObject(json.object) || typeof json.object.sha !== "string") {
    throw new GitHubError("github-protocol", `${what}: the answer is not a git reference`);
  }
  return json.object.sha;
}

function pullRequestOf(json: unknown, what: string): OpenPullRequest {
  if (!isJsonObject(json) || typeof json.number !== "number" || typeof json.html_url !== "string") {
    throw new GitHubError("github-protocol", `${what}: the answer is not a pull request`);
  }
  const names = (list: unknown, key: string): string[] =>
    Array.isArray(list)
      ? list.flatMap((entry) => (isJsonObject(entry) && typeof entry[key] === "string" ? [entry[key]] : []))
      : [];
  return {
    number: json.number,
    url: json.html_url,
    users: names(json.requested_reviewers, "login"),
    teams: names(json.requested_teams, "slug"),
  };
}

export async function openPromotionPullRequest(
  options: PromotionPullRequestOptions,
): Promise<PromotionPullRequest> {
  const { client, upstream } = options;
  const reviewers = parseReviewers(options.reviewers, upstream);
  const treePath = options.treePath
    .split("/")
    .filter((part) => part !== "" && part !== ".")
    .join("/");
  if (treePath.split("/").includes("..")) {
    throw new UsageError(`--thin-manifest-dir ${quoteExcerpt(options.treePath)}: a folder of the repository`);
  }

  // Reads: who we are, where upstream stands, which fork.
  const login = field(await client.get("/user"), "login", "GET /user");
  const upstreamJson = await client.get(repoPath(upstream));
  const defaultBranch = field(upstreamJson, "default_branch", formatRepoName(upstream));
  const fork: RepoName = { owner: options.forkOwner ?? login, name: options.forkName ?? upstream.name };
  if (sameRepo(fork, upstream)) {
    throw new UsageError(`--fork ${formatRepoName(fork)} is the upstream repository; give your fork`);
  }
  const forkJson = await client.find(repoPath(fork));
  if (forkJson !== undefined) checkFork(forkJson, fork, upstream);
  const forkExists = forkJson !== undefined;
  const baseCommit = refSha(
    await client.get(`${repoPath(upstream)}/git/ref/heads/${defaultBranch}`),
    `${formatRepoName(upstream)} branch ${defaultBranch}`,
  );

  // The change, on a copy of the thin tree at upstream's head.
  const tree = await listThinTree(client, upstream, baseCommit, treePath);
  const imagesPath = `images/${options.project}/images.yaml`;
  const file = treePath === "" ? imagesPath : `${treePath}/${imagesPath}`;
  const remoteImages = tree.files.find((entry) => entry.path === imagesPath);
  if (remoteImages !== undefined && !isRegular(remoteImages)) {
    throw new RefusedError(
      "pr-refused",
      `${file} in ${formatRepoName(upstream)} is not a regular file (mode ${remoteImages.mode})`,
    );
  }
  const edit = await withTreeCopy(async (dir) => {
    await downloadThinTree(client, upstream, tree.files, dir, options.signal);
    return options.edit(dir);
  });
  const prTitle = title(options, edit);
  const diff = unifiedDiff(file, edit.before, edit.after);
  const branch =
    options.branch ?? defaultBranchName(options.project, options.image, options.tags, options.digest);
  checkBranchName(branch);
  const base = {
    upstream,
    defaultBranch,
    baseCommit,
    fork,
    forkExists,
    branch,
    file,
    title: prTitle,
    diff,
    edit,
  };
  if (edit.changes.length === 0) {
    return { ...base, outcome: "nothing-to-do", branchExists: false, writes: [], reviewersRequested: [] };
  }

  // What an earlier run left: the branch (it must carry this change) and an open pull request.
  const carries = (text: string | undefined) =>
    text !== undefined && addToImagesFile(text, file, edit.additions).changes.length === 0;
  let branchExists = false;
  let existing: OpenPullRequest | undefined;
  if (forkExists) {
    const branchJson = await client.find(`${repoPath(fork)}/git/ref/heads/${branch}`);
    if (branchJson !== undefined) {
      const head = refSha(branchJson, `${formatRepoName(fork)} branch ${branch}`);
      if (!carries(await imagesFileAt(client, fork, head, treePath, imagesPath))) {
        throw branchTaken(fork, branch, file);
      }
      branchExists = true;
    }
    const pulls = await client.get(
      `${repoPath(upstream)}/pulls?state=open&head=${encodeURIComponent(`${fork.owner}:${branch}`)}`,
    );
    if (Array.isArray(pulls) && pulls.length > 0) existing = pullRequestOf(pulls[0], "open pull requests");
  }

  const missingUsers = reviewers.users.filter(
    (user) => !existing?.users.some((known) => known.toLowerCase() === user.toLowerCase()),
  );
  const missingTeams = reviewers.teams.filter(
    (team) => !existing?.teams.some((known) => known.toLowerCase() === team.toLowerCase()),
  );
  const writes: PlannedRequest[] = [];
  if (!forkExists)
    writes.push({
      method: "POST",
      path: `${repoPath(upstream)}/forks`,
      purpose: `create the fork ${formatRepoName(fork)}`,
    });
  if (!branchExists) {
    writes.push(
      { method: "POST", path: `${repoPath(fork)}/git/trees`, purpose: `the tree with the new ${file}` },
      {
        method: "POST",
        path: `${repoPath(fork)}/git/commits`,
        purpose: `the commit "${prTitle}" on ${baseCommit.slice(0, 12)}`,
      },
      { method: "POST", path: `${repoPath(fork)}/git/refs`, purpose: `the branch ${branch}` },
    );
  }
  if (existing === undefined) {
    writes.push({
      method: "POST",
      path: `${repoPath(upstream)}/pulls`,
      purpose: `the pull request ${fork.owner}:${branch} -> ${defaultBranch}`,
    });
  }
  if (missingUsers.length + missingTeams.length > 0) {
    writes.push({
      method: "POST",
      path: `${repoPath(upstream)}/pulls/${existing === undefined ? "{number}" : String(existing.number)}/requested_reviewers`,
      purpose: `request reviews from ${[...missingUsers, ...missingTeams.map((team) => `${upstream.owner}/${team}`)].join(", ")}`,
    });
  }
  const planned = {
    ...base,
    branchExists,
    writes,
    reviewersRequested: [...missingUsers, ...missingTeams.map((team) => `${upstream.owner}/${team}`)],
  };
  if (options.dryRun) {
    return {
      ...planned,
      outcome: "dry-run",
      ...(existing === undefined
        ? {}
        : { pullRequest: { number: existing.number, url: existing.url, existed: true } }),
    };
  }

  // Writes, each only when the read phase found it missing.
  let target = fork;
  if (!forkExists) target = await createFork(options, fork, login);
  let commit: string | undefined;
  if (!branchExists) {
    commit = await commitChange(client, target, {
      rootTree: tree.rootTree,
      file,
      mode: remoteImages?.mode ?? "100644",
      text: edit.after,
      message: prTitle,
      parent: baseCommit,
    });
    const created = await client.request(
      "POST",
      `${repoPath(target)}/git/refs`,
      { ref: `refs/heads/${branch}`, sha: commit },
      [201, 422],
    );
    if (created.status === 422 && !/already exists/i.test(apiMessage(created.json) ?? "")) {
      throw new GitHubError(
        "github-http",
        `POST ${repoPath(target)}/git/refs: HTTP 422: ${apiMessage(created.json) ?? "refused"}`,
        422,
      );
    }
    if (created.status === 422) {
      // Another run may have made the same branch in between: fine if it carries this change.
      const again = await client.find(`${repoPath(target)}/git/ref/heads/${branch}`);
      const head =
        again === undefined ? undefined : refSha(again, `${formatRepoName(target)} branch ${branch}`);
      if (head === undefined || !carries(await imagesFileAt(client, target, head, treePath, imagesPath))) {
        throw branchTaken(target, branch, file);
      }
      commit = undefined;
    }
  }
  let pull = existing;
  if (pull === undefined) {
    const opened = await client.request(
      "POST",
      `${repoPath(upstream)}/pulls`,
      {
        title: prTitle,
        head: `${target.owner}:${branch}`,
        base: defaultBranch,
        body: body(options, edit, file, reviewers),
        maintainer_can_modify: true,
      },
      [201, 422],
    );
    if (opened.status === 422) {
      const pulls = await client.get(
        `${repoPath(upstream)}/pulls?state=open&head=${encodeURIComponent(`${target.owner}:${branch}`)}`,
      );
      if (!Array.isArray(pulls) || pulls.length === 0) {
        throw new GitHubError(
          "github-http",
          `POST ${repoPath(upstream)}/pulls: HTTP 422: ${apiMessage(opened.json) ?? "refused"}`,
          422,
        );
      }
      pull = pullRequestOf(pulls[0], "open pull requests");
    } else pull = pullRequestOf(opened.json, `POST ${repoPath(upstream)}/pulls`);
  }
  if (missingUsers.length + missingTeams.length > 0) {
    await client.request("POST", `${repoPath(upstream)}/pulls/${pull.number}/requested_reviewers`, {
      reviewers: missingUsers,
      team_reviewers: missingTeams,
    });
  }
  return {
    ...planned,
    fork: target,
    outcome: "done",
    pullRequest: { number: pull.number, url: pull.url, existed: existing !== undefined },
    ...(commit === undefined ? {} : { commit }),
  };
}

function isRegular(file: RemoteTreeFile): boolean {
  return file.mode === "100644" || file.mode === "100755";
}

function branchTaken(fork: RepoName, branch: string, file: string): RefusedError {
  return new RefusedError(
    "pr-refused",
    `branch ${branch} already exists in ${formatRepoName(fork)} and its ${file} does not carry this change; delete the branch or name another with --branch`,
  );
}

function checkFork(json: unknown, fork: RepoName, upstream: RepoName): void {
  const parent = isJsonObject(json) && isJsonObject(json.parent) ? json.parent.full_name : undefined;
  const isFork = isJsonObject(json) && json.fork === true;
  if (
    !isFork ||
    typeof parent !== "string" ||
    parent.toLowerCase() !== formatRepoName(upstream).toLowerCase()
  ) {
    throw new RefusedError(
      "pr-refused",
      `${formatRepoName(fork)} is not a fork of ${formatRepoName(upstream)}${typeof parent === "string" ? ` (it is a fork of ${parent})` : ""}; give your fork with --fork OWNER[/NAME]`,
    );
  }
}

/** The images file at `commit` of `repo`, or undefined when it is absent or not a regular file. */
async function imagesFileAt(
  client: GitHubClient,
  repo: RepoName,
  commit: string,
  treePath: string,
  imagesPath: string,
): Promise<string | undefined> {
  const tree = await listThinTree(client, repo, commit, treePath);
  const entry = tree.files.find((candidate) => candidate.path === imagesPath);
  if (entry === undefined || !isRegular(entry)) return undefined;
  const json = await client.get(`${repoPath(repo)}/git/blobs/${entry.sha}`);
  if (!isJsonObject(json) || typeof json.content !== "string" || json.encoding !== "base64") {
    throw new GitHubError("github-protocol", `${imagesPath}: the blob answer is not base64 content`);
  }
  return Buffer.from(json.content, "base64").toString("utf8");
}

async function createFork(
  options: PromotionPullRequestOptions,
  fork: RepoName,
  login: string,
): Promise<RepoName> {
  const { client, upstream } = options;
  const answer = await client.request("POST", `${repoPath(upstream)}/forks`, {
    ...(fork.owner.toLowerCase() === login.toLowerCase() ? {} : { organization: fork.owner }),
    ...(fork.name === upstream.name ? {} : { name: fork.name }),
    default_branch_only: true,
  });
  const fullName = field(answer.json, "full_name", `POST ${repoPath(upstream)}/forks`);
  const [owner = fork.owner, name = fork.name] = fullName.split("/");
  const created = { owner, name };
  // GitHub makes the fork in the background: wait until it answers before writing to it.
  const clock = options.clock ?? systemClock;
  const deadline = clock.now() + (options.forkWaitMs ?? DEFAULT_FORK_WAIT_MS);
  while ((await client.find(repoPath(created))) === undefined) {
    if (clock.now() >= deadline) {
      throw new GitHubError(
        "github-http",
        `the new fork ${fullName} did not appear in time; run the command again`,
      );
    }
    await clock.sleep(FORK_POLL_MS, options.signal);
  }
  return created;
}

async function commitChange(
  client: GitHubClient,
  repo: RepoName,
  change: { rootTree: string; file: string; mode: string; text: string; message: string; parent: string },
): Promise<string> {
  const tree = await client.request("POST", `${repoPath(repo)}/git/trees`, {
    base_tree: change.rootTree,
    tree: [{ path: change.file, mode: change.mode, type: "blob", content: change.text }],
  });
  const treeSha = field(tree.json, "sha", `POST ${repoPath(repo)}/git/trees`);
  const commit = await client.request("POST", `${repoPath(repo)}/git/commits`, {
    message: change.message,
    tree: treeSha,
    parents: [change.parent],
  });
  return field(commit.json, "sha", `POST ${repoPath(repo)}/git/commits`);
}

/** Runs `work` on a fresh temporary folder, removed afterwards whatever happens. */
async function withTreeCopy<T>(work: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), "promoter-pr-"));
  try {
    return await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
