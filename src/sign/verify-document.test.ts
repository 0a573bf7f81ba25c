import { describe, expect, it } from "vitest";
import type { Digest, RepositoryPath } from "../reference/index.js";
import type { SignatureTarget } from "./attachment-plan.js";
import { repairTargets } from "./repair-signatures.js";
import {
  verifyDocument,
  verifyProblems,
  VERIFY_DOCUMENT_SCHEMA,
  VERIFY_DOCUMENT_VERSION,
} from "./verify-document.js";
import type { VerifyResult, VerifyStatus } from "./verify-targets.js";

const DIGEST = `sha256:${"a".repeat(64)}` as Digest;

function destination(host: string) {
  return {
    location: { kind: "remote", host, repository: "app" },
    key: `${host}/app`,
    registry: host,
  } as SignatureTarget["destinations"][number];
}

const TARGET: SignatureTarget = {
  project: "foo",
  image: "app" as RepositoryPath,
  source: { kind: "remote", host: "staging.example", repository: "app" } as SignatureTarget["source"],
  sourceKey: "staging.example/app",
  digest: DIGEST,
  identities: ["prod-a.example/app"],
  destinations: [destination("prod-a.example"), destination("prod-b.example"), destination("prod-c.example")],
  copied: false,
};

function result(destinationKey: string, status: VerifyStatus): VerifyResult {
  return {
    target: TARGET,
    subject: DIGEST,
    role: "root",
    destination: destinationKey,
    identity: "prod-a.example/app",
    status,
    reasons: status === "valid" ? [] : [`${status} here`],
    signers: [],
  };
}

const RESULTS = [
  result("prod-a.example/app", "valid"),
  result("prod-b.example/app", "missing"),
  result("prod-c.example/app", "not-promoted"),
];

describe("verify results", () => {
  it("are problems when missing, invalid or unreadable", () => {
    expect(verifyProblems(RESULTS).map((entry) => entry.destination)).toEqual(["prod-b.example/app"]);
  });

  it("are repaired only where the image is", () => {
    const [broken, ...rest] = repairTargets([TARGET], RESULTS);
    expect(rest).toEqual([]);
    expect(broken?.destinations.map((entry) => entry.key)).toEqual([
      "prod-a.example/app",
      "prod-b.example/app",
    ]);
    // Where the image is not, the signature is only looked for.
    expect(broken?.elsewhere?.map((entry) => entry.key)).toEqual(["prod-c.example/app"]);
    expect(repairTargets([TARGET], [result("prod-a.example/app", "valid")])).toEqual([]);
  });

  it("make the verify document", () => {
    const document = verifyDocument(RESULTS, { now: new Date("2026-01-02T00:00:00Z") });
    expect(document).toEqual({
      schema: VERIFY_DOCUMENT_SCHEMA,
      version: VERIFY_DOCUMENT_VERSION,
      createdAt: "2026-01-02T00:00:00.000Z",
      summary: { valid: 1, missing: 1, invalid: 0, unreadable: 0, "not-promoted": 1 },
      results: [
        expect.objectContaining({ destination: "prod-a.example/app", status: "valid" }),
        expect.objectContaining({
          destination: "prod-b.example/app",
          status: "missing",
          reasons: ["missing here"],
        }),
        expect.objectContaining({ destination: "prod-c.example/app", status: "not-promoted" }),
      ],
    });
    expect(document).not.toHaveProperty("repair");
  });
});
