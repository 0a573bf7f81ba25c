import { constants } from "node:fs";
import { open } from "node:fs/promises";
import { describeErrno } from "../errors.js";
import { escapeExcerpt } from "../excerpt.js";
import {
  isCommitSha,
  isGitHubLogin,
  isTimestamp,
  readPullRequest,
  type GitHubPullRequest,
  type RepoName,
} from "../github/index.js";
import { isJsonObject } from "../json-shape.js";
import { branchRef } from "./review-facts.js";

/**
 * The event that started a GitHub Actions run, from the JSON file `GITHUB_EVENT_PATH` names
 * (https://docs.github.com/en/actions/writing-workflows/choosing-when-your-workflow-runs/events-that-trigger-workflows).
 * Only the few fields a review record needs are read, each validated; the file itself is bounded,
 * since a workflow step before ours could have written anything there.
 */

/** A push event of 2,000 commits is a few MB; a file past this is not an event. */
export const MAX_EVENT_FILE_BYTES = 16 * 1024 * 1024;

/** Events whose payload carries the pull request under review. */
const PULL_REQUEST_EVENTS = new Set(["pull_request", "pull_request_target", "pull_request_review"]);

export type GitHubEvent =
  | {
      readonly kind: "pull-request";
      readonly pull: GitHubPullRequest;
      /** A `pull_request_review` event that approves: the one approval the payload itself shows. */
      readonly approval?: {
        readonly login: string;
        readonly submittedAt?: string;
        readonly commitId?: string;
        readonly association?: string;
        readonly bot: boolean;
      };
    }
  | { readonly kind: "push"; readonly ref?: string; readonly after?: string }
  | { readonly kind: "other" };

/** The event's facts, or a warning saying why the file cannot be read as one. */
export async function readGitHubEvent(
  eventName: string,
  file: string,
  repo: RepoName,
  server: string,
): Promise<GitHubEvent | { readonly warning: string }> {
  const where = `GITHUB_EVENT_PATH ${escapeExcerpt(file, 200)}`;
  if (!PULL_REQUEST_EVENTS.has(eventName) && eventName !== "push") return { kind: "other" };
  let text: string;
  try {
    // Non-blocking: opening a named pipe for reading would wait for a writer forever; opened so,
    // it is refused below as not a regular file. (A regular file reads the same either way.)
    const handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const info = await handle.stat();
      if (!info.isFile()) return { warning: `${where} is not a regular file` };
      if (info.size > MAX_EVENT_FILE_BYTES) {
        return { warning: `${where} is larger than ${MAX_EVENT_FILE_BYTES} bytes; not read` };
      }
      // Read no more than the limit even if the file grows after the check.
      const buffer = Buffer.alloc(MAX_EVENT_FILE_BYTES + 1);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      if (bytesRead > MAX_EVENT_FILE_BYTES) {
        return { warning: `${where} is larger than ${MAX_EVENT_FILE_BYTES} bytes; not read` };
      }
      text = buffer.subarray(0, bytesRead).toString("utf8");
    } finally {
      await handle.close();
    }
  } catch (error) {
    return { warning: `${where}: ${describeErrno(error)}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { warning: `${where} is not JSON` };
  }
  if (!isJsonObject(json)) return { warning: `${where} is not a JSON object` };
  if (eventName === "push") {
    const ref = typeof json.ref === "string" ? branchRef(json.ref) : undefined;
    return {
      kind: "push",
      ...(ref === undefined ? {} : { ref }),
      ...(isCommitSha(json.after) ? { after: json.after } : {}),
    };
  }
  const pull = readPullRequest(json.pull_request, repo, server);
  if (pull === undefined) {
    return { warning: `${where}: the ${eventName} event has no pull_request with a valid number` };
  }
  const review = isJsonObject(json.review) ? json.review : undefined;
  const reviewer = isJsonObject(review?.user) ? review.user.login : undefined;
  // Webhook payloads spell review states in lower case, the REST API in upper case.
  const approves =
    eventName === "pull_request_review" &&
    typeof review?.state === "string" &&
    review.state.toUpperCase() === "APPROVED" &&
    isGitHubLogin(reviewer);
  return {
    kind: "pull-request",
    pull,
    ...(approves
      ? {
          approval: {
            login: reviewer,
            ...(isTimestamp(review.submitted_at) ? { submittedAt: review.submitted_at } : {}),
            ...(isCommitSha(review.commit_id) ? { commitId: review.commit_id } : {}),
            ...(typeof review.author_association === "string" &&
            /^[A-Z_]{1,40}$/.test(review.author_association.toUpperCase())
              ? { association: review.author_association.toUpperCase() }
              : {}),
            bot: reviewer.endsWith("[bot]") || (isJsonObject(review.user) && review.user.type === "Bot"),
          },
        }
      : {}),
  };
}
