/**
 * GitHub for `promoter pr`: a small REST client over the promoter's HTTP stack and the workflow
 * that opens a pull request adding an image to a project's images.yaml (kpromo's `pr`); and for
 * the promotion attestation, who approved the pull request that changed the manifests.
 */
export {
  DEFAULT_GITHUB_API_URL,
  GITHUB_TOKEN_VARIABLE,
  GitHubClient,
  GitHubError,
  MAX_RATE_LIMIT_WAIT_MS,
  parseGitHubApiUrl,
  type GitHubClientOptions,
} from "./client.js";
export {
  defaultBranchName,
  openPromotionPullRequest,
  parseReviewers,
  type PlannedRequest,
  type PromotionPullRequest,
  type PromotionPullRequestOptions,
} from "./pull-request.js";
export {
  approvalProblem,
  currentApprovals,
  isBranchName,
  isCommitSha,
  isGitHubLogin,
  isPositiveInteger,
  isTimestamp,
  MAX_REVIEW_PAGES,
  pullRequestReviews,
  pullRequestsOfCommit,
  pullRequestUrl,
  readPullRequest,
  type GitHubPullRequest,
  type PullRequestReview,
} from "./pull-request-reviews.js";
export { formatRepoName, parseRepoName, type RepoName } from "./repo-name.js";
export { unifiedDiff } from "./text-diff.js";
