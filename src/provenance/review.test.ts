import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { GitHubStandIn, standInReview } from "../../test/support/github-stand-in.js";
import { runTestGit } from "../../test/support/test-git.js";
import { MemoryLogger } from "../log.js";
import { parseDigest } from "../reference/index.js";
import { createHttpStack, Redactor, type HttpStack } from "../registry/index.js";
import { addedInCommits } from "./added-in.js";
import { promotionStatement } from "./promotion-record.js";
import { collectReviewContext, reviewRecordFor, type ReviewContextOptions } from "./review.js";

/**
 * The review facts of a run, from a real git repository with a real merge commit and the CI's
 * environment: a GitHub event file, GitHub's API (a stand-in on 127.0.0.1), Prow's variables.
 */

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const TOKEN = "ghs_review-facts-token-0123456789";
const ORIGIN_SECRET = "ghp_origin-secret-0123456789abcdef";
const IMAGES = "registry.k8s.io/images/app/images.yaml";

let dir: string;
let home: string;
let commits: { alice: string; bob: string; merge: string; base: string };
let standIn: GitHubStandIn;
let http: HttpStack;
let redactor: Redactor;
let logger: MemoryLogger;

function git(who: string, ...args: string[]): string {
  return runTestGit({ cwd: dir, home, who }, ...args).trim();
}

async function write(file: string, text: string): Promise<string> {
  const full = path.join(dir, file);
  await mkdir(path.dirname(full), { recursive: true });
  await writeFile(full, text);
  return full;
}

/**
 * main: Alice adds app v1 (line 3); the feature branch: Bob adds v2 (line 4); a `--no-ff` merge
 * as GitHub and Tide write it, with approval trailers (one of them not a login).
 */
async function makeRepository(): Promise<void> {
  git("Alice", "init", "-q", "-b", "main");
  await write(IMAGES, `- name: app\n  dmap:\n    "${D1}": ["v1"]\n`);
  git("Alice", "add", "-A");
  git("Alice", "commit", "-q", "-m", "app v1");
  const alice = git("Alice", "rev-parse", "HEAD");
  git("Bob", "checkout", "-q", "-b", "feature");
  await write(IMAGES, `- name: app\n  dmap:\n    "${D1}": ["v1"]\n    "${D2}": ["v2"]\n`);
  git("Bob", "commit", "-q", "-am", "app v2");
  const bob = git("Bob", "rev-parse", "HEAD");
  git("Merger", "checkout", "-q", "main");
  git(
    "Merger",
    "merge",
    "--no-ff",
    "-q",
    "feature",
    "-m",
    "Merge pull request #42 from bob/feature",
    "-m",
    "app v2",
    "-m",
    "Approved-by: carol\nReviewed-by: @dave\nReviewed-by: Eve <eve@example.com>",
  );
  git(
    "Merger",
    "remote",
    "add",
    "origin",
    `https://x-access-token:${ORIGIN_SECRET}@github.com/org/manifests.git`,
  );
  commits = { alice, bob, merge: git("Merger", "rev-parse", "HEAD"), base: alice };
}

function options(env: Record<string, string>, withHttp = true): ReviewContextOptions {
  return {
    manifestDir: path.join(dir, "registry.k8s.io"),
    env,
    logger,
    ...(withHttp ? { http: { transport: http.transport, redactor } } : {}),
  };
}

function warnings(): string[] {
  return logger.lines.filter((line) => line.level === "warn").map((line) => line.message);
}

async function eventFile(json: unknown): Promise<string> {
  const file = path.join(home, `event-${Math.random().toString(16).slice(2)}.json`);
  await writeFile(file, typeof json === "string" ? json : JSON.stringify(json));
  return file;
}

function pullRequestEvent(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    action: "synchronize",
    number: 42,
    pull_request: {
      number: 42,
      html_url: "https://github.com/org/manifests/pull/42",
      user: { login: "bob" },
      head: { sha: commits.bob, ref: "feature" },
      base: { sha: commits.base, ref: "main" },
      ...overrides,
    },
  };
}

function actions(extra: Record<string, string>): Record<string, string> {
  return {
    GITHUB_ACTIONS: "true",
    GITHUB_REPOSITORY: "org/manifests",
    GITHUB_SERVER_URL: "https://github.com",
    ...extra,
  };
}

/** A GitHub Actions push run whose event is in `event`, with a token for the API stand-in. */
function pushWithApi(event: string): Record<string, string> {
  return actions({
    GITHUB_EVENT_NAME: "push",
    GITHUB_EVENT_PATH: event,
    GITHUB_TOKEN: TOKEN,
    GITHUB_API_URL: standIn.url,
  });
}

beforeAll(async () => {
  standIn = await GitHubStandIn.start({ token: TOKEN, login: "promoter-bot" });
});
afterAll(async () => {
  await standIn.close();
});
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "review-repo-"));
  home = await mkdtemp(path.join(tmpdir(), "review-home-"));
  await makeRepository();
  standIn.mergedPulls.length = 0;
  standIn.requests.length = 0;
  redactor = new Redactor();
  http = createHttpStack({ redactor });
  logger = new MemoryLogger();
});
afterEach(async () => {
  await http.close();
  await rm(dir, { recursive: true, force: true });
  await rm(home, { recursive: true, force: true });
});

describe("collectReviewContext", () => {
  it("GitHub pull_request event: the pull request from the event file, the merge commit from git", async () => {
    const event = await eventFile(pullRequestEvent());
    const context = await collectReviewContext(
      options(actions({ GITHUB_EVENT_NAME: "pull_request", GITHUB_EVENT_PATH: event })),
    );
    expect(context.ci).toBe("github-actions");
    expect(context.root).toBe(dir);
    expect(context.repository).toBe("https://github.com/org/manifests");
    expect(context.merge).toEqual({
      sha: commits.merge,
      author: "Merger <merger@example.com>",
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) as unknown,
      subject: "Merge pull request #42 from bob/feature",
    });
    expect(context.pullRequests).toEqual([
      {
        number: 42,
        url: "https://github.com/org/manifests/pull/42",
        author: "bob",
        headSha: commits.bob,
        baseRef: "refs/heads/main",
        baseSha: commits.base,
        approvers: [],
      },
    ]);
    // No token: GitHub's API is not asked, and nothing is wrong.
    expect(standIn.requests).toEqual([]);
    expect(warnings()).toEqual([]);
  });

  it("GitHub pull_request_review event without a token: the approval the payload shows", async () => {
    const event = await eventFile({
      ...pullRequestEvent(),
      review: {
        user: { login: "carol" },
        state: "approved",
        submitted_at: "2026-12-05T11:00:00Z",
        commit_id: commits.bob,
        author_association: "MEMBER",
      },
    });
    const context = await collectReviewContext(
      options(actions({ GITHUB_EVENT_NAME: "pull_request_review", GITHUB_EVENT_PATH: event })),
    );
    expect(context.pullRequests[0]).toMatchObject({
      number: 42,
      approvers: [{ name: "carol", uri: "https://github.com/carol" }],
      approvalSource: "github-event",
      reviewTime: "2026-12-05T11:00:00Z",
    });
    expect(warnings()).toEqual([]);

    // An approval of another commit than the head (or of none named) did not see what is there.
    for (const commitId of [commits.alice, undefined]) {
      logger = new MemoryLogger();
      const stale = await eventFile({
        ...pullRequestEvent(),
        review: {
          user: { login: "carol" },
          state: "approved",
          submitted_at: "2026-12-05T11:00:00Z",
          author_association: "MEMBER",
          ...(commitId === undefined ? {} : { commit_id: commitId }),
        },
      });
      const staleContext = await collectReviewContext(
        options(actions({ GITHUB_EVENT_NAME: "pull_request_review", GITHUB_EVENT_PATH: stale })),
      );
      expect(staleContext.pullRequests[0]?.approvers).toEqual([]);
      expect(warnings()).toEqual([
        expect.stringContaining("carol in the event is not of the pull request's head"),
      ]);
    }
  });

  it("GitHub push event: an approval given before the author pushed again is not recorded", async () => {
    standIn.addMergedPull("org/manifests", {
      number: 42,
      author: "bob",
      head: commits.bob,
      base: { ref: "main", sha: commits.base },
      merge: commits.merge,
      reviews: [
        // carol approved the branch as it was before Bob's last commit; erin approved the head.
        standInReview("carol", "APPROVED", "2026-12-05T10:00:00Z", commits.alice),
        standInReview("erin", "APPROVED", "2026-12-05T10:30:00Z", commits.bob),
      ],
    });
    const event = await eventFile({ ref: "refs/heads/main", before: commits.alice, after: commits.merge });
    const context = await collectReviewContext(options(pushWithApi(event)));
    expect(context.pullRequests[0]?.approvers.map((approver) => approver.name)).toEqual(["erin"]);
    expect(warnings()).toEqual([
      `review facts: pull request #42: approvals of an earlier commit than its head ${commits.bob.slice(0, 12)} did not see what was merged; not recorded: carol (of ${commits.alice.slice(0, 12)})`,
    ]);
  });

  it("attributes to the run's pull request only the lines its commits wrote", async () => {
    standIn.addMergedPull("org/manifests", {
      number: 42,
      author: "bob",
      head: commits.bob,
      base: { ref: "main", sha: commits.base },
      merge: commits.merge,
      reviews: [standInReview("erin", "APPROVED", "2026-12-05T10:30:00Z")],
    });
    // The push's `before` is irrelevant: HEAD's first parent is the base of its pull request.
    const event = await eventFile({ ref: "refs/heads/main", before: "0".repeat(40), after: commits.merge });
    const context = await collectReviewContext(options(pushWithApi(event)));
    const file = path.join(dir, IMAGES);
    const added = await addedInCommits(dir, [
      { file, line: 3 },
      { file, line: 4 },
    ]);
    // Line 4 is Bob's, merged by #42; line 3 is Alice's, on main before: #42 did not approve it.
    expect(
      reviewRecordFor(context, { file, line: 4 }, added.get({ file, line: 4 })).pullRequest,
    ).toMatchObject({
      number: 42,
      approvers: [{ name: "erin" }],
    });
    const old = reviewRecordFor(context, { file, line: 3 }, added.get({ file, line: 3 }));
    expect(old.pullRequest).toBeUndefined();
    expect(old.addedIn?.sha).toBe(commits.alice);
    expect(old.merge?.sha).toBe(commits.merge);
  });

  it("GitHub push event with a token: the merged pull request and its approvers from GitHub's API", async () => {
    standIn.addMergedPull("org/manifests", {
      number: 42,
      author: "bob",
      head: commits.bob,
      base: { ref: "main", sha: commits.base },
      merge: commits.merge,
      reviews: [
        standInReview("carol", "APPROVED", "2026-12-05T10:00:00Z"),
        standInReview("dave", "APPROVED", "2026-12-05T10:05:00Z"),
        standInReview("erin", "CHANGES_REQUESTED", "2026-12-05T10:06:00Z"),
        standInReview("erin", "APPROVED", "2026-12-05T10:30:00Z"),
        // A later request for changes withdraws dave's approval; a comment does not withdraw carol's.
        standInReview("dave", "CHANGES_REQUESTED", "2026-12-05T10:40:00Z"),
        standInReview("carol", "COMMENTED", "2026-12-05T10:50:00Z"),
        standInReview("frank", "APPROVED", "2026-12-05T10:51:00Z"),
        standInReview("frank", "DISMISSED", "2026-12-05T10:52:00Z"),
      ],
    });
    const event = await eventFile({ ref: "refs/heads/main", after: commits.merge });
    const context = await collectReviewContext(options(pushWithApi(event)));
    expect(warnings()).toEqual([]);
    expect(context.pullRequests).toEqual([
      {
        number: 42,
        url: "https://github.com/org/manifests/pull/42",
        author: "bob",
        headSha: commits.bob,
        baseRef: "refs/heads/main",
        baseSha: commits.base,
        approvers: [
          { name: "carol", uri: "https://github.com/carol" },
          { name: "erin", uri: "https://github.com/erin" },
        ],
        approvalSource: "github-api",
        reviewTime: "2026-12-05T10:30:00Z",
      },
    ]);
    expect(standIn.requests.map((request) => request.path)).toEqual([
      `/repos/org/manifests/commits/${commits.merge}/pulls`,
      "/repos/org/manifests/pulls/42/reviews",
    ]);
    expect(standIn.requests.every((request) => request.authorization === `Bearer ${TOKEN}`)).toBe(true);

    // The record of Bob's line: the commit that wrote it, the merge, the pull request; in the statement.
    const file = path.join(dir, IMAGES);
    const addedIn = await addedInCommits(dir, [{ file, line: 4 }]);
    const record = reviewRecordFor(context, { file, line: 4 }, addedIn.get({ file, line: 4 }));
    expect(record).toMatchObject({
      manifest: { path: IMAGES, line: 4 },
      repository: "https://github.com/org/manifests",
      addedIn: { sha: commits.bob, author: "Bob <bob@example.com>", subject: "app v2" },
      merge: { sha: commits.merge },
      pullRequest: { number: 42 },
    });
    const statement = promotionStatement({
      digest: parseDigest(D2),
      srcRef: `staging.example/app@${D2}`,
      dstRef: `registry.example/app@${D2}`,
      timestamp: "2026-12-05T12:00:00Z",
      promoterVersion: "1.0.0",
      review: record,
    });
    expect(JSON.stringify(statement)).toContain('"reviewers":[{"name":"carol"');
  });

  it("GitHub push event with a paginated review list: the last page decides", async () => {
    const reviews = Array.from({ length: 150 }, (_, index) =>
      standInReview(`user${index}`, "APPROVED", "2026-12-05T10:00:00Z"),
    );
    reviews.push(standInReview("user3", "CHANGES_REQUESTED", "2026-12-05T11:00:00Z"));
    standIn.addMergedPull("org/manifests", {
      number: 42,
      author: "bob",
      head: commits.bob,
      base: { ref: "main", sha: commits.base },
      merge: commits.merge,
      reviews,
    });
    const event = await eventFile({ ref: "refs/heads/main", after: commits.merge });
    const context = await collectReviewContext(options(pushWithApi(event)));
    const names = context.pullRequests[0]?.approvers.map((approver) => approver.name) ?? [];
    expect(names).toHaveLength(149);
    expect(names).not.toContain("user3");
  });

  it("GitHub push event without a token: no pull request (a commit message proves none), the commits", async () => {
    const event = await eventFile({ ref: "refs/heads/main", after: commits.merge });
    const context = await collectReviewContext(
      options(actions({ GITHUB_EVENT_NAME: "push", GITHUB_EVENT_PATH: event })),
    );
    // HEAD's subject says "Merge pull request #42": text anyone can write.
    expect(context.pullRequests).toEqual([]);
    expect(context.merge?.sha).toBe(commits.merge);
    expect(warnings()).toEqual([
      `review facts: no GITHUB_TOKEN: the pull request ${commits.merge} merged is not looked up in GitHub's API, and a commit message proves none; only the commits are recorded`,
    ]);
    expect(standIn.requests).toEqual([]);
  });

  it("an API error is a warning, and the promotion's record keeps what is known", async () => {
    standIn.answerNext({
      method: "GET",
      path: /\/commits\//,
      // A token without the pull-requests permission (not retried, unlike a 5xx).
      status: 403,
      body: { message: "Resource not accessible by integration" },
    });
    const event = await eventFile({ ref: "refs/heads/main", after: commits.merge });
    const context = await collectReviewContext(options(pushWithApi(event)));
    expect(warnings()).toEqual([
      expect.stringMatching(
        /^review facts: the pull request of [0-9a-f]{40} is not read from GitHub's API: .*HTTP 403: Resource not accessible by integration/,
      ),
    ]);
    // No pull request is claimed; the commits are recorded.
    expect(context.pullRequests).toEqual([]);
    expect(context.merge?.sha).toBe(commits.merge);
  });

  it("Prow postsubmit without a token: the repository and commits; neither the subject's pull request nor trailers", async () => {
    const context = await collectReviewContext(
      options({
        PROW_JOB_ID: "0b2f7c1e",
        JOB_TYPE: "postsubmit",
        REPO_OWNER: "org",
        REPO_NAME: "manifests",
        PULL_BASE_REF: "main",
        PULL_BASE_SHA: commits.merge,
        PULL_REFS: `main:${commits.merge}`,
      }),
    );
    expect(context.ci).toBe("prow");
    expect(context.repository).toBe("https://github.com/org/manifests");
    // The merge message names #42 and has Approved-by/Reviewed-by trailers: the pull request's
    // title is part of that message, so its author could have written them.
    expect(context.pullRequests).toEqual([]);
    expect(context.merge?.sha).toBe(commits.merge);
    expect(warnings()).toEqual([expect.stringContaining("no GITHUB_TOKEN")]);
  });

  it("Prow postsubmit with a token: GitHub's API, not the trailers", async () => {
    standIn.addMergedPull("org/manifests", {
      number: 42,
      author: "bob",
      head: commits.bob,
      base: { ref: "main", sha: commits.base },
      merge: commits.merge,
      reviews: [standInReview("owner1", "APPROVED", "2026-12-05T10:00:00Z")],
    });
    const context = await collectReviewContext(
      options({
        JOB_TYPE: "postsubmit",
        REPO_OWNER: "org",
        REPO_NAME: "manifests",
        PULL_BASE_REF: "main",
        PULL_BASE_SHA: commits.merge,
        GITHUB_TOKEN: TOKEN,
        GITHUB_API_URL: standIn.url,
      }),
    );
    expect(warnings()).toEqual([]);
    expect(context.pullRequests[0]).toMatchObject({
      number: 42,
      author: "bob",
      approvers: [{ name: "owner1" }],
      approvalSource: "github-api",
    });
  });

  it("Prow batch: each edge gets the pull request whose commits added it", async () => {
    git("Carl", "checkout", "-q", "-b", "other", commits.alice);
    await write(IMAGES, `- name: app\n  dmap:\n    "${D1}": ["v1", "stable"]\n`);
    git("Carl", "commit", "-q", "-am", "tag stable");
    const carl = git("Carl", "rev-parse", "HEAD");
    git("Carl", "checkout", "-q", "main");
    const context = await collectReviewContext(
      options({
        JOB_TYPE: "batch",
        REPO_OWNER: "org",
        REPO_NAME: "manifests",
        PULL_BASE_REF: "main",
        PULL_BASE_SHA: commits.alice,
        PULL_REFS: `main:${commits.alice},42:${commits.bob},43:${carl}:other`,
      }),
    );
    expect(context.pullRequests.map((pull) => [pull.number, pull.headSha])).toEqual([
      [42, commits.bob],
      [43, carl],
    ]);
    const file = path.join(dir, IMAGES);
    const bob = reviewRecordFor(context, { file, line: 4 }, { sha: commits.bob });
    const mystery = reviewRecordFor(context, { file, line: 3 }, { sha: commits.alice });
    expect(bob.pullRequest?.number).toBe(42);
    expect(reviewRecordFor(context, { file, line: 3 }, { sha: carl }).pullRequest?.number).toBe(43);
    // A line of the base belongs to neither pull request.
    expect(mystery.pullRequest).toBeUndefined();
  });

  it("Prow PULL_REFS is parsed strictly: a malformed value is a warning, nothing is guessed", async () => {
    const context = await collectReviewContext(
      options({
        JOB_TYPE: "batch",
        REPO_OWNER: "org",
        REPO_NAME: "manifests",
        PULL_REFS: `main:${commits.alice},42:${commits.bob},x43:zz`,
      }),
    );
    expect(context.pullRequests).toEqual([]);
    expect(warnings()[0]).toBe('review facts: PULL_REFS: "x43:zz" is not NUMBER:SHA[:REF]');
  });

  it("no CI at all: the merge commit and the origin's URL without its credentials, one warning", async () => {
    const context = await collectReviewContext(options({}));
    expect(context).toMatchObject({
      ci: "none",
      root: dir,
      repository: "https://github.com/org/manifests",
      merge: { sha: commits.merge },
      pullRequests: [],
    });
    expect(JSON.stringify(context)).not.toContain(ORIGIN_SECRET);
    expect(JSON.stringify(context)).not.toContain("x-access-token");
    expect(warnings()).toEqual([
      "review facts: not in GitHub Actions or Prow: no pull request or approvers are recorded, only the manifests' commits",
    ]);
  });

  it("outside git: the manifest path from the manifest folder, a warning, no failure", async () => {
    const outside = await mkdtemp(path.join(tmpdir(), "review-nogit-"));
    try {
      const file = path.join(outside, "images", "app", "images.yaml");
      const context = await collectReviewContext({ manifestDir: outside, env: {}, logger });
      expect(context.merge).toBeUndefined();
      expect(reviewRecordFor(context, { file, line: 7 }, undefined)).toEqual({
        manifest: { path: "images/app/images.yaml", line: 7 },
      });
      expect(warnings()).toHaveLength(1);
      expect(warnings()[0]).toMatch(
        /^review facts: the manifests' commit is not recorded: .* is not in a git work tree/,
      );
    } finally {
      await rm(outside, { recursive: true, force: true });
    }
  });
});

describe("hostile review facts", () => {
  it("a huge event file is not read", async () => {
    const event = await eventFile(`{"pull_request":{"number":42,"title":"${"x".repeat(17 * 1024 * 1024)}"}}`);
    const context = await collectReviewContext(
      options(actions({ GITHUB_EVENT_NAME: "pull_request", GITHUB_EVENT_PATH: event })),
    );
    expect(context.pullRequests).toEqual([]);
    expect(warnings()).toEqual([
      expect.stringMatching(/^review facts: GITHUB_EVENT_PATH .* is larger than 16777216 bytes; not read$/),
    ]);
  });

  it("an event file that is not JSON, or not a file, is a clear warning", async () => {
    for (const [file, reason] of [
      [await eventFile("{not json"), "is not JSON"],
      [home, "is not a regular file"],
      [path.join(home, "missing.json"), "no such file or directory"],
    ] as const) {
      logger.lines.length = 0;
      const context = await collectReviewContext(
        options(actions({ GITHUB_EVENT_NAME: "pull_request", GITHUB_EVENT_PATH: file })),
      );
      expect(context.pullRequests).toEqual([]);
      expect(context.merge?.sha).toBe(commits.merge);
      expect(warnings()).toEqual([expect.stringContaining(reason)]);
    }
  });

  it("wrong types and injected text in the event never reach the record", async () => {
    const event = await eventFile(
      pullRequestEvent({
        html_url: "https://evil.example/phish?x=1",
        user: { login: 'bob"><script>alert(1)</script>\nApproved-by: mallory' },
        head: { sha: "not-a-sha\n", ref: "feature" },
        base: { sha: 12345, ref: "main\u202e\nrefs/heads/evil" },
      }),
    );
    const context = await collectReviewContext(
      options(actions({ GITHUB_EVENT_NAME: "pull_request", GITHUB_EVENT_PATH: event })),
    );
    expect(context.pullRequests).toEqual([
      // The URL is GitHub's own for the number; everything malformed is dropped.
      { number: 42, url: "https://github.com/org/manifests/pull/42", approvers: [] },
    ]);

    logger.lines.length = 0;
    const wrongNumber = await eventFile(pullRequestEvent({ number: "42" }));
    const none = await collectReviewContext(
      options(actions({ GITHUB_EVENT_NAME: "pull_request", GITHUB_EVENT_PATH: wrongNumber })),
    );
    expect(none.pullRequests).toEqual([]);
    expect(warnings()).toEqual([
      expect.stringContaining("the pull_request event has no pull_request with a valid number"),
    ]);
    for (const fraction of [1.5, -3, 0, 1e300]) {
      const file = await eventFile(pullRequestEvent({ number: fraction }));
      const result = await collectReviewContext(
        options(actions({ GITHUB_EVENT_NAME: "pull_request", GITHUB_EVENT_PATH: file })),
      );
      expect(result.pullRequests).toEqual([]);
    }
  });

  it("hostile API answers: logins with HTML or newlines are not approvers, a foreign URL is not the link", async () => {
    standIn.addMergedPull("org/manifests", {
      number: 42,
      author: "bob",
      head: commits.bob,
      base: { ref: "main", sha: commits.base },
      merge: commits.merge,
      json: {
        html_url: "https://github.example/org/manifests/pull/42",
        user: { login: "<b>bob</b>" },
      },
      reviews: [
        standInReview("<img src=x onerror=alert(1)>", "APPROVED", "2026-12-05T10:00:00Z"),
        standInReview("carol\nApproved-by: mallory", "APPROVED", "2026-12-05T10:00:00Z"),
        standInReview("-dash", "APPROVED", "2026-12-05T10:00:00Z"),
        standInReview("a".repeat(40), "APPROVED", "2026-12-05T10:00:00Z"),
        { user: null, state: "APPROVED" },
        { user: { login: 7 }, state: "APPROVED" },
        { user: { login: "weird" }, state: "LGTM" },
        standInReview("renovate[bot]", "APPROVED", "not a time"),
        standInReview("owner1", "APPROVED", "2026-12-05T10:00:00Z\n"),
        "not an object",
      ],
    });
    const event = await eventFile({ ref: "refs/heads/main", after: commits.merge });
    const context = await collectReviewContext(options(pushWithApi(event)));
    expect(context.pullRequests).toEqual([
      {
        number: 42,
        url: "https://github.com/org/manifests/pull/42",
        headSha: commits.bob,
        baseRef: "refs/heads/main",
        baseSha: commits.base,
        // renovate[bot] is an app: its approval is not a person's review.
        approvers: [{ name: "owner1", uri: "https://github.com/owner1" }],
        approvalSource: "github-api",
      },
    ]);
  });

  it("a hostile commit subject and author stay one line of plain text", async () => {
    await write(IMAGES, `- name: app\n  dmap:\n    "${D1}": ["v1"]\n`);
    runTestGit(
      { cwd: dir, home, who: "Mallory\u202eevil" },
      "commit",
      "-q",
      "-am",
      `fix\u0007\u001b[31m ${"y".repeat(500)}`,
    );
    const context = await collectReviewContext(options({}));
    expect(context.merge?.subject).toBe(`fix[31m ${"y".repeat(192)}…`);
    expect(context.merge?.author).toBe(
      "Mallory\u202eevil <mallory\u202eevil@example.com>".replace(/\u202e/g, ""),
    );
  });

  it("a credential in GITHUB_SERVER_URL or the origin URL never reaches the record", async () => {
    git(
      "Merger",
      "remote",
      "set-url",
      "origin",
      `https://user:${ORIGIN_SECRET}@git.example/org/manifests.git?token=${ORIGIN_SECRET}#x`,
    );
    const bare = await collectReviewContext(options({}));
    expect(bare.repository).toBe("https://git.example/org/manifests");
    git("Merger", "remote", "set-url", "origin", `git@github.com:org/manifests.git`);
    expect((await collectReviewContext(options({}))).repository).toBe("ssh://github.com/org/manifests");
    git("Merger", "remote", "set-url", "origin", "/srv/git/manifests.git");
    expect((await collectReviewContext(options({}))).repository).toBeUndefined();

    const event = await eventFile(pullRequestEvent());
    const context = await collectReviewContext(
      options(
        actions({
          GITHUB_SERVER_URL: `https://x:${ORIGIN_SECRET}@github.com`,
          GITHUB_EVENT_NAME: "pull_request",
          GITHUB_EVENT_PATH: event,
        }),
      ),
    );
    expect(context.repository).toBe("https://github.com/org/manifests");
    expect(JSON.stringify(context)).not.toContain(ORIGIN_SECRET);
    expect(logger.lines.map((line) => line.message).join("\n")).not.toContain(ORIGIN_SECRET);
  });
});
