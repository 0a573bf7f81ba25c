import { UsageError } from "../errors.js";
import { quoteExcerpt } from "../excerpt.js";

/** A GitHub repository, `owner/name`. */
export interface RepoName {
  readonly owner: string;
  readonly name: string;
}

/** GitHub's rules for user, organisation and repository names (a safe subset of what it allows). */
const OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;
const NAME = /^[A-Za-z0-9._-]{1,100}$/;

/**
 * `OWNER/NAME`, or `OWNER` alone with `defaultName` (kpromo's `--fork user` means `user/k8s.io`).
 * Names go into API paths, so anything outside GitHub's alphabet is refused here.
 */
export function parseRepoName(text: string, flag: string, defaultName?: string): RepoName {
  const [owner = "", name = defaultName ?? "", ...rest] = text.split("/");
  if (rest.length > 0 || !OWNER.test(owner) || !NAME.test(name) || name === "." || name === "..") {
    throw new UsageError(
      `${flag} ${quoteExcerpt(text)} is not a GitHub repository (OWNER/NAME${defaultName === undefined ? "" : " or OWNER"})`,
    );
  }
  return { owner, name };
}

export function formatRepoName(repo: RepoName): string {
  return `${repo.owner}/${repo.name}`;
}

/** The API path of a repository, `/repos/OWNER/NAME`. */
export function repoPath(repo: RepoName): string {
  return `/repos/${repo.owner}/${repo.name}`;
}

export function sameRepo(a: RepoName, b: RepoName): boolean {
  return a.owner.toLowerCase() === b.owner.toLowerCase() && a.name.toLowerCase() === b.name.toLowerCase();
}
