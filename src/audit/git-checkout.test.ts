import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { gitIn, plantCommandRepository, writeGitSpy } from "../../test/support/hostile-git.js";
import { GitCheckout, splitGitCredentials } from "./git-checkout.js";

/**
 * The auditor's clone of the manifest repository: the repository's content comes from merged
 * pull requests, and the auditor's environment holds its secrets. git must never use a
 * repository committed into the tree, and never see the secrets.
 */

let dir: string;
const saved = { PATH: process.env.PATH, secret: process.env.PROMOTER_AUDIT_TEST_SECRET };

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "git-checkout-"));
});
afterEach(async () => {
  process.env.PATH = saved.PATH;
  if (saved.secret === undefined) delete process.env.PROMOTER_AUDIT_TEST_SECRET;
  else process.env.PROMOTER_AUDIT_TEST_SECRET = saved.secret;
  await rm(dir, { recursive: true, force: true });
});

describe("GitCheckout", () => {
  it("clones and fetches without the auditor's secrets, never using a repository in the tree", async () => {
    const origin = path.join(dir, "origin");
    const marker = path.join(dir, "ran");
    await mkdir(path.join(origin, "registry", "manifests", "app"), { recursive: true });
    await writeFile(
      path.join(origin, "registry", "manifests", "app", "promoter-manifest.yaml"),
      "registries: []\n",
    );
    await plantCommandRepository(path.join(origin, "registry"), marker);
    gitIn(origin, dir, "init", "-q", "-b", "main");
    gitIn(origin, dir, "add", "-A");
    gitIn(origin, dir, "commit", "-q", "-m", "first");

    const bin = path.join(dir, "bin");
    const log = path.join(dir, "git-calls.jsonl");
    await writeGitSpy(bin, log);
    process.env.PATH = `${bin}:${saved.PATH ?? "/usr/bin:/bin"}`;
    process.env.PROMOTER_AUDIT_TEST_SECRET = "audit-secret-5c2e";

    const checkout = new GitCheckout({
      url: `file://${origin}`,
      branch: "main",
      directory: path.join(dir, "clone"),
    });
    const first = await checkout.clone();
    await writeFile(
      path.join(origin, "registry", "manifests", "app", "promoter-manifest.yaml"),
      "registries: [] # 2\n",
    );
    gitIn(origin, dir, "commit", "-q", "-am", "second");
    const update = await checkout.update();
    expect(update.changed).toBe(true);
    expect(update.commit).not.toBe(first);

    expect(existsSync(marker)).toBe(false);
    const calls = (await readFile(log, "utf8"))
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as { args: string[]; env: Record<string, string> })
      // The test's own commits to the origin go through the spy too.
      .filter((call) => !call.args.includes("user.name=t"));
    expect(calls.length).toBeGreaterThanOrEqual(4);
    for (const call of calls) {
      expect(JSON.stringify(call.env)).not.toContain("audit-secret-5c2e");
      expect(call.args).toContain("safe.bareRepository=explicit");
    }
    // Every command after the clone names the clone's repository.
    for (const call of calls.filter((entry) => !entry.args.includes("clone"))) {
      expect(call.args).toContain(`--git-dir=${path.join(dir, "clone", ".git")}`);
    }
  });
});

describe("splitGitCredentials", () => {
  it("lists the branch's first-parent chain and writes a past commit's tree to a folder of its own", async () => {
    const origin = path.join(dir, "origin");
    const manifest = path.join(origin, "images.yaml");
    await mkdir(origin, { recursive: true });
    await writeFile(manifest, "first\n");
    gitIn(origin, dir, "init", "-q", "-b", "main");
    gitIn(origin, dir, "add", "-A");
    gitIn(origin, dir, "commit", "-q", "-m", "first");
    const first = gitIn(origin, dir, "rev-parse", "HEAD").trim();
    gitIn(origin, dir, "checkout", "-q", "-b", "feature");
    await writeFile(manifest, "feature\n");
    gitIn(origin, dir, "commit", "-q", "-am", "feature");
    const feature = gitIn(origin, dir, "rev-parse", "HEAD").trim();
    gitIn(origin, dir, "checkout", "-q", "main");
    gitIn(origin, dir, "merge", "-q", "--no-ff", "-m", "merge feature", "feature");
    const merged = gitIn(origin, dir, "rev-parse", "HEAD").trim();

    const checkout = new GitCheckout({
      url: `file://${origin}`,
      branch: "main",
      directory: path.join(dir, "clone"),
    });
    await checkout.clone();
    const chain = await checkout.firstParentChain();
    // The merge and the commit before it: the pull request's own commit was never the branch's state.
    expect(chain.map(({ commit }) => commit)).toEqual([merged, first]);
    expect(chain.map(({ commit }) => commit)).not.toContain(feature);
    for (const { committedAt } of chain) expect(Number.isInteger(committedAt / 1000)).toBe(true);

    const past = path.join(dir, "revision");
    await mkdir(past);
    await writeFile(path.join(past, "left-over"), "from another revision\n");
    await checkout.materialize(first, past);
    expect(await readFile(path.join(past, "images.yaml"), "utf8")).toBe("first\n");
    expect(existsSync(path.join(past, "left-over"))).toBe(false);
    // The clone's own work tree and HEAD stay at the branch.
    expect(await readFile(path.join(dir, "clone", "images.yaml"), "utf8")).toBe("feature\n");
    expect(await checkout.commit()).toBe(merged);
    await expect(checkout.materialize("--output=/tmp/x", past)).rejects.toThrow(/is not a commit id/);
  });

  it("moves the user part of an http(s) URL into a Basic Authorization value", () => {
    const split = splitGitCredentials("https://bot:p%40ss%3Aword@git.example/org/manifests.git");
    expect(split.url).toBe("https://git.example/org/manifests.git");
    expect(Buffer.from(split.authorization?.replace(/^Basic /, "") ?? "", "base64").toString()).toBe(
      "bot:p@ss:word",
    );
    const tokenOnly = splitGitCredentials("http://TOKEN@127.0.0.1:8080/r.git");
    expect(tokenOnly.url).toBe("http://127.0.0.1:8080/r.git");
    expect(tokenOnly.authorization).toBe(`Basic ${Buffer.from("TOKEN:").toString("base64")}`);
  });

  it("leaves URLs without credentials, and other transports, as they are", () => {
    for (const url of [
      "https://git.example/org/manifests.git",
      "ssh://git@git.example/org/manifests.git",
      "git@git.example:org/manifests.git",
      "file:///srv/manifests",
    ]) {
      expect(splitGitCredentials(url)).toEqual({ url });
    }
  });
});
