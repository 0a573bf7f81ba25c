import { generateKeyPairSync } from "node:crypto";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attestationsOf, bundleOf, opensslVerifies, statementOf } from "../support/attestation-judge.js";
import { GitHubStandIn, standInReview } from "../support/github-stand-in.js";
import { pushToRegistry } from "../support/hostile-signing.js";
import { expectClear, requireBuiltCli, runPromoter } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import {
  createMemoryRegistry,
  memoryRegistryRoutes,
  ScriptedRegistry,
  sendJson,
  sha256,
} from "../support/scripted-registry.js";
import { skopeoCopy } from "../support/skopeo.js";
import { githubPushEnvironment, ManifestHistory } from "../support/manifest-history.js";
import { runTestGit } from "../support/test-git.js";
import { makeImage, type TestImage } from "../support/test-images.js";

/**
 * Attacks on the promotion records (issue 16), as a pull request's author, a staging pusher or a
 * compromised production mirror would make them: the real CLI, a real registry, real git history.
 * Each `it` states what must hold; the ones that fail on the branch they were written on are the
 * findings of the attack report (the main engineer fixes them).
 */

const PROMOTION = "https://k8s.io/promo-tools/promotion/v1";
const VSA = "https://slsa.dev/verification_summary/v1";
const IDENTITY = "registry.example.io/project";
const TOKEN = "ghs_attack-provenance-token-0123456789";

let work: string;
let staging: TestRegistry;
let prod: TestRegistry;
let standIn: GitHubStandIn;
const release = generateKeyPairSync("ec", { namedCurve: "P-256" });
const releasePublic = release.publicKey.export({ type: "spki", format: "pem" }).toString();

const NAMES = [
  "base1",
  "forged1",
  "base2",
  "forged2",
  "base3",
  "forged3",
  "renamed",
  "base4",
  "sock",
  "flood",
  "bidi",
  "base5",
  "queued1",
  "queued2",
  "base6",
  "uncommitted",
  "small",
  "huge",
  "fifo",
  "attcopy",
  "mailmap",
] as const;
type Name = (typeof NAMES)[number];
const images = Object.fromEntries(
  NAMES.map((name) => [
    name,
    makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: `attack-${name}` }),
  ]),
) as Record<Name, TestImage>;

/** A manifest promoting `names` from staging to each of `destinations` (repositories on prod). */
function manifest(names: readonly Name[], destinations: readonly string[]): string {
  return [
    "registries:",
    `- name: ${staging.host}/staging`,
    "  src: true",
    ...destinations.map((destination) => `- name: ${prod.host}/${destination}`),
    "images:",
    ...names.flatMap((name) => [`- name: ${name}`, "  dmap:", `    "${images[name].digest}": ["v1"]`]),
    "",
  ].join("\n");
}

async function record(repository: string, name: Name): Promise<Record<string, unknown>> {
  const found = await attestationsOf(prod.url, `${repository}/${name}`, images[name].digest, PROMOTION);
  expect(found, name).toHaveLength(1);
  const { envelope } = await bundleOf(prod.url, `${repository}/${name}`, found[0]!.digest);
  expect(await opensslVerifies(envelope, releasePublic), name).toBe(true);
  return statementOf(envelope).predicate;
}

async function gitRepository(name: string) {
  const repo = path.join(work, name);
  const home = path.join(work, `${name}-home`);
  await Promise.all([mkdir(repo), mkdir(home)]);
  const git = (who: string, ...args: string[]) => runTestGit({ cwd: repo, home, who }, ...args).trim();
  return { repo, git };
}

function promote(cwd: string, env: Record<string, string>, identity = IDENTITY) {
  return runPromoter(
    [
      "promote",
      "--manifest",
      "promo.yaml",
      "--confirm",
      "--sign-key",
      path.join(work, "release.key"),
      "--sign-identity",
      identity,
    ],
    { cwd, timeoutMs: 120_000, env },
  );
}

function verify(cwd: string, extra: readonly string[], identity = IDENTITY) {
  return runPromoter(
    [
      "verify",
      "--manifest",
      "promo.yaml",
      "--public-key",
      path.join(work, "release.pub"),
      "--sign-identity",
      identity,
      "--attestations",
      ...extra,
    ],
    { cwd, timeoutMs: 60_000 },
  );
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "attack-provenance-"));
  [staging, prod] = await Promise.all([startRegistry(), startRegistry()]);
  standIn = await GitHubStandIn.start({ token: TOKEN, login: "promoter-bot" });
  for (const [name, content] of Object.entries(images)) {
    await pushToRegistry(staging.host, `staging/${name}`, [{ content, tag: "v1" }], work);
  }
  await writeFile(
    path.join(work, "release.key"),
    release.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  );
  await writeFile(path.join(work, "release.pub"), releasePublic);
}, 120_000);

afterAll(async () => {
  await standIn.close();
  await Promise.all([staging.stop(), prod.stop()]);
  await rm(work, { recursive: true, force: true });
});

describe("a pull request's author writes the merge message: it is not an approval", () => {
  // GitHub's merge commit is "Merge pull request #N from OWNER/BRANCH", a blank line, and the
  // pull request's title (Tide merges through the same API and, without a commit template,
  // keeps that message). The title is the author's text: "Approved-by: carol" as a title is
  // the last paragraph of the message, which git reads as a trailer.
  it("Prow postsubmit without a token: a trailer from the PR title does not make carol an approver", async () => {
    const { repo, git } = await gitRepository("prow-title");
    git("Alice", "init", "-q", "-b", "main");
    await writeFile(path.join(repo, "promo.yaml"), manifest(["base1"], ["title"]));
    git("Alice", "add", "-A");
    git("Alice", "commit", "-q", "-m", "promote base1");
    git("Bob", "checkout", "-q", "-b", "feature");
    await writeFile(path.join(repo, "promo.yaml"), manifest(["base1", "forged1"], ["title"]));
    git("Bob", "commit", "-q", "-am", "promote forged1");
    git("GitHub", "checkout", "-q", "main");
    git(
      "GitHub",
      "merge",
      "--no-ff",
      "-q",
      "feature",
      "-m",
      "Merge pull request #9 from bob/feature",
      "-m",
      "Approved-by: carol",
    );
    const merge = git("GitHub", "rev-parse", "HEAD");

    const run = await promote(repo, {
      PROW_JOB_ID: "job-1",
      JOB_TYPE: "postsubmit",
      REPO_OWNER: "org",
      REPO_NAME: "manifests",
      PULL_BASE_REF: "main",
      PULL_BASE_SHA: merge,
    });
    expectClear(run, 0);
    const predicate = await record("title", "forged1");
    const review = predicate.review as { humanReview?: { reviewers?: { name: string }[] } };
    // Nobody approved anything: carol is only named in Bob's title.
    expect(review.humanReview?.reviewers ?? []).not.toContainEqual(
      expect.objectContaining({ name: "carol" }),
    );
    const verified = await verify(repo, ["--require-approvers", "1"]);
    expectClear(verified, 1);
    expect(verified.stdout).toMatch(/unapproved/);
  });

  // With a rebase (or fast-forward) merge the author's own last commit is HEAD: its subject and
  // trailers are entirely theirs. It can name a pull request that was really approved (#4000)
  // and any approvers.
  it("Prow postsubmit without a token: the author's own HEAD commit names neither the pull request nor approvers", async () => {
    const { repo, git } = await gitRepository("prow-rebase");
    git("Alice", "init", "-q", "-b", "main");
    await writeFile(path.join(repo, "promo.yaml"), manifest(["base2"], ["rebase"]));
    git("Alice", "add", "-A");
    git("Alice", "commit", "-q", "-m", "promote base2");
    await writeFile(path.join(repo, "promo.yaml"), manifest(["base2", "forged2"], ["rebase"]));
    git(
      "Bob",
      "commit",
      "-q",
      "-am",
      "Merge pull request #4000 from alice/reviewed-change",
      "-m",
      "Approved-by: carol\nReviewed-by: dave",
    );
    const head = git("Bob", "rev-parse", "HEAD");

    const run = await promote(repo, {
      PROW_JOB_ID: "job-2",
      JOB_TYPE: "postsubmit",
      REPO_OWNER: "org",
      REPO_NAME: "manifests",
      PULL_BASE_REF: "main",
      PULL_BASE_SHA: head,
    });
    expectClear(run, 0);
    const predicate = await record("rebase", "forged2");
    const review = predicate.review as {
      pullRequest?: { number?: number };
      humanReview?: { reviewers?: { name: string }[] };
    };
    expect(review.humanReview?.reviewers ?? []).toEqual([]);
    // Pull request #4000 is alice's, reviewed elsewhere; Bob's commit only says so.
    expect(review.pullRequest?.number).not.toBe(4000);
    const verified = await verify(repo, ["--require-approvers", "2"]);
    expectClear(verified, 1);
    expect(verified.stdout).toMatch(/unapproved/);
  });

  // GitHub Actions, push event, no token: the pull request is read from HEAD's subject. With a
  // rebase merge (or any push) HEAD is the author's commit, and "(#4000)" is their text.
  it("GitHub Actions push without a token: the author's subject '(#4000)' does not become the record's pull request", async () => {
    const { repo, git } = await gitRepository("actions-subject");
    git("Alice", "init", "-q", "-b", "main");
    await writeFile(path.join(repo, "promo.yaml"), manifest(["base3"], ["subject"]));
    git("Alice", "add", "-A");
    git("Alice", "commit", "-q", "-m", "promote base3");
    const before = git("Alice", "rev-parse", "HEAD");
    await writeFile(path.join(repo, "promo.yaml"), manifest(["base3", "forged3"], ["subject"]));
    git("Bob", "commit", "-q", "-am", "promote forged3 (#4000)");
    const after = git("Bob", "rev-parse", "HEAD");
    const event = path.join(work, "push-subject.json");
    await writeFile(event, JSON.stringify({ ref: "refs/heads/main", before, after }));

    const run = await promote(repo, {
      GITHUB_ACTIONS: "true",
      GITHUB_REPOSITORY: "org/manifests",
      GITHUB_EVENT_NAME: "push",
      GITHUB_EVENT_PATH: event,
    });
    expectClear(run, 0);
    const predicate = await record("subject", "forged3");
    const review = predicate.review as { pullRequest?: { number?: number; url?: string } };
    // Nothing but Bob's own words links his commit to pull request #4000.
    expect(review.pullRequest?.number).not.toBe(4000);
  });
});

describe("a mirror holding our genuine record of the digest under another name", () => {
  // A compromised mirror can serve any record we ever signed about the digest, e.g. the one of
  // the same bytes published under another name (copied from wherever that is public); the same
  // happens honestly when the canonical name changes. The record is ours, but it is not about
  // this image: recognising it as "ours" and copying it instead of signing leaves every mirror
  // with a record verify refuses, while the signatures (which are recognised per identity) are
  // made anew.
  it("signs a record naming this identity instead of copying one that names another", async () => {
    const cwd = path.join(work, "renamed");
    await mkdir(cwd);
    await writeFile(path.join(cwd, "promo.yaml"), manifest(["renamed"], ["held"]));
    expectClear(await promote(cwd, {}, "old.example.io/project"), 0);
    await writeFile(path.join(cwd, "promo.yaml"), manifest(["renamed"], ["held", "fresh"]));
    expectClear(await promote(cwd, {}, IDENTITY), 0);
    const verified = await verify(cwd, []);
    expectClear(verified, 0);

    for (const repository of ["held", "fresh"]) {
      const dstRefs: string[] = [];
      for (const type of [PROMOTION, VSA]) {
        for (const found of await attestationsOf(
          prod.url,
          `${repository}/renamed`,
          images.renamed.digest,
          type,
        )) {
          const { envelope } = await bundleOf(prod.url, `${repository}/renamed`, found.digest);
          const predicate = statementOf(envelope).predicate;
          dstRefs.push(String(predicate.dstRef ?? predicate.resourceUri));
        }
      }
      // Each mirror holds a record and a VSA about IDENTITY/renamed, whatever else it holds.
      expect(
        dstRefs.filter((ref) => ref === `${IDENTITY}/renamed@${images.renamed.digest}`),
        repository,
      ).toHaveLength(2);
    }
  });
});

describe("an approval on GitHub is only one when the reviewer may approve", () => {
  // Anyone with a GitHub account can submit an APPROVED review on a public repository's pull
  // request; GitHub lists it with `author_association: NONE` and branch protection does not
  // count it. A pull request's author who opens a second account approves their own change.
  // https://docs.github.com/en/rest/pulls/reviews#list-reviews-for-a-pull-request
  // https://docs.github.com/en/graphql/reference/enums#commentauthorassociation
  it("does not record the approval of an account with no association to the repository", async () => {
    const { history, base } = await ManifestHistory.start(path.join(work, "sock"), {
      "promo.yaml": manifest(["base4"], ["sock"]),
    });
    const repo = history.repo;
    const { head, merge } = await history.mergedPullRequest({
      number: 21,
      author: "Bob",
      branch: "feature",
      commits: [{ files: { "promo.yaml": manifest(["base4", "sock"], ["sock"]) }, message: "promote sock" }],
    });
    standIn.addMergedPull("org/manifests", {
      number: 21,
      author: "bob",
      head,
      base: { ref: "main", sha: base },
      merge,
      reviews: [
        {
          ...standInReview("maintainer", "APPROVED", "2026-12-06T09:00:00Z", head),
          author_association: "MEMBER",
        },
        { ...standInReview("b0b-alt", "APPROVED", "2026-12-06T09:05:00Z", head), author_association: "NONE" },
      ],
    });
    const event = path.join(work, "push-sock.json");
    await writeFile(event, JSON.stringify({ ref: "refs/heads/main", before: base, after: merge }));

    const run = await promote(
      repo,
      githubPushEnvironment({ repository: "org/manifests", event, token: TOKEN, apiUrl: standIn.url }),
    );
    expectClear(run, 0);
    const predicate = await record("sock", "sock");
    const review = predicate.review as { humanReview?: { reviewers?: { name: string }[] } };
    expect(review.humanReview?.reviewers?.map((reviewer) => reviewer.name)).toEqual(["maintainer"]);
    const verified = await verify(repo, ["--require-approvers", "2", "--require-independent-approver"]);
    expectClear(verified, 1);
    expect(verified.stdout).toMatch(/unapproved/);
  });
});

describe("a compromised mirror that lists a flood of lookalike attestations", () => {
  // The referrers list is the mirror's answer: up to 10,000 entries are accepted, and each one
  // annotated with our predicate type costs verify a manifest GET (and a bundle GET when it is
  // there). The planner looks at 16 candidates at most; verify and explain look at all of them.
  it("verify reads a bounded number of the attestations a referrers list names", async () => {
    const memory = createMemoryRegistry();
    const mirror = await ScriptedRegistry.start();
    const LISTED = 3000;
    try {
      const image = images.flood;
      memory.repository("flooded/flood").manifests.set(image.digest, {
        bytes: image.bytes,
        mediaType: image.mediaType,
      });
      const listed = Array.from({ length: LISTED }, (_, i) => ({
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: sha256(`lookalike-${i}`),
        size: 512,
        artifactType: "application/vnd.dev.sigstore.bundle.v0.3+json",
        annotations: { "dev.sigstore.bundle.predicateType": PROMOTION },
      }));
      mirror.on("GET", `/v2/flooded/flood/referrers/${image.digest}`, (_request, response) => {
        sendJson(response, 200, {
          schemaVersion: 2,
          mediaType: "application/vnd.oci.image.index.v1+json",
          manifests: listed,
        });
      });
      memoryRegistryRoutes(mirror, memory);
      const cwd = path.join(work, "flood");
      await mkdir(cwd);
      await writeFile(
        path.join(cwd, "promo.yaml"),
        [
          "registries:",
          `- name: ${staging.host}/staging`,
          "  src: true",
          `- name: ${mirror.host}/flooded`,
          "images:",
          "- name: flood",
          "  dmap:",
          `    "${image.digest}": ["v1"]`,
          "",
        ].join("\n"),
      );
      const verified = await verify(cwd, []);
      expectClear(verified, 1);
      // The list was read: the lookalikes are judged (none verifies), not the listing refused.
      expect(verified.stdout).toMatch(/^invalid .*promotion record/m);
      const lookalikeReads = mirror.requests.filter((request) =>
        listed.some((entry) => request.path === `/v2/flooded/flood/manifests/${entry.digest}`),
      ).length;
      expect(lookalikeReads).toBeLessThanOrEqual(100);
    } finally {
      await mirror.stop();
    }
  });
});

describe("a pull request's author names the manifest files", () => {
  // The thin tree's project folders are the author's names, and the record carries the manifest
  // path (review.manifest.path and .uri, the VSA's policy.uri). JSON escapes C0 controls, but a
  // bidi override (U+202E) or a zero-width character stays raw in the signed statement, where
  // `jq`, `cosign verify-attestation` and a browser show the path reordered. Authors and
  // subjects lose these characters (docs/signing.md); the path must too (or be refused).
  it("the signed statement carries no bidi, zero-width or filler character from a folder name or a subject", async () => {
    const { repo, git } = await gitRepository("bidi");
    const project = "app\u202Elmay.yaml\u200B";
    await mkdir(path.join(repo, "registry", "manifests", project), { recursive: true });
    await mkdir(path.join(repo, "registry", "images", project), { recursive: true });
    await writeFile(
      path.join(repo, "registry", "manifests", project, "promoter-manifest.yaml"),
      `registries:\n- name: ${staging.host}/staging\n  src: true\n- name: ${prod.host}/bidi\n`,
    );
    await writeFile(
      path.join(repo, "registry", "images", project, "images.yaml"),
      `- name: bidi\n  dmap:\n    "${images.bidi.digest}": ["v1"]\n`,
    );
    git("Bob", "init", "-q", "-b", "main");
    git("Bob", "add", "-A");
    // Hangul fillers and the combining grapheme joiner are invisible too (output/encode.ts escapes
    // them); the record's text cleaner keeps them.
    git("Bob", "commit", "-q", "-m", "promote bidi \u3164\u3164\u034f reviewed");
    const run = await runPromoter(
      [
        "promote",
        "--thin-manifest-dir",
        "registry",
        "--confirm",
        "--sign-key",
        path.join(work, "release.key"),
        "--sign-identity",
        IDENTITY,
      ],
      { cwd: repo, timeoutMs: 120_000, env: {} },
    );
    expectClear(run, 0);
    for (const type of [PROMOTION, VSA]) {
      const found = await attestationsOf(prod.url, "bidi/bidi", images.bidi.digest, type);
      expect(found, type).toHaveLength(1);
      const { envelope } = await bundleOf(prod.url, "bidi/bidi", found[0]!.digest);
      const text = Buffer.from(envelope.payload, "base64").toString("utf8");
      expect(text, type).toContain("/images.yaml");
      const invisible = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\u034f\u115f\u1160\u3164\uffa0]/u;
      // Each source on its own, so that a fix of one still shows the other.
      const statement = statementOf(envelope).predicate as {
        review?: { manifest?: { path?: string }; addedIn?: { subject?: string } };
        policy?: { uri?: string };
      };
      if (type === PROMOTION) {
        expect.soft(statement.review?.manifest?.path, "manifest path").not.toMatch(invisible);
        expect.soft(statement.review?.addedIn?.subject, "commit subject").toContain("reviewed");
        expect.soft(statement.review?.addedIn?.subject, "commit subject").not.toMatch(invisible);
      } else {
        expect.soft(statement.policy?.uri, "VSA policy uri").not.toMatch(invisible);
      }
      expect(text, type).not.toMatch(invisible);
    }
  });
});

describe("one push that merges several pull requests", () => {
  // A merge queue (or anyone merging twice before the workflow runs) pushes a fast-forward over
  // several merge commits at once: the push event's before..after holds every pull request of the
  // group, but HEAD is the last one's merge commit. Each edge was approved by the pull request
  // whose commits wrote it, not by the last one.
  // https://docs.github.com/en/repositories/configuring-branches-and-merges-in-your-repository/configuring-pull-request-merges/managing-a-merge-queue
  it("does not credit the last pull request's approvers with an edge an earlier one wrote", async () => {
    const { history, base } = await ManifestHistory.start(path.join(work, "queue"), {
      "promo.yaml": manifest(["base5"], ["queue"]),
    });
    const repo = history.repo;
    // Bob's pull request #41, approved by alice alone...
    const { head: bobHead, merge: bobMerge } = await history.mergedPullRequest({
      number: 41,
      author: "Bob",
      branch: "bob",
      commits: [
        { files: { "promo.yaml": manifest(["base5", "queued1"], ["queue"]) }, message: "promote queued1" },
      ],
    });
    // ...and carol's #42, approved by dave and erin, merged in the same push.
    const { head: carolHead, merge: carolMerge } = await history.mergedPullRequest({
      number: 42,
      author: "Carol",
      branch: "carol",
      commits: [
        {
          files: { "promo.yaml": manifest(["base5", "queued1", "queued2"], ["queue"]) },
          message: "promote queued2",
        },
      ],
    });
    standIn.addMergedPull("org/queue", {
      number: 41,
      author: "bob",
      head: bobHead,
      base: { ref: "main", sha: base },
      merge: bobMerge,
      reviews: [
        { ...standInReview("alice", "APPROVED", "2026-12-06T09:00:00Z"), author_association: "MEMBER" },
      ],
    });
    standIn.addMergedPull("org/queue", {
      number: 42,
      author: "carol",
      head: carolHead,
      base: { ref: "main", sha: bobMerge },
      merge: carolMerge,
      reviews: [
        { ...standInReview("dave", "APPROVED", "2026-12-06T09:10:00Z"), author_association: "MEMBER" },
        { ...standInReview("erin", "APPROVED", "2026-12-06T09:11:00Z"), author_association: "MEMBER" },
      ],
    });
    const event = path.join(work, "push-queue.json");
    await writeFile(event, JSON.stringify({ ref: "refs/heads/main", before: base, after: carolMerge }));

    const run = await promote(
      repo,
      githubPushEnvironment({ repository: "org/queue", event, token: TOKEN, apiUrl: standIn.url }),
    );
    expectClear(run, 0);
    const bobs = (await record("queue", "queued1")).review as {
      addedIn?: { sha?: string };
      pullRequest?: { number?: number };
      humanReview?: { reviewers?: { name: string }[] };
    };
    expect(bobs.addedIn?.sha).toBe(bobHead);
    // Pull request #42 never contained bob's commit; dave and erin never saw it.
    expect(bobs.pullRequest?.number).not.toBe(42);
    expect(bobs.humanReview?.reviewers?.map((reviewer) => reviewer.name) ?? []).not.toContain("dave");
    const verified = await verify(repo, ["--require-approvers", "2"]);
    expectClear(verified, 1);
    expect(verified.stdout).toMatch(/^unapproved .*queued1/m);
  });
});

describe("the VSA says what the run verified, no more", () => {
  // IMAGE_PROMOTER_MANIFEST_REVIEWED means "copied because a manifest in the reviewed repository
  // names it" (docs/signing.md), and the VSA's policy names the commit that approved it. A line
  // that is in no commit (the work tree was changed before the run: a CI step, a script) was
  // reviewed by nobody, and HEAD's manifest does not name the digest; slsa-verifier's
  // `--verified-level IMAGE_PROMOTER_MANIFEST_REVIEWED` (the admission path the docs give)
  // accepts the VSA all the same.
  it("does not claim MANIFEST_REVIEWED at HEAD for a digest only the work tree names", async () => {
    const { repo, git } = await gitRepository("uncommitted");
    git("Alice", "init", "-q", "-b", "main");
    await writeFile(path.join(repo, "promo.yaml"), manifest(["base6"], ["uncommitted"]));
    git("Alice", "add", "-A");
    git("Alice", "commit", "-q", "-m", "promote base6");
    const head = git("Alice", "rev-parse", "HEAD");
    await writeFile(path.join(repo, "promo.yaml"), manifest(["base6", "uncommitted"], ["uncommitted"]));
    expectClear(await promote(repo, {}), 0);

    const found = await attestationsOf(prod.url, "uncommitted/uncommitted", images.uncommitted.digest, VSA);
    expect(found).toHaveLength(1);
    const { envelope } = await bundleOf(prod.url, "uncommitted/uncommitted", found[0]!.digest);
    expect(await opensslVerifies(envelope, releasePublic)).toBe(true);
    const predicate = statementOf(envelope).predicate as {
      verifiedLevels?: string[];
      policy?: { digest?: { gitCommit?: string } };
    };
    // HEAD's promo.yaml does not name the digest: HEAD did not approve it.
    expect(predicate.policy?.digest?.gitCommit).not.toBe(head);
    expect(predicate.verifiedLevels).not.toContain("IMAGE_PROMOTER_MANIFEST_REVIEWED");
  });
});

describe("a pull request's author writes a commit subject of tens of megabytes", () => {
  // A subject of 48 MiB of one letter is ~50 KB pushed (git compresses it). `git blame
  // --porcelain` prints it as the `summary` of every line the commit wrote, and the record keeps
  // 200 characters of it, but recordText makes an array of every character first
  // (Array.from(text)) before cutting: memory grows with the subject, not with the record. The
  // run is given a small heap (the same for a control run that must pass) so that the test shows
  // in seconds what a 250 MB subject does to a default heap.
  it("records a commit with a huge subject without holding it whole", async () => {
    const { repo, git } = await gitRepository("huge");
    git("Alice", "init", "-q", "-b", "main");
    await writeFile(path.join(repo, "promo.yaml"), manifest(["small"], ["huge"]));
    git("Alice", "add", "-A");
    git("Alice", "commit", "-q", "-m", "promote small");
    const heap = { NODE_OPTIONS: "--max-old-space-size=192" };
    expectClear(await promote(repo, heap), 0);

    await writeFile(path.join(repo, "promo.yaml"), manifest(["small", "huge"], ["huge"]));
    const message = path.join(work, "huge-message.txt");
    await writeFile(message, `${"a".repeat(48 * 1024 * 1024)}\n`);
    git("Bob", "commit", "-q", "-a", "-F", message);
    const run = await promote(repo, heap);
    expectClear(run, 0);
    const predicate = await record("huge", "huge");
    const review = predicate.review as { addedIn?: { subject?: string } };
    expect(review.addedIn?.subject?.length).toBeLessThanOrEqual(201);
  }, 180_000);
});

describe("the event file is whatever an earlier workflow step left there", () => {
  // github-event.ts bounds the event file because "a workflow step before ours could have
  // written anything there"; it checks that it is a regular file, but only after opening it, and
  // opening a named pipe for reading waits for a writer that never comes.
  it("a named pipe at GITHUB_EVENT_PATH is a warning, not a run that never ends", async () => {
    const cwd = path.join(work, "fifo");
    await mkdir(cwd);
    await writeFile(path.join(cwd, "promo.yaml"), manifest(["fifo"], ["fifo"]));
    const pipe = path.join(work, "event.fifo");
    execFileSync("mkfifo", [pipe]);
    const run = await runPromoter(
      [
        "promote",
        "--manifest",
        "promo.yaml",
        "--confirm",
        "--sign-key",
        path.join(work, "release.key"),
        "--sign-identity",
        IDENTITY,
      ],
      {
        cwd,
        timeoutMs: 60_000,
        onTimeout: "resolve",
        env: {
          GITHUB_ACTIONS: "true",
          GITHUB_REPOSITORY: "org/manifests",
          GITHUB_EVENT_NAME: "push",
          GITHUB_EVENT_PATH: pipe,
        },
      },
    );
    expectClear(run, 0);
    expect(run.stderr).toMatch(/review facts: GITHUB_EVENT_PATH .* is not a regular file/);
  }, 90_000);
});

describe("a staging pusher copies our genuine .att of the digest from another name", () => {
  // cosign's layout: a run looks for its own attestation layers in the destinations' `.att` and
  // in staging's, which a staging pusher writes. Our record of the same bytes published under
  // another name (any public mirror has it) is "ours" by key and digest, so it is kept as the
  // attestation of this image and none naming this image is made: every mirror then holds only
  // records verify refuses. (The referrer-layout twin is "a mirror holding our genuine record of
  // the digest under another name" above; the fix is one: recognise as ours only a statement
  // naming this identity.)
  it("signs a record naming this identity although staging's .att holds ours for another name", async () => {
    const cwd = path.join(work, "attcopy");
    await mkdir(cwd);
    const promoteCosign = (identity: string) =>
      runPromoter(
        [
          "promote",
          "--manifest",
          "promo.yaml",
          "--confirm",
          "--sign-key",
          path.join(work, "release.key"),
          "--sign-identity",
          identity,
          "--attestation-layout",
          "cosign",
        ],
        { cwd, timeoutMs: 120_000, env: {} },
      );
    await writeFile(path.join(cwd, "promo.yaml"), manifest(["attcopy"], ["elsewhere"]));
    expectClear(await promoteCosign("other.example.io/project"), 0);
    const tag = `${images.attcopy.digest.replace(":", "-")}.att`;
    await skopeoCopy(
      `docker://${prod.host}/elsewhere/attcopy:${tag}`,
      `docker://${staging.host}/staging/attcopy:${tag}`,
      { all: false },
    );

    await writeFile(path.join(cwd, "promo.yaml"), manifest(["attcopy"], ["target"]));
    expectClear(await promoteCosign(IDENTITY), 0);
    const verified = await verify(cwd, []);
    expectClear(verified, 0);
  });
});

describe("a pull request's author adds a .mailmap", () => {
  // `git blame` rewrites names and e-mails through the work tree's .mailmap (git log's %an does
  // not): a .mailmap line in any change renames the author of every commit, anyone's, in the
  // addedIn of every later record, while the commit itself still says who wrote it.
  it("records the commit's own author, not the one .mailmap substitutes", async () => {
    const { repo, git } = await gitRepository("mailmap");
    git("Alice", "init", "-q", "-b", "main");
    await writeFile(path.join(repo, "promo.yaml"), manifest(["mailmap"], ["mailmap"]));
    git("Alice", "add", "-A");
    git("Alice", "commit", "-q", "-m", "promote mailmap");
    const commit = git("Alice", "rev-parse", "HEAD");
    await writeFile(
      path.join(repo, ".mailmap"),
      "Release Managers <release-managers@example.com> <alice@example.com>\n",
    );
    git("Mallory", "add", ".mailmap");
    git("Mallory", "commit", "-q", "-m", "docs: contributors");
    expectClear(await promote(repo, {}), 0);
    const review = (await record("mailmap", "mailmap")).review as {
      addedIn?: { sha?: string; author?: string };
    };
    expect(review.addedIn?.sha).toBe(commit);
    expect(review.addedIn?.author).toBe("Alice <alice@example.com>");
  });
});
