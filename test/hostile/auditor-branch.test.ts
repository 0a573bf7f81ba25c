import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pushWithHostHeader } from "../support/hostile-auditor.js";
import { PromoterProcess, requireBuiltCli } from "../support/promoter-process.js";
import {
  findFreePort,
  REGISTRY_PLACEHOLDER,
  startRegistry,
  type TestRegistry,
} from "../support/registry-harness.js";
import { makeImage, type TestContent } from "../support/test-images.js";
import { pollUntil } from "../support/poll.js";
import { runTestGit } from "../support/test-git.js";

/**
 * The auditor follows the reviewed branch and only the states that branch was in (ADR 0004):
 * `promoter audit serve --git-url` as a child process over a real git repository, a real
 * distribution registry sending its notifications, and two ways to make an unreviewed commit
 * explain a rogue push, as someone who may push to the manifests' repository but not to its
 * protected branch (a tag named like the branch) and as a pull-request author (a commit that
 * adds a rogue digest and one that takes it out, merged by fast-forward).
 */

const TOKEN = "hostile-branch-ingest-5b0e2d7c91a4f368";
const READER_TOKEN = "hostile-branch-reader-0c6a9e3f17d2b584";
const WAIT_MS = 45_000;

const app = makeImage({ layers: 1, layerSize: 700, mediaTypes: "oci", seed: "hostile-branch-app" });
const rogueByTag = makeImage({ layers: 1, layerSize: 710, mediaTypes: "oci", seed: "hostile-branch-tag" });
const rogueByPr = makeImage({ layers: 1, layerSize: 720, mediaTypes: "oci", seed: "hostile-branch-pr" });

interface Finding {
  verdict: string;
  rule: string;
  repository: string;
  digest: string | null;
  tag: string | null;
  reason: string;
}

let work: string;
let repo: string;
let origin: string;
let registry: TestRegistry;
let auditUrl: string;
let serve: PromoterProcess | undefined;

function git(dated: Date | undefined, ...args: string[]): string {
  return runTestGit(
    { cwd: repo, home: work, who: "Contributor", ...(dated ? { dated } : {}) },
    ...args,
  ).trim();
}

function manifestText(dmap: readonly (readonly [TestContent, readonly string[]])[]): string {
  return [
    "registries:",
    `- name: ${registry.host}/staging`,
    "  src: true",
    `- name: ${registry.host}/prod`,
    "images:",
    "- name: app",
    "  dmap:",
    ...dmap.map(([content, tags]) => `    "${content.digest}": ${JSON.stringify(tags)}`),
    "",
  ].join("\n");
}

async function findings(): Promise<Finding[]> {
  const response = await fetch(`${auditUrl}/findings?limit=500`, {
    headers: { authorization: `Bearer ${READER_TOKEN}` },
  });
  if (response.status !== 200) throw new Error(`GET /findings: ${response.status}`);
  return ((await response.json()) as { findings: Finding[] }).findings;
}

/** Successful checks of the manifests so far. */
async function checks(): Promise<number> {
  const text = await (await fetch(`${auditUrl}/metrics`)).text();
  const match = /promoter_audit_manifest_checks_total\{result="ok"\} (\d+)/.exec(text);
  return Number(match?.[1] ?? 0);
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  return pollUntil(what, probe, {
    timeoutMs: WAIT_MS,
    describeState: async () =>
      `findings:\n${JSON.stringify(await findings().catch(() => []), null, 1)}\n${serve?.stdout.slice(-4000) ?? ""}`,
  });
}

/** Waits until the auditor has fetched twice more: whatever the branch and tags hold now, it saw. */
async function fetchedTwice(): Promise<void> {
  const before = await checks();
  await waitFor("two more checks of the manifests", async () =>
    (await checks()) >= before + 2 ? true : undefined,
  );
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "hostile-auditor-branch-"));
  const auditPort = await findFreePort();
  auditUrl = `http://127.0.0.1:${auditPort}`;
  registry = await startRegistry({
    notifications: [
      { url: `${auditUrl}/events/${REGISTRY_PLACEHOLDER}`, headers: { Authorization: `Bearer ${TOKEN}` } },
    ],
  });
  origin = path.join(work, "origin.git");
  repo = path.join(work, "repo");
  execFileSync("git", ["init", "-q", "--bare", "-b", "main", origin]);
  execFileSync("git", ["init", "-q", "-b", "main", repo]);
  await writeFile(path.join(repo, "manifest.yaml"), manifestText([[app, ["1.0"]]]));
  git(undefined, "add", "-A");
  git(undefined, "commit", "-q", "-m", "Promote app 1.0");
  git(undefined, "remote", "add", "origin", origin);
  git(undefined, "push", "-q", "origin", "main");
  await writeFile(path.join(work, "token"), `${TOKEN}\n`, { mode: 0o600 });
  await writeFile(path.join(work, "reader-token"), `${READER_TOKEN}\n`, { mode: 0o600 });
  serve = PromoterProcess.start(
    [
      "audit",
      "serve",
      "--git-url",
      `file://${origin}`,
      "--branch",
      "main",
      "--path",
      "manifest.yaml",
      "--reload-interval",
      "1",
      "--listen",
      `127.0.0.1:${auditPort}`,
      "--token-file",
      "token",
      "--reader-token-file",
      "reader-token",
      "--db",
      "audit.db",
    ],
    { cwd: work },
  );
  await serve.waitFor((stdout) => (stdout.includes('"audit server listening"') ? true : undefined), 60_000);
}, 120_000);

afterAll(async () => {
  expect(await serve?.stop()).toBe(0);
  await registry.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("the reviewed branch, and only the states it was in", () => {
  it("a tag named like the branch, on an unreviewed commit, does not make its rogue image verified", async () => {
    git(undefined, "checkout", "-q", "-b", "unreviewed");
    await writeFile(
      path.join(repo, "manifest.yaml"),
      manifestText([
        [app, ["1.0"]],
        [rogueByTag, ["evil"]],
      ]),
    );
    git(undefined, "commit", "-q", "-am", "not reviewed");
    git(undefined, "tag", "main");
    git(undefined, "push", "-q", "origin", "refs/tags/main");
    git(undefined, "checkout", "-q", "main");
    await fetchedTwice();

    await pushWithHostHeader(registry.url, registry.host, "prod/app", rogueByTag, "evil");
    const pushed = await waitFor("the rogue tag's finding", async () =>
      (await findings()).find((finding) => finding.tag === "evil"),
    );
    expect(pushed).toMatchObject({ verdict: "violation", rule: "unexpected-tag" });
  });

  it("a pull request's commit that adds a rogue digest, taken out by its next commit and merged by fast-forward, explains nothing", async () => {
    git(undefined, "checkout", "-q", "-b", "pull-request");
    // The author's commits, dated when they wrote them; the reviewed diff only adds tag 1.1.
    const written = new Date(Date.now() - 20 * 60_000);
    await writeFile(
      path.join(repo, "manifest.yaml"),
      manifestText([
        [app, ["1.0"]],
        [rogueByPr, ["sneaky"]],
      ]),
    );
    git(written, "commit", "-q", "-am", "wip");
    await writeFile(path.join(repo, "manifest.yaml"), manifestText([[app, ["1.0", "1.1"]]]));
    git(new Date(written.getTime() + 60_000), "commit", "-q", "-am", "Tag app 1.1");
    const merged = git(undefined, "rev-parse", "HEAD");
    git(undefined, "checkout", "-q", "main");
    git(undefined, "merge", "-q", "--ff-only", "pull-request");
    git(undefined, "push", "-q", "origin", "refs/heads/main:refs/heads/main");
    await waitFor("the auditor to load the merge", () =>
      Promise.resolve(serve?.stdout.includes(merged) ? true : undefined),
    );

    await pushWithHostHeader(registry.url, registry.host, "prod/app", rogueByPr, "sneaky");
    const pushed = await waitFor("the rogue push's finding", async () =>
      (await findings()).find((finding) => finding.tag === "sneaky"),
    );
    expect(pushed).toMatchObject({ verdict: "violation", rule: "unexpected-tag" });
    // The reviewed tag is verified.
    await pushWithHostHeader(registry.url, registry.host, "prod/app", app, "1.1");
    expect(
      await waitFor("the reviewed tag's finding", async () =>
        (await findings()).find((finding) => finding.tag === "1.1"),
      ),
    ).toMatchObject({ verdict: "verified", rule: "promoted-tag" });
  });
});
