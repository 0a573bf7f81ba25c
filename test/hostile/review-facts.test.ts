import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attestationsOf, bundleOf, opensslVerifies, statementOf } from "../support/attestation-judge.js";
import { GitHubStandIn, standInReview } from "../support/github-stand-in.js";
import { pushToRegistry } from "../support/hostile-signing.js";
import { expectClear, requireBuiltCli, runPromoter } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { githubPushEnvironment, ManifestHistory } from "../support/manifest-history.js";
import { makeImage, type TestImage } from "../support/test-images.js";

/**
 * What a pull request's author can make a signed promotion record say about approval, through the
 * real CLI, a real registry, real git history and GitHub's API (a stand-in on 127.0.0.1):
 * - an approval given before the author pushed another commit did not see that commit: it is not
 *   recorded (GitHub keeps such approvals unless the repository dismisses stale ones);
 * - an `Approved-by:` trailer the author writes into their own commit message is text, not an
 *   approval (GitHub Actions never reads trailers);
 * - a digest added to the manifest before the change (promoted now, e.g. to a new mirror) was not
 *   approved by this run's pull request, and its record does not say it was;
 * - control characters in the author's commit subject reach the record escaped, never raw;
 * and `verify --attestations --require-approvers 1` then refuses what nobody approved.
 */

const PROMOTION = "https://k8s.io/promo-tools/promotion/v1";
const IDENTITY = "registry.example.io/project";
const TOKEN = "ghs_hostile-review-token-0123456789";
const REPOSITORY = "https://github.com/org/manifests";

let work: string;
let staging: TestRegistry;
let prod: TestRegistry;
let standIn: GitHubStandIn;
const release = generateKeyPairSync("ec", { namedCurve: "P-256" });
const releasePublic = release.publicKey.export({ type: "spki", format: "pem" }).toString();

const images: Record<"old" | "benign" | "sneaky", TestImage> = {
  old: makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: "review-old" }),
  benign: makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: "review-benign" }),
  sneaky: makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: "review-sneaky" }),
};

function manifest(names: readonly (keyof typeof images)[]): string {
  return [
    "registries:",
    `- name: ${staging.host}/staging`,
    "  src: true",
    `- name: ${prod.host}/prod`,
    "images:",
    ...names.flatMap((name) => [`- name: ${name}`, "  dmap:", `    "${images[name].digest}": ["v1"]`]),
    "",
  ].join("\n");
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "hostile-review-"));
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

describe("a pull request's author cannot make the record claim an approval", () => {
  it("records neither a stale approval, nor a trailer, nor this change's approval of an older line", async () => {
    const { history, base } = await ManifestHistory.start(
      path.join(work, "repo"),
      { "promo.yaml": manifest(["old"]) },
      "Alice",
      "promote old",
    );
    const repo = history.repo;
    const pull = await history.mergedPullRequest({
      number: 9,
      author: "Bob",
      branch: "feature",
      commits: [
        // A benign commit that carol approves...
        { files: { "promo.yaml": manifest(["old", "benign"]) }, message: "promote benign" },
        // ...then one more, after the approval, with a trailer and a terminal escape of his making.
        {
          files: { "promo.yaml": manifest(["old", "benign", "sneaky"]) },
          message: ["promote sneaky \u001b[32mreviewed\u001b[0m", "Approved-by: carol"],
        },
      ],
    });
    const { head, merge } = pull;
    const approved = pull.commits[0] ?? "";
    standIn.addMergedPull("org/manifests", {
      number: 9,
      author: "bob",
      head,
      base: { ref: "main", sha: base },
      merge,
      reviews: [standInReview("carol", "APPROVED", "2026-12-06T09:00:00Z", approved)],
    });
    const event = path.join(work, "event.json");
    await writeFile(event, JSON.stringify({ ref: "refs/heads/main", before: base, after: merge }));

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
        cwd: repo,
        timeoutMs: 120_000,
        env: githubPushEnvironment({ repository: "org/manifests", event, token: TOKEN, apiUrl: standIn.url }),
      },
    );
    expectClear(run, 0);
    // One warning says whose approval was left out and why.
    expect(run.stderr).toContain(
      `review facts: pull request #9: approvals of an earlier commit than its head ${head.slice(0, 12)} did not see what was merged; not recorded: carol (of ${approved.slice(0, 12)})`,
    );

    const records = new Map<string, Record<string, unknown>>();
    for (const name of ["old", "benign", "sneaky"] as const) {
      const digest = images[name].digest;
      const found = await attestationsOf(prod.url, `prod/${name}`, digest, PROMOTION);
      expect(found, name).toHaveLength(1);
      const { envelope } = await bundleOf(prod.url, `prod/${name}`, found[0]!.digest);
      expect(await opensslVerifies(envelope, releasePublic), name).toBe(true);
      const text = Buffer.from(envelope.payload, "base64").toString("utf8");
      expect(text, name).not.toContain("\u001b");
      records.set(name, statementOf(envelope).predicate.review as Record<string, unknown>);
    }
    // Alice's line was on main before the change: no pull request approved it in this run.
    expect(records.get("old")).toMatchObject({ addedIn: { sha: base }, merge: { sha: merge } });
    expect(records.get("old")).not.toHaveProperty("pullRequest");
    expect(records.get("old")).not.toHaveProperty("humanReview");
    // Bob's lines are the pull request's, with no approver: carol's approval is stale, and his
    // trailer names her only in his own text.
    for (const name of ["benign", "sneaky"]) {
      expect(records.get(name), name).toMatchObject({
        repository: REPOSITORY,
        pullRequest: { number: 9, author: "bob", approvalSource: "github-api" },
        humanReview: { reviewers: [] },
      });
    }
    expect(records.get("sneaky")).toMatchObject({
      addedIn: { sha: head, subject: expect.stringContaining("promote sneaky") as unknown },
    });

    const verify = await runPromoter(
      [
        "verify",
        "--manifest",
        "promo.yaml",
        "--public-key",
        path.join(work, "release.pub"),
        "--sign-identity",
        IDENTITY,
        "--attestations",
        "--require-approvers",
        "1",
      ],
      { cwd: repo, timeoutMs: 60_000 },
    );
    expectClear(verify, 1);
    expect(verify.stdout).toMatch(/unapproved/);
    expect(verify.stdout).toContain("0 approvers recorded");
  });
});
