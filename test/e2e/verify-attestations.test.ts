import { createHash, generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Descriptor } from "../../src/oci/index.js";
import {
  PROMOTION_PREDICATE_TYPE,
  VSA_PREDICATE_TYPE,
  type ReviewRecord,
} from "../../src/provenance/index.js";
import { createStoreProvider } from "../../src/registry/index.js";
import { parseRegistryLocation, parseRepositoryPath, repositoryIn } from "../../src/reference/index.js";
import {
  attestationsFor,
  corruptStoredBlob,
  promotionRecord,
  pushReferrers,
  referrerOfBundle,
  signedReferrer,
  withEditedPayload,
  type RecordFacts,
  type SignedReferrer,
} from "../support/attestations.js";
import { expectClear, requireBuiltCli, runPromoter } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import { makeImage, makeIndex, pushToStore, type TestContent } from "../support/test-images.js";

/**
 * `promoter verify --attestations` and `promoter explain`, through the built CLI as a child
 * process, against two real registries (distribution 2.8, no referrers API: the attestations
 * are listed by the referrers fallback tag). The images and their signatures are put in place
 * first (pushed, then signed by `verify --repair`); the attestations are made with the writer's
 * own pieces (test/support/attestations.ts) and then, at the second mirror, removed, altered,
 * signed by a stranger or pointed at another digest.
 */

const IDENTITY = "registry.example.io/project";
const release = generateKeyPairSync("ec", { namedCurve: "P-256" });
const releasePrivate = release.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const releaseKeyId = `sha256:${createHash("sha256")
  .update(release.publicKey.export({ type: "spki", format: "der" }))
  .digest("hex")}`;
const stranger = generateKeyPairSync("ec", { namedCurve: "P-256" });
const strangerPrivate = stranger.privateKey.export({ type: "pkcs8", format: "pem" }).toString();

function image(seed: string, platform?: { architecture: string; os: string }) {
  return makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed, ...(platform ? { platform } : {}) });
}
const amd64 = image("att-amd64", { architecture: "amd64", os: "linux" });
const arm64 = image("att-arm64", { architecture: "arm64", os: "linux" });
const IMAGES: Readonly<Record<string, TestContent>> = {
  good: makeIndex([amd64, arm64], { mediaType: "oci" }),
  self: image("att-self"),
  missing: image("att-missing"),
  blob: image("att-blob"),
  edited: image("att-edited"),
  stranger: image("att-stranger"),
  subject: image("att-subject"),
  hostile: image("att-hostile"),
};

const REVIEW: ReviewRecord = {
  manifest: { path: "registry.k8s.io/images/k8s-staging-app/images.yaml", line: 12 },
  repository: "https://github.com/example/k8s.io",
  addedIn: { sha: "a".repeat(40), author: "alice", subject: "Promote app v1" },
  merge: { sha: "b".repeat(40), subject: "Merge pull request #42 from alice/app-v1" },
  pullRequest: {
    number: 42,
    url: "https://github.com/example/k8s.io/pull/42",
    author: "alice",
    approvers: [{ name: "bob" }],
    approvalSource: "github-api",
  },
};
const BUILD = {
  builderId: "https://github.com/example/app/.github/workflows/release.yaml@refs/tags/v1",
  sourceRepository: "https://github.com/example/app",
  sourceCommit: "c".repeat(40),
  attestation: {
    digest: `sha256:${"d".repeat(64)}`,
    predicateType: "https://slsa.dev/provenance/v1",
    signer: "builder",
  },
} as RecordFacts["build"];

let work: string;
let mirrors: TestRegistry[];

function descriptorOf(content: TestContent): Descriptor {
  return { mediaType: content.mediaType, digest: content.digest, size: content.bytes.length };
}

function facts(name: string, content: TestContent, extra: Partial<RecordFacts> = {}): RecordFacts {
  return {
    identity: `${IDENTITY}/${name}`,
    digest: content.digest,
    srcRef: `staging.example/${name}@${content.digest}`,
    review: REVIEW,
    ...(BUILD ? { build: BUILD } : {}),
    ...extra,
  };
}

async function both(name: string, content: TestContent, extra: Partial<RecordFacts> = {}) {
  const made = await attestationsFor(releasePrivate, facts(name, content, extra), descriptorOf(content));
  return [made.promotion, made.summary];
}

function push(mirror: TestRegistry, name: string, referrers: SignedReferrer[]) {
  return pushReferrers(mirror, `prod/${name}`, referrers, work);
}

function manifestYaml(names: readonly string[]): string {
  return [
    "registries:",
    `- name: ${mirrors[0]!.host}/staging`,
    "  src: true",
    ...mirrors.map((mirror) => `- name: ${mirror.host}/prod`),
    "images:",
    ...names.map((name) => `- name: ${name}\n  dmap:\n    "${IMAGES[name]!.digest}": ["v1"]`),
    "",
  ].join("\n");
}

function promoter(...args: string[]) {
  return runPromoter(args, { cwd: work, timeoutMs: 120_000 });
}

/** `verify --manifest NAME.yaml --attestations`, as the release key and identity. */
function verifyAttestations(name: string, ...args: string[]) {
  return promoter(
    "verify",
    "--manifest",
    `${name}.yaml`,
    "--public-key",
    "release.pub",
    "--sign-identity",
    IDENTITY,
    "--attestations",
    ...args,
  );
}

function mirrorKey(index: number, name: string): string {
  return `${mirrors[index]!.host}/prod/${name}`;
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "verify-attestations-"));
  mirrors = await Promise.all([startRegistry(), startRegistry()]);
  await writeFile(path.join(work, "release.key"), releasePrivate);
  await writeFile(
    path.join(work, "release.pub"),
    release.publicKey.export({ type: "spki", format: "pem" }).toString(),
  );
  for (const name of Object.keys(IMAGES)) {
    await writeFile(path.join(work, `${name}.yaml`), manifestYaml([name]));
  }
  await writeFile(path.join(work, "all.yaml"), manifestYaml(Object.keys(IMAGES)));
  const provider = createStoreProvider({ homeDirectory: work, env: {} });
  try {
    for (const mirror of mirrors) {
      for (const [name, content] of Object.entries(IMAGES)) {
        const store = provider.repository(
          repositoryIn(parseRegistryLocation(`${mirror.host}/prod`), parseRepositoryPath(name)),
        );
        await pushToStore(store, content, ["v1"]);
      }
    }
  } finally {
    await provider.close();
  }
  // Every image signed at every mirror, by the CLI itself: the signature check passes throughout.
  const signed = await promoter(
    "verify",
    "--manifest",
    "all.yaml",
    "--public-key",
    "release.pub",
    "--sign-identity",
    IDENTITY,
    "--repair",
    "--confirm",
    "--sign-key",
    "release.key",
    "--quiet",
  );
  expect(signed.status, signed.stdout + signed.stderr).toBe(0);

  // Each statement is signed once and the same referrer goes to every mirror, as promote does.
  const good = IMAGES.good!;
  const goodReferrers = [
    ...(await both("good", good)),
    ...(await both("good", amd64, { index: good.digest })),
    ...(await both("good", arm64, { index: good.digest })),
  ];
  for (const mirror of mirrors) await push(mirror, "good", goodReferrers);
  // Approved by its own author only; the record signed for each mirror apart (valid, not the same).
  const selfReview: ReviewRecord = {
    ...REVIEW,
    pullRequest: { ...REVIEW.pullRequest!, approvers: [{ name: "Alice" }] },
  };
  const [, selfSummary] = await both("self", IMAGES.self!, { review: selfReview });
  for (const mirror of mirrors) {
    const [record] = await both("self", IMAGES.self!, { review: selfReview });
    await push(mirror, "self", [record!, selfSummary!]);
  }

  // The attacks: the first mirror is right, the second is not.
  const genuine: Record<string, SignedReferrer[]> = {};
  for (const name of ["missing", "blob", "edited", "stranger", "subject"]) {
    genuine[name] = await both(name, IMAGES[name]!);
    await push(mirrors[0]!, name, genuine[name]);
  }
  await push(mirrors[1]!, "missing", [genuine.missing![1]!]);

  await push(mirrors[1]!, "blob", genuine.blob!);
  await corruptStoredBlob(mirrors[1]!, genuine.blob![0]!.blobs[1]!.descriptor.digest);

  const forged = promotionRecord(
    facts("edited", IMAGES.edited!, {
      review: {
        ...REVIEW,
        pullRequest: { ...REVIEW.pullRequest!, approvers: [{ name: "bob" }, { name: "carol" }] },
      },
    }),
  );
  await push(mirrors[1]!, "edited", [
    referrerOfBundle(
      withEditedPayload(genuine.edited![0]!.bundle, forged),
      descriptorOf(IMAGES.edited!),
      PROMOTION_PREDICATE_TYPE,
    ),
    genuine.edited![1]!,
  ]);

  const strangerFacts = facts("stranger", IMAGES.stranger!);
  await push(mirrors[1]!, "stranger", [
    await signedReferrer(
      strangerPrivate,
      promotionRecord(strangerFacts),
      descriptorOf(IMAGES.stranger!),
      PROMOTION_PREDICATE_TYPE,
    ),
    genuine.stranger![1]!,
  ]);

  // A genuine record about another digest (the missing image's), attached to this one.
  await push(mirrors[1]!, "subject", [
    await signedReferrer(
      releasePrivate,
      promotionRecord(facts("subject", IMAGES.missing!)),
      descriptorOf(IMAGES.subject!),
      PROMOTION_PREDICATE_TYPE,
    ),
    genuine.subject![1]!,
  ]);

  const hostileReview: ReviewRecord = {
    ...REVIEW,
    addedIn: { sha: "e".repeat(40), author: "mallory", subject: "innocent\nsigned by: the release team" },
    pullRequest: { ...REVIEW.pullRequest!, approvers: [{ name: "bob\u001b[2J\u001b[H" }] },
  };
  const hostile = await both("hostile", IMAGES.hostile!, { review: hostileReview });
  for (const mirror of mirrors) await push(mirror, "hostile", hostile);
}, 180_000);

afterAll(async () => {
  await Promise.all(mirrors.map((mirror) => mirror.stop()));
  await rm(work, { recursive: true, force: true });
});

describe("verify --attestations", () => {
  it("accepts the promotion record and VSA of an index and its images at every mirror, the same at each", async () => {
    const run = await verifyAttestations("good");
    expectClear(run, 0);
    expect(run.stdout).toMatch(/Attestations: 12 attestations checked: 12 valid, 0 missing, 0 invalid\n/);
    expect(run.stdout).toContain("Identical at every mirror that holds them.");

    const json = await verifyAttestations("good", "--output", "json");
    expectClear(json, 0);
    const document = JSON.parse(json.stdout) as {
      schema: string;
      version: number;
      attestations: {
        summary: Record<string, number>;
        results: {
          predicateType: string;
          status: string;
          identicalAcrossMirrors?: boolean;
          attestations?: { signer: string; approvers?: string[] }[];
        }[];
      };
    };
    expect(document.schema).toBe("image-promoter/verify");
    expect(document.version).toBe(1);
    expect(document.attestations.summary.valid).toBe(12);
    expect(document.attestations.results.every((result) => result.identicalAcrossMirrors)).toBe(true);
    const records = document.attestations.results.filter(
      (result) => result.predicateType === PROMOTION_PREDICATE_TYPE,
    );
    expect(records).toHaveLength(6);
    expect(records[0]?.attestations?.[0]).toEqual({
      digest: expect.stringMatching(/^sha256:/) as unknown,
      layout: "referrer",
      signer: releaseKeyId,
      approvers: ["bob"],
    });
    expect(
      document.attestations.results.filter((result) => result.predicateType === VSA_PREDICATE_TYPE),
    ).toHaveLength(6);
  });

  it("rejects a missing record at one mirror", async () => {
    const run = await verifyAttestations("missing");
    expectClear(run, 1);
    expect(run.stdout).toMatch(/4 attestations checked: 3 valid, 1 missing, 0 invalid/);
    expect(run.stdout).toMatch(
      new RegExp(
        `missing +${escape(mirrorKey(1, "missing"))} .*promotion record +${escape(mirrorKey(1, "missing"))}: no ${escape(PROMOTION_PREDICATE_TYPE)} attestation`,
      ),
    );
  });

  it("rejects an attestation whose stored bundle was altered (digest mismatch)", async () => {
    const run = await verifyAttestations("blob");
    expectClear(run, 1);
    expect(run.stdout).toMatch(/3 valid, 0 missing, 1 invalid/);
    expect(run.stdout).toMatch(
      new RegExp(
        `invalid +${escape(mirrorKey(1, "blob"))} .*${escape(mirrorKey(1, "blob"))}: referrer sha256:[0-9a-f]{64}: .*the bytes received hash to sha256:`,
      ),
    );
  });

  it("rejects a record whose statement was edited after signing (more approvers)", async () => {
    const run = await verifyAttestations("edited");
    expectClear(run, 1);
    expect(run.stdout).toMatch(/3 valid, 0 missing, 1 invalid/);
    expect(run.stdout).toMatch(
      new RegExp(
        `invalid +${escape(mirrorKey(1, "edited"))} .*referrer sha256:[0-9a-f]{64}: the bundle does not verify`,
      ),
    );
  });

  it("rejects a record signed by another key", async () => {
    const run = await verifyAttestations("stranger");
    expectClear(run, 1);
    expect(run.stdout).toMatch(
      new RegExp(
        `invalid +${escape(mirrorKey(1, "stranger"))} .*referrer sha256:[0-9a-f]{64}: signed with another key`,
      ),
    );
  });

  it("rejects a genuine record about another digest attached to this one", async () => {
    const run = await verifyAttestations("subject");
    expectClear(run, 1);
    expect(run.stdout).toMatch(
      new RegExp(
        `invalid +${escape(mirrorKey(1, "subject"))} .*referrer sha256:[0-9a-f]{64}: the statement does not name ${IMAGES.subject!.digest}`,
      ),
    );
  });

  it("applies the approver policy", async () => {
    expectClear(
      await verifyAttestations("good", "--require-approvers", "1", "--require-independent-approver"),
      0,
    );
    const two = await verifyAttestations("good", "--require-approvers", "2");
    expectClear(two, 1);
    expect(two.stdout).toMatch(/6 unapproved/);
    expect(two.stdout).toContain("1 approver recorded (bob), at least 2 required");

    expectClear(await verifyAttestations("self"), 0);
    const independent = await verifyAttestations("self", "--require-independent-approver");
    expectClear(independent, 1);
    expect(independent.stdout).toContain(
      "no approver other than the pull request's author alice (approvers: Alice)",
    );
    // Each mirror holds its own (separately signed) record: both valid, not the same.
    expect(independent.stdout).toContain("Not identical across mirrors: promotion record of");

    expectClear(
      await promoter(
        "verify",
        "--manifest",
        "good.yaml",
        "--public-key",
        "release.pub",
        "--require-approvers",
        "1",
      ),
      2,
      /give --attestations too/,
    );
  });
});

describe("explain", () => {
  it("prints the chain of a production image read at its reference", async () => {
    const run = await promoter(
      "explain",
      `${mirrorKey(0, "good")}@${amd64.digest}`,
      "--public-key",
      "release.pub",
    );
    expectClear(run, 0);
    const out = run.stdout;
    expect(out).toContain(
      `built by    ${BUILD!.builderId}, from https://github.com/example/app@${"c".repeat(40)}`,
    );
    expect(out).toContain(`from commit ${"a".repeat(40)} "Promote app v1" by alice`);
    expect(out).toContain(
      "approved by bob in pull request #42 https://github.com/example/k8s.io/pull/42 by alice (from github-api)",
    );
    expect(out).toContain(`merged in   ${"b".repeat(40)} "Merge pull request #42 from alice/app-v1"`);
    expect(out).toContain("promoted at 2026-12-05T12:00:00Z by pkg:npm/image-promoter@9.9.9 (version 9.9.9)");
    expect(out).toContain(`as          ${IDENTITY}/good@${amd64.digest}`);
    expect(out).toContain(`signed by   ${releaseKeyId}`);
    expect(out).toContain("summary     VSA PASSED: IMAGE_PROMOTER_MANIFEST_PROMOTED");
    expect(out).toMatch(
      new RegExp(`${escape(mirrorKey(0, "good"))}  promotion record valid \\(referrer sha256:`),
    );
  });

  it("finds every mirror of the canonical name through the manifests, and says what is wrong where", async () => {
    const good = await promoter(
      "explain",
      `${IDENTITY}/good@${arm64.digest}`,
      "--manifest",
      "good.yaml",
      "--sign-identity",
      IDENTITY,
      "--public-key",
      "release.pub",
      "--output",
      "json",
    );
    expectClear(good, 0);
    const document = JSON.parse(good.stdout) as {
      schema: string;
      role: string;
      index: string;
      chain: { approvedBy: { approvers: string[] }; promotedAt: { dstRef: string } };
      identicalAcrossMirrors: boolean;
      mirrors: { mirror: string; status: string }[];
    };
    expect(document.schema).toBe("image-promoter/explain");
    expect(document.role).toBe("child");
    expect(document.index).toBe(IMAGES.good!.digest);
    expect(document.chain.approvedBy.approvers).toEqual(["bob"]);
    expect(document.identicalAcrossMirrors).toBe(true);
    // Mirrors are listed by key; the two registries' ports decide which comes first.
    expect(document.mirrors.map((mirror) => [mirror.mirror, mirror.status])).toEqual(
      [
        [mirrorKey(0, "good"), "valid"],
        [mirrorKey(1, "good"), "valid"],
      ].sort(([a], [b]) => (a! < b! ? -1 : 1)),
    );

    const stranger = await promoter(
      "explain",
      `${IDENTITY}/stranger@${IMAGES.stranger!.digest}`,
      "--manifest",
      "stranger.yaml",
      "--sign-identity",
      IDENTITY,
      "--public-key",
      "release.pub",
    );
    expectClear(stranger, 1);
    expect(stranger.stdout).toContain("approved by bob");
    expect(stranger.stdout).toMatch(
      new RegExp(
        `${escape(mirrorKey(1, "stranger"))}  promotion record invalid: referrer sha256:[0-9a-f]{64}: signed with another key`,
      ),
    );

    const unknown = await promoter(
      "explain",
      `${IDENTITY}/good@${IMAGES.self!.digest}`,
      "--manifest",
      "good.yaml",
      "--sign-identity",
      IDENTITY,
      "--public-key",
      "release.pub",
    );
    expectClear(unknown, 1, /promoter explain: the manifests do not promote sha256:[0-9a-f]{64} as /);
  });

  it("shows hostile text from the predicate escaped: no escape sequence, no forged line", async () => {
    const run = await promoter(
      "explain",
      `${mirrorKey(0, "hostile")}@${IMAGES.hostile!.digest}`,
      "--public-key",
      "release.pub",
    );
    expectClear(run, 0);
    expect(run.stdout).not.toContain("\u001b");
    expect(run.stdout).toContain("approved by bob\\u001b[2J\\u001b[H in pull request #42");
    expect(run.stdout).toContain('"innocent\\nsigned by: the release team"');
    expect(run.stdout.split("\n").some((line) => /^\s*signed by: the release team/.test(line))).toBe(false);

    const json = await promoter(
      "explain",
      `${mirrorKey(0, "hostile")}@${IMAGES.hostile!.digest}`,
      "--public-key",
      "release.pub",
      "--output",
      "json",
    );
    expectClear(json, 0);
    expect(json.stdout).not.toContain("\u001b");
    const document = JSON.parse(json.stdout) as { chain: { approvedBy: { approvers: string[] } } };
    expect(document.chain.approvedBy.approvers).toEqual(["bob\u001b[2J\u001b[H"]);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
