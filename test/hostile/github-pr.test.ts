import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { GitHubStandIn } from "../support/github-stand-in.js";
import { requireBuiltCli, runPromoter, STACK_LINE, type PromoterRun } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { seedRegistry } from "../support/registry-judge.js";
import { makeImage } from "../support/test-images.js";

/**
 * `promoter pr` end to end: the real CLI as a child process against a stand-in of the GitHub
 * REST API (test/support/github-stand-in.ts) and a real staging registry. The happy path (fork
 * created, branch, commit, pull request, reviewers), a second run that writes nothing, a dry run
 * that sends no write request, and a hostile API: a token refused, a branch created in between,
 * a redirect to another origin (which must not receive the token), rate limits. Every run ends
 * with one clear line, no stack trace, and never prints the token.
 */

const TOKEN = "ghp_StandInSecretToken0123456789abcdefXYZ";
const LOGIN = "maintainer";
const UPSTREAM = "kubernetes/k8s.io";
const FILE = "registry.k8s.io/images/demo/images.yaml";

const release = makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: "pr-release" });
const older = makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: "pr-older" });

let work: string;
let staging: TestRegistry;
let github: GitHubStandIn;

const IMAGES = () => `# Images of the demo project.
- name: app   # the main image
  dmap:
    "${older.digest}": ["v0.9.0"]
`;

function manifest(): string {
  return `registries:\n- name: ${staging.host}/staging\n  src: true\n- name: ${staging.host}/prod\n  service-account: prod@example.iam.gserviceaccount.com\n`;
}

function pr(
  args: readonly string[],
  env: Record<string, string> = { GITHUB_TOKEN: TOKEN },
): Promise<PromoterRun> {
  return runPromoter(["pr", "--github-api-url", github.url, "--project", "demo", "--image", "app", ...args], {
    cwd: work,
    env,
  });
}

/** One clear line on failure, never a stack trace or an internal error, never the token. */
function expectClean(run: PromoterRun): void {
  const all = `${run.stdout}\n${run.stderr}`;
  if (process.env.HOSTILE_TRACE) process.stdout.write(`----- exit ${run.status} in ${run.ms} ms\n${all}\n`);
  expect(all).not.toMatch(STACK_LINE);
  expect(all).not.toMatch(/internal error|This is a bug/);
  expect(all).not.toContain(TOKEN);
  expect(all).not.toContain(Buffer.from(TOKEN).toString("base64"));
}

function expectOneErrorLine(run: PromoterRun, status: number, message: RegExp): void {
  expectClean(run);
  expect(run.status, run.stderr).toBe(status);
  const lines = run.stderr.trim().split("\n");
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(message);
}

beforeAll(async () => {
  requireBuiltCli();
  staging = await startRegistry();
  await seedRegistry(staging.url, "staging/app", [
    { content: release, tags: ["v1.0.0"] },
    { content: older, tags: ["v0.9.0"] },
  ]);
}, 60_000);
afterAll(async () => {
  await staging.stop();
});

beforeEach(async () => {
  work = await mkdtemp(path.join(tmpdir(), "promoter-pr-"));
  github = await GitHubStandIn.start({ token: TOKEN, login: LOGIN });
  github.addRepo(UPSTREAM, {
    "README.md": "k8s.io\n",
    "registry.k8s.io/manifests/demo/promoter-manifest.yaml": manifest(),
    "registry.k8s.io/images/demo/images.yaml": IMAGES(),
    "registry.k8s.io/manifests/other/promoter-manifest.yaml": manifest()
      .replaceAll("/staging", "/other-staging")
      .replaceAll("/prod", "/other-prod"),
    "registry.k8s.io/images/other/images.yaml":
      '- name: tool\n  dmap:\n    "sha256:' + "b".repeat(64) + '": ["v1"]\n',
  });
});
afterEach(async () => {
  await github.close();
  await rm(work, { recursive: true, force: true });
});

describe("promoter pr", () => {
  it("forks, commits the edited images.yaml on a branch, opens the pull request and requests reviews", async () => {
    const run = await pr(["--tag", "v1.0.0", "--reviewers", "alice,@kubernetes/release-engineering"]);
    expectClean(run);
    expect(run.status, run.stderr).toBe(0);

    const fork = github.repo(`${LOGIN}/k8s.io`);
    expect(fork?.parent).toBe(UPSTREAM);
    const branch = "demo-app-v1.0.0-image-promotion";
    const committed = github.fileAt(`${LOGIN}/k8s.io`, branch, FILE);
    expect(committed).toBeDefined();
    // The file keeps its layout: the upstream text with one added line.
    const before = IMAGES().split("\n");
    const after = (committed ?? "").split("\n");
    expect(after.filter((line) => !before.includes(line))).toEqual([`    "${release.digest}": ["v1.0.0"]`]);
    expect(parse(committed ?? "")).toEqual([
      { name: "app", dmap: { [older.digest]: ["v0.9.0"], [release.digest]: ["v1.0.0"] } },
    ]);
    // One commit on upstream's head, changing that file only.
    const head = fork?.refs.get(branch) ?? "";
    const commit = github.commitOf(head);
    expect(commit.parents).toEqual([github.repo(UPSTREAM)?.refs.get("main")]);
    expect(commit.message).toBe("Image promotion for demo app v1.0.0");
    expect(github.fileAt(`${LOGIN}/k8s.io`, branch, "README.md")).toBe("k8s.io\n");

    expect(github.pulls).toHaveLength(1);
    const pull = github.pulls[0];
    expect(pull?.head).toBe(`${LOGIN}:${branch}`);
    expect(pull?.base).toBe("main");
    expect(pull?.repo).toBe(UPSTREAM);
    expect(pull?.title).toBe("Image promotion for demo app v1.0.0");
    expect(pull?.body).toContain(`| \`app\` | \`${release.digest}\` | \`v1.0.0\` |`);
    expect(pull?.body).toContain(`\`${FILE}\``);
    expect(pull?.body).toContain(`${staging.host}/staging/app`);
    expect(pull?.reviewers).toEqual(["alice"]);
    expect(pull?.teams).toEqual(["release-engineering"]);
    expect(run.stdout).toContain("reviews requested: alice, kubernetes/release-engineering");
    expect(run.stdout).toContain(
      "pull request: https://github.example/kubernetes/k8s.io/pull/1 (#1, opened)",
    );
    // The token went with every request, to the stand-in only.
    expect(github.requests.every((request) => request.authorization === `Bearer ${TOKEN}`)).toBe(true);
  });

  it("a second run finds the branch and the pull request and writes nothing", async () => {
    const first = await pr(["--tag", "v1.0.0", "--reviewers", "alice"]);
    expect(first.status, first.stderr).toBe(0);
    const writes = github.writes().length;

    const again = await pr(["--tag", "v1.0.0", "--reviewers", "alice"]);
    expectClean(again);
    expect(again.status, again.stderr).toBe(0);
    expect(github.writes()).toHaveLength(writes);
    expect(again.stdout).toContain("(exists and carries the change)");
    expect(again.stdout).toContain("(#1, already open)");
    expect(github.pulls).toHaveLength(1);
  });

  it("a run after the pull request lost its reviewer asks again, without a new commit or pull request", async () => {
    const first = await pr(["--tag", "v1.0.0"]);
    expect(first.status, first.stderr).toBe(0);
    const writes = github.writes().length;
    const again = await pr(["--tag", "v1.0.0", "--reviewers", "bob"]);
    expect(again.status, again.stderr).toBe(0);
    expect(
      github
        .writes()
        .slice(writes)
        .map((request) => `${request.method} ${request.path}`),
    ).toEqual(["POST /repos/kubernetes/k8s.io/pulls/1/requested_reviewers"]);
    expect(github.pulls[0]?.reviewers).toEqual(["bob"]);
  });

  it("reads a tree at the repository's root and creates the fork in an organisation (--fork ORG/NAME)", async () => {
    github.addRepo("example-org/promotion", {
      "manifests/demo/promoter-manifest.yaml": manifest(),
      "images/demo/images.yaml": IMAGES(),
    });
    const run = await pr([
      "--tag",
      "v1.0.0",
      "--upstream",
      "example-org/promotion",
      "--thin-manifest-dir",
      ".",
      "--fork",
      "team-org/promo-fork",
      "--branch",
      "hello/v1",
    ]);
    expectClean(run);
    expect(run.status, run.stderr).toBe(0);
    expect(github.repo("team-org/promo-fork")?.parent).toBe("example-org/promotion");
    expect(github.fileAt("team-org/promo-fork", "hello/v1", "images/demo/images.yaml")).toContain(
      `"${release.digest}": ["v1.0.0"]`,
    );
    expect(github.pulls.map((pull) => [pull.repo, pull.head])).toEqual([
      ["example-org/promotion", "team-org:hello/v1"],
    ]);
  });

  it("waits for a new fork that GitHub has not finished making before writing to it", async () => {
    // The first 404 is the read phase's (no fork yet); the second comes right after the fork was asked for.
    github.answerNext({
      method: "GET",
      path: /^\/repos\/maintainer\/k8s\.io$/,
      status: 404,
      body: { message: "Not Found" },
      times: 2,
    });
    const run = await pr(["--tag", "v1.0.0"]);
    expectClean(run);
    expect(run.status, run.stderr).toBe(0);
    const order = github.requests.map((request) => `${request.method} ${request.path}`);
    const forked = order.indexOf("POST /repos/kubernetes/k8s.io/forks");
    expect(order.slice(forked + 1, forked + 4)).toEqual([
      "GET /repos/maintainer/k8s.io",
      "GET /repos/maintainer/k8s.io",
      "POST /repos/maintainer/k8s.io/git/trees",
    ]);
    expect(github.pulls).toHaveLength(1);
  });

  it("reports GitHub's own message for a 422 that is not a branch already there", async () => {
    github.addFork(`${LOGIN}/k8s.io`, UPSTREAM);
    github.answerNext({
      method: "POST",
      path: /\/git\/refs$/,
      status: 422,
      body: { message: "Object does not exist" },
    });
    const run = await pr(["--tag", "v1.0.0"]);
    expectOneErrorLine(
      run,
      2,
      /^promoter pr: error\[github-http\]: POST \/repos\/maintainer\/k8s\.io\/git\/refs: HTTP 422: Object does not exist$/,
    );
    expect(github.pulls).toEqual([]);
  });

  it("--dry-run shows the branch, the diff and the requests, and sends no write request", async () => {
    const run = await pr(["--tag", "v1.0.0", "--reviewers", "alice", "--dry-run"]);
    expectClean(run);
    expect(run.status, run.stderr).toBe(0);
    expect(github.writes()).toEqual([]);
    expect(github.repo(`${LOGIN}/k8s.io`)).toBeUndefined();
    expect(run.stdout).toContain(`branch: ${LOGIN}/k8s.io:demo-app-v1.0.0-image-promotion`);
    expect(run.stdout).toContain(`  +++ b/${FILE}`);
    expect(run.stdout).toContain(`  +    "${release.digest}": ["v1.0.0"]`);
    expect(run.stdout).toContain("  POST /repos/kubernetes/k8s.io/forks");
    expect(run.stdout).toContain(`  POST /repos/${LOGIN}/k8s.io/git/commits`);
    expect(run.stdout).toContain("  POST /repos/kubernetes/k8s.io/pulls ");
    expect(run.stdout).toContain("  POST /repos/kubernetes/k8s.io/pulls/{number}/requested_reviewers");
  });

  it("does nothing when upstream already lists the image with those tags", async () => {
    const run = await pr(["--tag", "v0.9.0"]);
    expectClean(run);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/already lists app@sha256:[0-9a-f]{64} with v0\.9\.0 on main; nothing to do/);
    expect(github.writes()).toEqual([]);
  });

  it("refuses a tag that already points at another digest, as manifest add does", async () => {
    const run = await pr(["--digest", release.digest, "--tag", "v0.9.0"]);
    expectOneErrorLine(
      run,
      1,
      /^promoter pr: refused: .*\/app:v0\.9\.0 already points at sha256:[0-9a-f]{64} at registry\.k8s\.io\/images\/demo\/images\.yaml:4:/,
    );
    expect(github.writes()).toEqual([]);
  });

  it("uses an existing fork, and refuses a repository that is not a fork of upstream", async () => {
    github.addFork(`${LOGIN}/k8s.io`, UPSTREAM);
    const run = await pr(["--tag", "v1.0.0"]);
    expect(run.status, run.stderr).toBe(0);
    expect(github.writes().map((request) => request.path)).not.toContain("/repos/kubernetes/k8s.io/forks");

    github.addRepo("someone/k8s.io", { "README.md": "not a fork\n" });
    const other = await pr(["--tag", "v1.0.0", "--fork", "someone"]);
    expectOneErrorLine(
      other,
      1,
      /^promoter pr: refused: someone\/k8s\.io is not a fork of kubernetes\/k8s\.io/,
    );
  });

  it("refuses a branch of that name that carries another change", async () => {
    github.addFork(`${LOGIN}/k8s.io`, UPSTREAM);
    const fork = github.repo(`${LOGIN}/k8s.io`);
    fork?.refs.set("demo-app-v1.0.0-image-promotion", fork.refs.get("main") ?? "");
    const run = await pr(["--tag", "v1.0.0"]);
    expectOneErrorLine(
      run,
      1,
      /refused: branch demo-app-v1\.0\.0-image-promotion already exists in maintainer\/k8s\.io .* --branch$/,
    );
    expect(github.pulls).toEqual([]);
  });

  it('a 422 "Reference already exists" on a branch that does not carry the change is one clear refusal', async () => {
    github.addFork(`${LOGIN}/k8s.io`, UPSTREAM);
    github.answerNext({
      method: "POST",
      path: /\/git\/refs$/,
      status: 422,
      body: { message: "Reference already exists" },
    });
    const run = await pr(["--tag", "v1.0.0"]);
    expectOneErrorLine(run, 1, /refused: branch demo-app-v1\.0\.0-image-promotion already exists/);
    expect(github.pulls).toEqual([]);
  });

  it("without GITHUB_TOKEN, or with a token GitHub refuses, says so in one line", async () => {
    const missing = await pr(["--tag", "v1.0.0"], {});
    expectOneErrorLine(missing, 2, /^promoter pr: error\[github-auth\]: set GITHUB_TOKEN/);
    expect(github.requests).toEqual([]);

    github.answerNext({ method: "GET", path: /^\/user$/, status: 401, body: { message: "Bad credentials" } });
    const refused = await pr(["--tag", "v1.0.0"]);
    expectOneErrorLine(
      refused,
      2,
      /^promoter pr: error\[github-auth\]: GET \/user: GitHub refused the token in GITHUB_TOKEN \(HTTP 401: Bad credentials\)$/,
    );
  });

  it("never sends the token to another origin a redirect points at", async () => {
    const seen: IncomingHttpHeaders[] = [];
    const elsewhere = createServer((request, response) => {
      seen.push(request.headers);
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ login: "elsewhere" }));
    });
    await new Promise<void>((resolve) => elsewhere.listen(0, "127.0.0.1", resolve));
    try {
      const port = (elsewhere.address() as AddressInfo).port;
      github.answerNext({
        method: "GET",
        path: /^\/user$/,
        status: 307,
        headers: { location: `http://127.0.0.1:${port}/user` },
      });
      const run = await pr(["--tag", "v1.0.0"]);
      expectOneErrorLine(
        run,
        2,
        /^promoter pr: error\[github-protocol\]: GET \/user: redirected to another origin/,
      );
      expect(seen.map((headers) => headers.authorization)).toEqual(seen.map(() => undefined));
      expect(JSON.stringify(seen)).not.toContain(TOKEN);
      expect(github.writes()).toEqual([]);
    } finally {
      await new Promise<void>((resolve) =>
        elsewhere.close(() => {
          resolve();
        }),
      );
    }
  });

  it("waits out a short rate limit (Retry-After) and then carries on", async () => {
    github.answerNext({
      method: "POST",
      path: /\/git\/trees$/,
      status: 403,
      headers: { "retry-after": "1" },
      body: { message: "You have exceeded a secondary rate limit." },
    });
    const run = await pr(["--tag", "v1.0.0"]);
    expectClean(run);
    expect(run.status, run.stderr).toBe(0);
    expect(
      github.requests.filter((request) => request.method === "POST" && request.path.endsWith("/git/trees")),
    ).toHaveLength(2);
    expect(github.pulls).toHaveLength(1);
  });

  it("reports a rate limit that resets later than it waits, with the reset time, and stops", async () => {
    const reset = Math.floor(Date.now() / 1000) + 3600;
    github.answerNext({
      method: "GET",
      path: /^\/repos\/kubernetes\/k8s\.io$/,
      status: 403,
      headers: { "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(reset) },
      body: { message: "API rate limit exceeded" },
    });
    const run = await pr(["--tag", "v1.0.0"]);
    expectOneErrorLine(
      run,
      1,
      /^promoter pr: error\[github-rate-limited\]: GET \/repos\/kubernetes\/k8s\.io: GitHub API rate limit reached \(HTTP 403\); it resets at \d{4}-/,
    );
    expect(run.stderr).toContain(new Date(reset * 1000).toISOString().slice(0, 16));
    expect(github.writes()).toEqual([]);
  });
});
