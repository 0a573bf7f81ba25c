import { execFileSync } from "node:child_process";
import { cp, mkdtemp, readFile, rename, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  PromoterProcess,
  REPOSITORY_ROOT,
  requireBuiltCli,
  runPromoter,
} from "../support/promoter-process.js";
import {
  findFreePort,
  REGISTRY_PLACEHOLDER,
  startRegistry,
  type TestRegistry,
} from "../support/registry-harness.js";
import { skopeoCopy } from "../support/skopeo.js";
import { makeImage, makeIndex, pushTagsWithSkopeo, type TestContent } from "../support/test-images.js";
import { pollUntil } from "../support/poll.js";
import { runTestGit } from "../support/test-git.js";

/**
 * The auditor raises no false alarm on a real promotion, whatever the timing (issue "the
 * auditor's timing"): the example GitOps repository (examples/gitops-repo) in a real git
 * repository reached by a file:// URL, merges to `main`, `promoter promote --changed-since HEAD~1
 * --confirm` signing with a key exactly as the example's promote workflow runs it, two real
 * production registries (distribution 2.8.2) posting their notifications to two
 * `promoter audit serve` processes:
 *
 * - "idle" checks git only when it must (`--reload-interval 86400`): every release reaches it
 *   before its poll would, so nothing but the refresh before a violation can save it;
 * - "polling" checks every second (`--reload-interval 1`), as an operator who wants the desired
 *   state fresh would; it also shows the poll path ("promote after 40 s": after its reload).
 *
 * Releases promoted 0 s, 1 s and after the reload following the merge are all verified with no
 * alert; a rogue push during a promotion run, and a push made before the merge that adds it, are
 * violations; violations decided while git could not be fetched are retracted when it can.
 * The tests run in order and build on each other.
 */

const TOKEN = "audit-flow-ingest-7c1e9a4f20b6d853";
const READER_TOKEN = "audit-flow-reader-3b8d6e0f9a1c4725";
const SIGN_IDENTITY = "registry.example.com/prod";
const WAIT_MS = 90_000;

const image = (version: string, arch: string): TestContent =>
  makeImage({
    layers: 1,
    layerSize: 2048,
    mediaTypes: "oci",
    seed: `audit-flow-${version}-${arch}`,
    platform: { architecture: arch, os: "linux" },
  });
const multiArch = (version: string): TestContent =>
  makeIndex([image(version, "amd64"), image(version, "arm64")], { mediaType: "oci" });

const RELEASES = {
  "v1.0.0": multiArch("1.0.0"),
  "v1.1.0": multiArch("1.1.0"),
  "v1.2.0": image("1.2.0", "amd64"),
  "v1.3.0": multiArch("1.3.0"),
  "v1.4.0": image("1.4.0", "amd64"),
  "v1.5.0": multiArch("1.5.0"),
} as const satisfies Record<string, TestContent>;
type Release = keyof typeof RELEASES;
/** Pushed by hand to production, never reviewed. */
const ROGUE = image("rogue", "amd64");

interface Finding {
  verdict: string;
  rule: string;
  action: string;
  repository: string;
  digest: string | null;
  tag: string | null;
  reason: string;
  eventId: string;
  seq: number;
  receivedAt: string;
  alert: string;
  retracted: { at: string; rule: string; reason: string } | null;
}

interface Auditor {
  readonly name: "idle" | "polling";
  readonly url: string;
  process?: PromoterProcess;
  readonly alerts: string[];
}

let work: string;
let repo: string;
let origin: string;
let staging: TestRegistry;
let mirrors: TestRegistry[];
let hook: Server;
const auditors: Auditor[] = [];
/** Merged releases, in order. */
const merged: Release[] = [];

/** Runs git in the maintainer's clone; `dated` sets the author and committer dates (whoever commits chooses them). */
function git(...args: string[]): string {
  return gitDated(undefined, ...args);
}

function gitDated(dated: Date | undefined, ...args: string[]): string {
  return runTestGit(
    { cwd: repo, home: work, who: "Maintainer", ...(dated ? { dated } : {}) },
    ...args,
  ).trim();
}

function imagesYaml(releases: readonly Release[]): string {
  if (releases.length === 0) return "[]\n";
  return [
    "- name: hello",
    "  dmap:",
    ...releases.map((release) => `    "${RELEASES[release].digest}": ["${release}"]`),
    "",
  ].join("\n");
}

/**
 * A pull request adding `release` to images/hello/images.yaml, merged into main with a merge
 * commit (as GitHub's merge button does) and pushed to `remote`; returns the merge commit.
 */
async function merge(release: Release, remote = origin, dated?: Date): Promise<string> {
  git("checkout", "-q", "-b", `add-${release}`, "main");
  merged.push(release);
  await writeFile(path.join(repo, "images", "hello", "images.yaml"), imagesYaml(merged));
  gitDated(dated, "commit", "-q", "-am", `hello: add ${release}`);
  git("checkout", "-q", "main");
  gitDated(dated, "merge", "-q", "--no-ff", "-m", `Merge pull request: hello ${release}`, `add-${release}`);
  git("push", "-q", remote, "main");
  return git("rev-parse", "HEAD");
}

/** What the example's promote workflow runs after a merge, in the checkout of the merge. */
async function promote(): Promise<void> {
  const run = await runPromoter(
    [
      "promote",
      "--thin-manifest-dir",
      ".",
      "--changed-since",
      "HEAD~1",
      "--confirm",
      "--quiet",
      "--sign-key",
      path.join(work, "release.key"),
      "--sign-identity",
      SIGN_IDENTITY,
    ],
    { cwd: repo, timeoutMs: 120_000 },
  );
  expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
}

async function findings(auditor: Auditor, query = ""): Promise<Finding[]> {
  const response = await fetch(`${auditor.url}/findings?limit=500${query}`, {
    headers: { authorization: `Bearer ${READER_TOKEN}` },
  });
  if (response.status !== 200) throw new Error(`GET /findings of ${auditor.name}: ${response.status}`);
  return ((await response.json()) as { findings: Finding[] }).findings;
}

async function pendingEvents(auditor: Auditor): Promise<number> {
  const response = await fetch(`${auditor.url}/healthz`);
  return ((await response.json()) as { pendingEvents: number }).pendingEvents;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>): Promise<T> {
  return pollUntil(what, probe, {
    timeoutMs: WAIT_MS,
    describeState: async () =>
      JSON.stringify(
        await Promise.all(
          auditors.map(async (auditor) => ({
            auditor: auditor.name,
            findings: await findings(auditor).catch(() => []),
            log: auditor.process?.stdout.slice(-6000),
          })),
        ),
        null,
        1,
      ),
  });
}

const signatureTag = (content: TestContent): string => `${content.digest.replace(":", "-")}.sig`;
const repositories = (): string[] => mirrors.map((mirror) => `${mirror.host}/prod/hello`);

/**
 * The findings of `auditor` newer than `afterSeq` once `release` is fully judged: its tag and the
 * signature tag of its digest on every mirror, and nothing pending.
 */
async function releaseFindings(auditor: Auditor, release: Release, afterSeq: number): Promise<Finding[]> {
  const content = RELEASES[release];
  return waitFor(`${auditor.name}: every event of ${release}`, async () => {
    const all = (await findings(auditor)).filter((finding) => finding.seq > afterSeq);
    for (const repository of repositories()) {
      for (const tag of [release, signatureTag(content)]) {
        if (!all.some((finding) => finding.repository === repository && finding.tag === tag))
          return undefined;
      }
    }
    return (await pendingEvents(auditor)) === 0 ? all : undefined;
  });
}

async function lastSeq(auditor: Auditor): Promise<number> {
  return (await findings(auditor))[0]?.seq ?? 0;
}

/** The log line an auditor prints when it has loaded `commit`. */
function loaded(auditor: Auditor, commit: string): Promise<true> {
  return waitFor(`${auditor.name} to load ${commit}`, () =>
    Promise.resolve(auditor.process?.stdout.includes(commit) ? true : undefined),
  );
}

/** Promotes right after `merge`, waits for every auditor, and expects only verified findings. */
async function expectVerifiedRelease(release: Release, before: readonly number[]): Promise<void> {
  for (const [i, auditor] of auditors.entries()) {
    const fresh = await releaseFindings(auditor, release, before[i] ?? 0);
    // Per mirror: the index, its children, the tag, and a signature per signed digest.
    expect(fresh.length, `${auditor.name}: ${JSON.stringify(fresh, null, 1)}`).toBeGreaterThanOrEqual(2 * 3);
    expect(
      fresh.filter((finding) => finding.verdict !== "verified"),
      auditor.name,
    ).toEqual([]);
    expect(auditor.alerts, auditor.name).toEqual([]);
  }
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "audit-gitops-flow-"));
  const ports = await Promise.all([findFreePort(), findFreePort()]);
  hook = createServer((request, response) => {
    let text = "";
    request.on("data", (chunk: Buffer) => (text += chunk.toString()));
    request.on("end", () => {
      const auditor = auditors.find((candidate) => request.url === `/${candidate.name}`);
      auditor?.alerts.push((JSON.parse(text) as { text: string }).text);
      response.end("ok");
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, "127.0.0.1", resolve));
  const hookPort = (hook.address() as AddressInfo).port;
  auditors.push(
    { name: "idle", url: `http://127.0.0.1:${ports[0]}`, alerts: [] },
    { name: "polling", url: `http://127.0.0.1:${ports[1]}`, alerts: [] },
  );
  const headers = { Authorization: `Bearer ${TOKEN}` };
  [staging, ...mirrors] = await Promise.all([
    startRegistry(),
    ...[0, 1].map(() =>
      startRegistry({
        notifications: auditors.map((auditor) => ({
          url: `${auditor.url}/events/${REGISTRY_PLACEHOLDER}`,
          headers,
        })),
      }),
    ),
  ]);
  // What the hello project's CI pushed to staging.
  await pushTagsWithSkopeo(
    work,
    staging.host,
    "staging/hello",
    Object.entries(RELEASES).map(([tag, content]) => ({ content, tag })),
  );
  await pushTagsWithSkopeo(work, staging.host, "staging/rogue", [{ content: ROGUE, tag: "rogue" }]);

  // The example repository, its registries the test ones, no image promoted yet.
  repo = path.join(work, "repo");
  await cp(path.join(REPOSITORY_ROOT, "examples", "gitops-repo"), repo, { recursive: true });
  const manifest = path.join(repo, "manifests", "hello", "promoter-manifest.yaml");
  await writeFile(
    manifest,
    (await readFile(manifest, "utf8"))
      .replace("registry.example.com/staging", `${staging.host}/staging`)
      .replace("us-registry.example.com/prod", `${mirrors[0]!.host}/prod`)
      .replace("eu-registry.example.com/prod", `${mirrors[1]!.host}/prod`),
  );
  await writeFile(path.join(repo, "images", "hello", "images.yaml"), imagesYaml([]));
  const key = execFileSync(
    "sh",
    ["-c", "openssl ecparam -name prime256v1 -genkey -noout | openssl pkcs8 -topk8 -nocrypt"],
    { encoding: "utf8" },
  );
  await writeFile(path.join(work, "release.key"), key, { mode: 0o600 });
  origin = path.join(work, "origin.git");
  execFileSync("git", ["init", "-q", "--bare", "-b", "main", origin]);
  git("init", "-q", "-b", "main");
  git("add", "-A");
  git("commit", "-q", "-m", "Start from the example repository");
  git("remote", "add", "origin", origin);
  git("push", "-q", "origin", "main");

  await writeFile(path.join(work, "token"), `${TOKEN}\n`, { mode: 0o600 });
  await writeFile(path.join(work, "reader-token"), `${READER_TOKEN}\n`, { mode: 0o600 });
  for (const [i, auditor] of auditors.entries()) {
    auditor.process = PromoterProcess.start(
      [
        "audit",
        "serve",
        "--git-url",
        `file://${origin}`,
        "--branch",
        "main",
        "--listen",
        auditor.url.replace("http://", ""),
        "--token-file",
        "token",
        "--reader-token-file",
        "reader-token",
        "--db",
        `${auditor.name}.db`,
        "--alert-webhook",
        `http://127.0.0.1:${hookPort}/${auditor.name}`,
        "--reload-interval",
        i === 0 ? "86400" : "1",
        "--pending-grace",
        "30",
      ],
      { cwd: work },
    );
  }
  for (const auditor of auditors) {
    await auditor.process?.waitFor(
      (stdout) => (stdout.includes('"audit server listening"') ? true : undefined),
      60_000,
    );
  }
}, 240_000);

afterAll(async () => {
  for (const auditor of auditors) expect(await auditor.process?.stop()).toBe(0);
  await Promise.all([staging, ...mirrors].map((registry) => registry.stop()));
  await new Promise((resolve) => hook.close(resolve));
  if (work) await rm(work, { recursive: true, force: true });
});

describe("the example GitOps flow, whatever the timing between merge, promotion and reload", () => {
  it("a first release, promoted 0 s after the merge: every event verified, no alert", async () => {
    const before = await Promise.all(auditors.map(lastSeq));
    await merge("v1.0.0");
    await promote();
    await expectVerifiedRelease("v1.0.0", before);
  });

  it("a later release, promoted 1 s after the merge: every event verified, no alert", async () => {
    const before = await Promise.all(auditors.map(lastSeq));
    await merge("v1.1.0");
    // The timing under test: the promotion starts a second after the merge.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await promote();
    await expectVerifiedRelease("v1.1.0", before);
  });

  it("a release promoted after the polling auditor's reload (the issue's 40 s): verified, no alert", async () => {
    const before = await Promise.all(auditors.map(lastSeq));
    const commit = await merge("v1.2.0");
    await loaded(auditors[1]!, commit);
    expect(auditors[0]!.process?.stdout).not.toContain(commit);
    await promote();
    await expectVerifiedRelease("v1.2.0", before);
  });

  it("a rogue push during a promotion run is still a violation, alerted once", async () => {
    const before = await Promise.all(auditors.map(lastSeq));
    await merge("v1.3.0");
    const rogueTag = "v1.3.0-hotfix";
    await Promise.all([
      promote(),
      skopeoCopy(
        `docker://${staging.host}/staging/rogue:rogue`,
        `docker://${mirrors[0]!.host}/prod/hello:${rogueTag}`,
      ),
    ]);
    for (const [i, auditor] of auditors.entries()) {
      const fresh = await releaseFindings(auditor, "v1.3.0", before[i] ?? 0);
      const rogue = await waitFor(`${auditor.name}: the rogue tag`, async () =>
        (await findings(auditor)).find((finding) => finding.tag === rogueTag),
      );
      expect(rogue, auditor.name).toMatchObject({
        verdict: "violation",
        rule: "unexpected-tag",
        digest: ROGUE.digest,
        repository: `${mirrors[0]!.host}/prod/hello`,
      });
      expect(
        fresh.filter((finding) => finding.verdict !== "verified" && finding.tag !== rogueTag),
        auditor.name,
      ).toEqual([]);
      await waitFor(`${auditor.name}: the rogue tag's alert`, () =>
        Promise.resolve(auditor.alerts.length > 0 ? true : undefined),
      );
      expect(auditor.alerts, auditor.name).toHaveLength(1);
      expect(auditor.alerts[0]).toContain(`:${rogueTag}@${ROGUE.digest}`);
      auditor.alerts.length = 0;
    }
  });

  it("a push made before the merge that adds it stays a violation, and is not retracted by it, even when the merge is dated earlier", async () => {
    const early = RELEASES["v1.4.0"];
    // Someone with push access copies the image by hand, before any review.
    await skopeoCopy(
      `docker://${staging.host}/staging/hello:v1.4.0`,
      `docker://${mirrors[0]!.host}/prod/hello:v1.4.0`,
    );
    const handPushes: Finding[] = [];
    for (const auditor of auditors) {
      const handPush = await waitFor(`${auditor.name}: the hand push`, async () =>
        (await findings(auditor)).find((finding) => finding.tag === "v1.4.0"),
      );
      expect(handPush, auditor.name).toMatchObject({ verdict: "violation", rule: "unexpected-tag" });
      handPushes.push(handPush);
      await waitFor(`${auditor.name}: the hand push's alert`, () =>
        Promise.resolve(auditor.alerts.length > 0 ? true : undefined),
      );
    }
    // Then the pull request adding it is merged, its commits dated ten minutes before the push
    // (within the revision window; whoever commits chooses the date), and promoted to the other
    // mirror. Each auditor fetched after the hand push without seeing it: the merge came later.
    const earliest = Math.min(...handPushes.map((finding) => Date.parse(finding.receivedAt)));
    const commit = await merge("v1.4.0", origin, new Date(earliest - 10 * 60_000));
    await promote();
    for (const [i, auditor] of auditors.entries()) {
      await loaded(auditor, commit);
      const euTag = await waitFor(`${auditor.name}: the promoted tag`, async () =>
        (await findings(auditor)).find(
          (finding) => finding.tag === "v1.4.0" && finding.repository === repositories()[1],
        ),
      );
      expect(euTag, auditor.name).toMatchObject({ verdict: "verified", rule: "promoted-tag" });
      await waitFor(`${auditor.name}: the review after the reload`, () =>
        Promise.resolve(
          auditor.process?.stdout.split("\n").some((line) => line.includes('"recent violations reviewed"'))
            ? true
            : undefined,
        ),
      );
      const handPush = (await findings(auditor)).find((finding) => finding.seq === handPushes[i]?.seq);
      expect(handPush, auditor.name).toMatchObject({
        verdict: "violation",
        rule: "unexpected-tag",
        digest: early.digest,
        repository: repositories()[0],
        retracted: null,
      });
      expect(auditor.alerts, auditor.name).toHaveLength(1);
      expect(auditor.alerts[0]).not.toMatch(/retracted/);
      auditor.alerts.length = 0;
    }
  });

  it("violations decided while git could not be fetched are retracted once it can: in the store and by alert", async () => {
    const before = await Promise.all(auditors.map(lastSeq));
    // The git server is away (a transient failure) while a release is merged and promoted.
    const away = path.join(work, "origin-away.git");
    await rename(origin, away);
    await merge("v1.5.0", away);
    await promote();
    for (const [i, auditor] of auditors.entries()) {
      await waitFor(`${auditor.name}: violations decided without the merge`, async () => {
        const fresh = (await findings(auditor)).filter((finding) => finding.seq > (before[i] ?? 0));
        return fresh.some((finding) => finding.verdict === "violation") ? true : undefined;
      });
    }
    await rename(away, origin);
    for (const [i, auditor] of auditors.entries()) {
      const fresh = await waitFor(`${auditor.name}: every violation retracted`, async () => {
        const all = await releaseFindings(auditor, "v1.5.0", before[i] ?? 0);
        return all.every((finding) => finding.verdict === "verified") ? all : undefined;
      });
      const retracted = fresh.filter((finding) => finding.retracted !== null);
      expect(retracted.length, auditor.name).toBeGreaterThan(0);
      const alerted = retracted.filter((finding) => finding.alert !== "none");
      for (const finding of alerted) {
        expect(finding.retracted?.reason).toMatch(/could not be refreshed/);
      }
      expect(alerted.length, auditor.name).toBeGreaterThan(0);
      await waitFor(`${auditor.name}: a retraction alert per alerted violation`, () =>
        Promise.resolve(
          auditor.alerts.filter((text) => text.includes("retracted")).length === alerted.length
            ? true
            : undefined,
        ),
      );
      for (const finding of alerted) {
        expect(
          auditor.alerts.some((text) => text.includes("retracted") && text.includes(finding.eventId)),
        ).toBe(true);
      }
    }
  });
});
