import { isJsonObject } from "../json-shape.js";
import { GitHubError, type GitHubClient } from "./client.js";
import { repoPath, type RepoName } from "./repo-name.js";

/**
 * Who approved a pull request, read from GitHub's REST API: the pull requests a commit belongs to
 * (`GET /repos/{o}/{r}/commits/{sha}/pulls`) and a pull request's reviews
 * (`GET /repos/{o}/{r}/pulls/{n}/reviews`). Everything in an answer is someone else's text that
 * ends up in a signed record, so each field is taken only when it has the shape its meaning has
 * (a login is a login, a sha is hex, a number is a positive integer) and dropped otherwise.
 * https://docs.github.com/en/rest/commits/commits#list-pull-requests-associated-with-a-commit
 * https://docs.github.com/en/rest/pulls/reviews#list-reviews-for-a-pull-request
 */

/**
 * GitHub's login syntax: letters, digits and single inner hyphens, at most 39 characters; an app's
 * account carries the `[bot]` suffix (`k8s-ci-robot` is a user, `dependabot[bot]` an app).
 */
const GITHUB_LOGIN = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}(?:\[bot\])?$/;
const COMMIT_SHA = /^(?:[0-9a-f]{40}|[0-9a-f]{64})$/;
/** A branch name as a record carries it: git's ref alphabet, without `..` or a leading `-`. */
const BRANCH_NAME = /^(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,255}$/;
/** RFC 3339 in UTC or with an offset, as GitHub writes `submitted_at`. */
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;
/** Reviews asked for per page (GitHub's maximum) and pages read at most. */
const REVIEWS_PER_PAGE = 100;
export const MAX_REVIEW_PAGES = 10;
/** Pull requests of one commit kept from an answer (a merge commit belongs to one or two). */
const MAX_PULLS_OF_COMMIT = 100;
/** Characters of a URL kept from an answer. */
const MAX_URL_CHARS = 512;

export function isGitHubLogin(text: unknown): text is string {
  return typeof text === "string" && GITHUB_LOGIN.test(text);
}

export function isCommitSha(text: unknown): text is string {
  return typeof text === "string" && COMMIT_SHA.test(text);
}

export function isBranchName(text: unknown): text is string {
  return typeof text === "string" && BRANCH_NAME.test(text) && !text.endsWith("/") && !text.endsWith(".lock");
}

export function isPositiveInteger(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value > 0;
}

export function isTimestamp(text: unknown): text is string {
  return typeof text === "string" && TIMESTAMP.test(text) && !Number.isNaN(Date.parse(text));
}

/**
 * A pull request's web address from an answer or an event, kept only when it is what the field
 * means: an http(s) URL on the GitHub server `server` (an origin, `https://github.com`), without
 * user, query or fragment, whose path is `/OWNER/NAME/pull/NUMBER`.
 */
export function pullRequestUrl(
  value: unknown,
  repo: RepoName,
  number: number,
  server: string,
): string | undefined {
  if (typeof value !== "string" || value.length > MAX_URL_CHARS) return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if ((url.protocol !== "https:" && url.protocol !== "http:") || url.origin !== server) return undefined;
  if (url.username !== "" || url.password !== "" || url.search !== "" || url.hash !== "") return undefined;
  const expected = `/${repo.owner}/${repo.name}/pull/${number}`.toLowerCase();
  return url.pathname.toLowerCase() === expected ? url.href : undefined;
}

/** A pull request as the API describes it, each field present only when well-formed. */
export interface GitHubPullRequest {
  readonly number: number;
  readonly url?: string;
  readonly author?: string;
  readonly headSha?: string;
  readonly baseRef?: string;
  readonly baseSha?: string;
  readonly mergeCommitSha?: string;
  readonly merged: boolean;
}

/** A pull request object of the API or of an event payload; undefined when it has no valid number. */
export function readPullRequest(
  json: unknown,
  repo: RepoName,
  server: string,
): GitHubPullRequest | undefined {
  if (!isJsonObject(json) || !isPositiveInteger(json.number)) return undefined;
  const number = json.number;
  const user = isJsonObject(json.user) ? json.user.login : undefined;
  const head = isJsonObject(json.head) ? json.head : {};
  const base = isJsonObject(json.base) ? json.base : {};
  const url = pullRequestUrl(json.html_url, repo, number, server);
  return {
    number,
    ...(url === undefined ? {} : { url }),
    ...(isGitHubLogin(user) ? { author: user } : {}),
    ...(isCommitSha(head.sha) ? { headSha: head.sha } : {}),
    ...(isBranchName(base.ref) ? { baseRef: base.ref } : {}),
    ...(isCommitSha(base.sha) ? { baseSha: base.sha } : {}),
    ...(isCommitSha(json.merge_commit_sha) ? { mergeCommitSha: json.merge_commit_sha } : {}),
    merged: typeof json.merged_at === "string" && json.merged_at !== "",
  };
}

/** The pull requests GitHub associates with a commit (a merge or squash commit: the one it merged). */
export async function pullRequestsOfCommit(
  client: GitHubClient,
  repo: RepoName,
  sha: string,
  server: string,
): Promise<GitHubPullRequest[]> {
  if (!isCommitSha(sha))
    throw new GitHubError("github-protocol", `${JSON.stringify(sha)} is not a commit id`);
  const what = `GET ${repoPath(repo)}/commits/${sha}/pulls`;
  const json = await client.get(`${repoPath(repo)}/commits/${sha}/pulls?per_page=${MAX_PULLS_OF_COMMIT}`);
  if (!Array.isArray(json)) throw new GitHubError("github-protocol", `${what}: the answer is not a list`);
  return json.slice(0, MAX_PULLS_OF_COMMIT).flatMap((entry) => {
    const pull = readPullRequest(entry, repo, server);
    return pull === undefined ? [] : [pull];
  });
}

export interface PullRequestReview {
  readonly login: string;
  /** APPROVED, CHANGES_REQUESTED, COMMENTED, DISMISSED or PENDING. */
  readonly state: string;
  readonly submittedAt?: string;
  /** The commit the review is of (`commit_id`): an approval approves that commit's content. */
  readonly commitId?: string;
  /** The reviewer's relation to the repository (`author_association`: OWNER, MEMBER, NONE, ...). */
  readonly association?: string;
  /** An app's account (`user.type` Bot, or a `[bot]` login): not a person's review. */
  readonly bot: boolean;
}

/**
 * The associations of a reviewer who may approve: the repository's owner, a member of its
 * organisation, an invited collaborator. Anyone else can submit an APPROVED review on a public
 * repository (a second account of the author's own), and GitHub's branch protection does not
 * count it. https://docs.github.com/en/graphql/reference/enums#commentauthorassociation
 */
const APPROVING_ASSOCIATIONS: ReadonlySet<string> = new Set(["OWNER", "MEMBER", "COLLABORATOR"]);

/** Why an approving review does not count, or undefined when it does. */
export function approvalProblem(review: {
  readonly association?: string;
  readonly bot: boolean;
}): string | undefined {
  if (review.bot) return "an app's account, not a person";
  if (review.association === undefined || !APPROVING_ASSOCIATIONS.has(review.association)) {
    return `no write relation to the repository (${review.association ?? "association unknown"})`;
  }
  return undefined;
}

const REVIEW_STATES = new Set(["APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING"]);

/** All reviews of a pull request, oldest first (GitHub's order); an error when there are too many to read. */
export async function pullRequestReviews(
  client: GitHubClient,
  repo: RepoName,
  number: number,
): Promise<PullRequestReview[]> {
  if (!isPositiveInteger(number)) {
    throw new GitHubError("github-protocol", `${String(number)} is not a pull request number`);
  }
  const what = `GET ${repoPath(repo)}/pulls/${number}/reviews`;
  const reviews: PullRequestReview[] = [];
  for (let page = 1; page <= MAX_REVIEW_PAGES; page++) {
    const json = await client.get(
      `${repoPath(repo)}/pulls/${number}/reviews?per_page=${REVIEWS_PER_PAGE}&page=${page}`,
    );
    if (!Array.isArray(json)) throw new GitHubError("github-protocol", `${what}: the answer is not a list`);
    if (json.length > REVIEWS_PER_PAGE) {
      throw new GitHubError(
        "github-protocol",
        `${what}: ${json.length} reviews on a page of ${REVIEWS_PER_PAGE}`,
      );
    }
    for (const entry of json) {
      if (!isJsonObject(entry) || typeof entry.state !== "string" || !REVIEW_STATES.has(entry.state))
        continue;
      // A deleted account's reviews have no user: they cannot be named, so they are not counted.
      const login = isJsonObject(entry.user) ? entry.user.login : undefined;
      if (!isGitHubLogin(login)) continue;
      reviews.push({
        login,
        state: entry.state,
        ...(isTimestamp(entry.submitted_at) ? { submittedAt: entry.submitted_at } : {}),
        ...(isCommitSha(entry.commit_id) ? { commitId: entry.commit_id } : {}),
        ...(typeof entry.author_association === "string" && /^[A-Z_]{1,40}$/.test(entry.author_association)
          ? { association: entry.author_association }
          : {}),
        bot: login.endsWith("[bot]") || (isJsonObject(entry.user) && entry.user.type === "Bot"),
      });
    }
    if (json.length < REVIEWS_PER_PAGE) return reviews;
  }
  // The newest reviews come last: stopping early could keep an approval a later review withdrew.
  throw new GitHubError(
    "github-protocol",
    `${what}: more than ${MAX_REVIEW_PAGES * REVIEWS_PER_PAGE} reviews; approvals not read`,
  );
}

/**
 * The users whose last deciding review approves the pull request's head `head`, in order of that
 * approval, and when the last of those approvals was given. A later CHANGES_REQUESTED or
 * DISMISSED withdraws an approval; a comment or a pending review does not (GitHub's own rule for
 * a pull request's approvals). Only a person who may approve counts (`approvalProblem`: the
 * others are `notEntitled`). An approval of another commit (given before the author pushed
 * again, when the repository does not dismiss stale approvals) did not see what was merged: it is
 * `stale`, not counted; so is every approval when the head is unknown.
 */
export function currentApprovals(
  reviews: readonly PullRequestReview[],
  head: string | undefined,
): {
  readonly logins: string[];
  readonly lastApprovedAt?: string;
  readonly stale: readonly { readonly login: string; readonly commitId?: string }[];
  /** Approvals by accounts that may not approve (approvalProblem). */
  readonly notEntitled: readonly { readonly login: string; readonly problem: string }[];
} {
  const last = new Map<string, PullRequestReview>();
  for (const review of reviews) {
    if (review.state === "COMMENTED" || review.state === "PENDING") continue;
    const key = review.login.toLowerCase();
    last.delete(key);
    last.set(key, review);
  }
  const approving = [...last.values()].filter((review) => review.state === "APPROVED");
  const notEntitled = approving.flatMap((review) => {
    const problem = approvalProblem(review);
    return problem === undefined ? [] : [{ login: review.login, problem }];
  });
  const entitled = approving.filter((review) => approvalProblem(review) === undefined);
  const approvals = entitled.filter((review) => head !== undefined && review.commitId === head);
  const stale = entitled
    .filter((review) => !approvals.includes(review))
    .map((review) => ({
      login: review.login,
      ...(review.commitId === undefined ? {} : { commitId: review.commitId }),
    }));
  const times = approvals.flatMap((review) => (review.submittedAt === undefined ? [] : [review.submittedAt]));
  const latest = times.sort((a, b) => Date.parse(a) - Date.parse(b)).at(-1);
  return {
    logins: approvals.map((review) => review.login),
    ...(latest === undefined ? {} : { lastApprovedAt: latest }),
    stale,
    notEntitled,
  };
}
