import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startGitHttpServer, type GitHttpServer } from "../../test/support/git-http-server.js";
import { MemoryLogger } from "../log.js";
import type { Digest, RepositoryPath, Tag } from "../reference/index.js";
import { Auditor } from "./auditor.js";
import type { ManifestFacts } from "./decide.js";
import type { RegistryEvent } from "./event.js";
import { FindingStore } from "./finding-store.js";
import { ManifestWatcher } from "./manifest-source.js";

/**
 * The auditor with its real manifest source: a git repository served over git's smart HTTP
 * protocol (git-http-backend) that can be made to hang, the real `ManifestWatcher` and `Auditor`
 * wired as `audit serve` wires them. What a git server that stops answering does to verdicts.
 */

const D1 = `sha256:${"1".repeat(64)}` as Digest;
const ROGUE = `sha256:${"9".repeat(64)}` as Digest;
const USER = "auditor";
const PASSWORD = "git-password-5e1c0a7b";
const MAX_CHECK_WAIT_MS = 2_000;
/** Far below git's own timeout (5 minutes): what the auditor promises is about a minute. */
const WAIT_MS = 20_000;

function manifest(tags: readonly string[]): string {
  return [
    "registries:",
    "  - name: reg.example/staging",
    "    src: true",
    "  - name: reg.example/prod",
    "images:",
    "  - name: app",
    "    dmap:",
    `      "${D1}": [${tags.map((tag) => JSON.stringify(tag)).join(", ")}]`,
    "",
  ].join("\n");
}

let counter = 0;
function tagPush(tag: string, digest: Digest): RegistryEvent {
  counter += 1;
  return {
    id: `distribution:git-${counter}`,
    source: "distribution",
    action: "push",
    targetKind: "manifest",
    host: "reg.example",
    attribution: "endpoint",
    repository: "prod/app" as RepositoryPath,
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest,
    tag: tag as Tag,
  };
}

async function until<T>(what: string, probe: () => T | undefined): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe("Auditor with a git server that hangs", () => {
  let directory: string;
  let server: GitHttpServer;
  let store: FindingStore;
  let watcher: ManifestWatcher | undefined;
  let auditor: Auditor | undefined;

  const git = (cwd: string, date: number | undefined, ...args: string[]): void => {
    execFileSync("git", args, {
      cwd,
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: directory,
        GIT_CONFIG_NOSYSTEM: "1",
        GIT_AUTHOR_NAME: "t",
        GIT_AUTHOR_EMAIL: "t@example.invalid",
        GIT_COMMITTER_NAME: "t",
        GIT_COMMITTER_EMAIL: "t@example.invalid",
        ...(date === undefined ? {} : { GIT_COMMITTER_DATE: `@${Math.floor(date / 1000)} +0000` }),
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
  };

  beforeEach(async () => {
    directory = mkdtempSync(path.join(os.tmpdir(), "promoter-auditor-git-"));
    const served = path.join(directory, "served");
    const work = path.join(directory, "work");
    mkdirSync(served);
    mkdirSync(work);
    git(served, undefined, "init", "--quiet", "--bare", "--initial-branch", "main", "manifests.git");
    git(work, undefined, "init", "--quiet", "--initial-branch", "main");
    // Two merges: tag 0.9 was replaced a minute ago, a promotion of it may still be running.
    const now = Date.now();
    writeFileSync(path.join(work, "m.yaml"), manifest(["1.0", "0.9"]));
    git(work, undefined, "add", ".");
    git(work, now - 120_000, "commit", "--quiet", "-m", "release 0.9");
    writeFileSync(path.join(work, "m.yaml"), manifest(["1.0"]));
    git(work, now - 60_000, "commit", "--quiet", "-am", "withdraw 0.9");
    git(work, undefined, "push", "--quiet", path.join(served, "manifests.git"), "main");
    server = await startGitHttpServer(served, USER, PASSWORD);
    store = FindingStore.open(path.join(directory, "audit.db"));
  });

  afterEach(async () => {
    // The watcher first: closing it stops a git command that hangs.
    await watcher?.close();
    await auditor?.close();
    store.close();
    await server.close();
    rmSync(directory, { recursive: true, force: true });
  });

  it("declares a violation within the check wait, and verifies by a past revision, while a fetch hangs", async () => {
    const running: { auditor?: Auditor } = {};
    const manifests = new ManifestWatcher({
      origin: {
        kind: "git",
        url: `${server.url.replace("://", `://${USER}:${PASSWORD}@`)}/manifests.git`,
        branch: "main",
        path: "m.yaml",
      },
      cwd: directory,
      logger: new MemoryLogger(),
      intervalMs: 3_600_000,
      onState: (loaded) => running.auditor?.setDesiredState(loaded.state, loaded.revision),
      onChecked: (outcome) => running.auditor?.manifestsChecked(outcome),
      onBroken: () => undefined,
    });
    watcher = manifests;
    const initial = await manifests.loadInitial();
    const lookup = {
      manifest: (): Promise<ManifestFacts | undefined> => Promise.resolve(undefined),
      verifiedTagFor: (): Tag | undefined => undefined,
    };
    const subject = new Auditor(initial.state, {
      store,
      lookup,
      logger: new MemoryLogger(),
      history: manifests,
      revision: initial.revision,
      maxCheckWaitMs: MAX_CHECK_WAIT_MS,
      sweepIntervalMs: 50,
    });
    auditor = subject;
    running.auditor = subject;
    subject.start();

    // The git server stops answering; a check starts and hangs in `git fetch`.
    server.stalled = true;
    const asked = server.requests.length;
    void manifests.requestCheck();
    await until("the fetch to reach the git server", () =>
      server.requests.length > asked ? true : undefined,
    );

    subject.receive([tagPush("rogue", ROGUE), tagPush("0.9", D1)]);
    const rogue = await until("the rogue push's violation", () =>
      store.query().find((finding) => finding.tag === "rogue"),
    );
    expect(rogue).toMatchObject({ verdict: "violation", rule: "unexpected-tag" });
    expect(rogue.reason).toMatch(/could not be refreshed within 2 s;/);
    const promoted = await until("the promotion of 0.9", () =>
      store.query().find((finding) => finding.tag === "0.9"),
    );
    expect(promoted).toMatchObject({ verdict: "verified", rule: "promoted-tag" });
    expect(promoted.reason).toMatch(/by the manifests of commit [0-9a-f]{12}, replaced on the branch/);
  });
});
