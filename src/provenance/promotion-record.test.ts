import { describe, expect, it } from "vitest";
import { parseDigest } from "../reference/index.js";
import {
  HUMAN_REVIEW_VCS_TYPE,
  parsePromotionStatement,
  PROMOTION_PREDICATE_TYPE,
  promotionStatement,
  recordedApprovers,
  recordedAuthor,
  shownReviewed,
  statementBytes,
  verificationPolicy,
  type PromotionRecord,
} from "./promotion-record.js";
import {
  parseVerificationSummary,
  PROMOTED_LEVEL,
  REVIEWED_LEVEL,
  verificationSummaryStatement,
} from "./verification-summary.js";

const DIGEST = parseDigest(`sha256:${"a".repeat(64)}`);
const OTHER = parseDigest(`sha256:${"b".repeat(64)}`);

const record: PromotionRecord = {
  digest: DIGEST,
  srcRef: `staging.example/app@${DIGEST}`,
  dstRef: `registry.example/app@${DIGEST}`,
  timestamp: "2026-12-05T10:00:00Z",
  promoterVersion: "1.2.3",
  review: {
    manifest: { path: "images/app/images.yaml", line: 7 },
    repository: "https://github.com/org/manifests",
    addedIn: { sha: "1".repeat(40), author: "maintainer" },
    merge: { sha: "2".repeat(40) },
    pullRequest: {
      number: 42,
      url: "https://github.com/org/manifests/pull/42",
      author: "maintainer",
      headSha: "1".repeat(40),
      baseRef: "refs/heads/main",
      baseSha: "3".repeat(40),
      approvers: [{ name: "owner", uri: "https://github.com/owner" }],
      approvalSource: "github-api",
    },
  },
};

describe("promotion statement", () => {
  it("carries kpromo's fields under kpromo's type and the review in human-review's shape", () => {
    const statement = promotionStatement(record);
    expect(statement.predicateType).toBe(PROMOTION_PREDICATE_TYPE);
    expect(statement.subject).toEqual([{ name: "registry.example/app", digest: { sha256: "a".repeat(64) } }]);
    const predicate = statement.predicate as Record<string, unknown>;
    expect(predicate).toMatchObject({
      srcRef: record.srcRef,
      dstRef: record.dstRef,
      digest: DIGEST,
      timestamp: record.timestamp,
      builderId: "pkg:npm/image-promoter@1.2.3",
      review: {
        manifest: {
          path: "images/app/images.yaml",
          line: 7,
          uri: `git+https://github.com/org/manifests@${"2".repeat(40)}#images/app/images.yaml`,
        },
        humanReview: {
          predicateType: HUMAN_REVIEW_VCS_TYPE,
          reviewers: [{ name: "owner", uri: "https://github.com/owner" }],
          targetTip: { name: "refs/heads/main", digest: { gitCommit: "2".repeat(40) } },
          mergeBase: { name: "refs/heads/main", digest: { gitCommit: "3".repeat(40) } },
          reviewLink: "https://github.com/org/manifests/pull/42",
        },
      },
    });
    expect(recordedApprovers(predicate)).toEqual([{ name: "owner", uri: "https://github.com/owner" }]);
    expect(recordedAuthor(predicate)).toBe("maintainer");
  });

  it("parses back only for its own subject and with kpromo's fields", () => {
    const bytes = statementBytes(promotionStatement(record));
    const parsed = parsePromotionStatement(bytes, DIGEST);
    expect(parsed.ok && parsed.value.dstRef).toBe(record.dstRef);
    expect(parsed.ok && parsed.value.promoterVersion).toBe("1.2.3");
    expect(parsePromotionStatement(bytes, OTHER)).toMatchObject({ ok: false, reason: /not about/ });
    const noSrc = promotionStatement(record);
    delete (noSrc.predicate as Record<string, unknown>).srcRef;
    expect(parsePromotionStatement(statementBytes(noSrc), DIGEST)).toMatchObject({ ok: false });
    const lying = promotionStatement(record);
    (lying.predicate as Record<string, unknown>).digest = OTHER;
    expect(parsePromotionStatement(statementBytes(lying), DIGEST)).toMatchObject({
      ok: false,
      reason: /digest is/,
    });
    const otherType = { ...promotionStatement(record), predicateType: "https://slsa.dev/provenance/v1" };
    expect(parsePromotionStatement(statementBytes(otherType), DIGEST)).toMatchObject({ ok: false });
    expect(parsePromotionStatement(new TextEncoder().encode("{"), DIGEST)).toMatchObject({ ok: false });
  });
});

describe("verification summary", () => {
  it("is a VSA v1 with our level and the build level staging proved", () => {
    const statement = verificationSummaryStatement({
      digest: DIGEST,
      resourceUri: `registry.example/app@${DIGEST}`,
      timeVerified: "2026-12-05T10:00:00Z",
      promoterVersion: "1.2.3",
      policy: {
        uri: "git+https://github.com/org/manifests#images/app/images.yaml",
        gitCommit: "2".repeat(40),
      },
      inputAttestations: [{ uri: `staging.example/app@${OTHER}`, digest: OTHER }],
      slsaBuildLevel: 3,
    });
    expect(statement.predicate).toMatchObject({
      verifier: { id: "pkg:npm/image-promoter@1.2.3" },
      policy: { digest: { gitCommit: "2".repeat(40) } },
      inputAttestations: [{ digest: { sha256: "b".repeat(64) } }],
      verificationResult: "PASSED",
      verifiedLevels: ["SLSA_BUILD_LEVEL_3", PROMOTED_LEVEL],
      slsaVersion: "1.0",
    });
    const parsed = parseVerificationSummary(statementBytes(statement), DIGEST);
    expect(parsed.ok && parsed.value.verifiedLevels).toEqual(["SLSA_BUILD_LEVEL_3", PROMOTED_LEVEL]);
    expect(parseVerificationSummary(statementBytes(statement), OTHER).ok).toBe(false);
    // Reviewed only when the caller shows it.
    const reviewed = verificationSummaryStatement({
      digest: DIGEST,
      resourceUri: `registry.example/app@${DIGEST}`,
      timeVerified: "2026-12-05T10:00:00Z",
      promoterVersion: "1.2.3",
      inputAttestations: [],
      reviewed: true,
    });
    expect(reviewed.predicate).toMatchObject({ verifiedLevels: [PROMOTED_LEVEL, REVIEWED_LEVEL] });
  });

  it("names the approving commit, and claims review, only for a committed line a pull request with an approver brought", () => {
    const merge = { sha: "3".repeat(40) };
    const addedIn = { sha: "4".repeat(40) };
    const pullRequest = { number: 7, approvers: [{ name: "carol", uri: "https://github.com/carol" }] };
    const base = {
      manifest: { path: "images/app/images.yaml", line: 4 },
      repository: "https://github.com/org/m",
    };
    // Committed, approved: the merge commit approved it.
    expect(verificationPolicy({ ...base, merge, addedIn, pullRequest })).toEqual({
      uri: `git+https://github.com/org/m@${merge.sha}#images/app/images.yaml`,
      gitCommit: merge.sha,
    });
    expect(shownReviewed({ ...base, merge, addedIn, pullRequest })).toBe(true);
    // Only the work tree names it: no commit approved it, and nothing was reviewed.
    expect(verificationPolicy({ ...base, merge })).toEqual({
      uri: "git+https://github.com/org/m#images/app/images.yaml",
    });
    expect(shownReviewed({ ...base, merge, pullRequest })).toBe(false);
    // Committed, but no approver recorded (no token, a stale approval): promoted, not reviewed.
    expect(shownReviewed({ ...base, merge, addedIn, pullRequest: { number: 7, approvers: [] } })).toBe(false);
    expect(shownReviewed({ ...base, merge, addedIn })).toBe(false);
  });
});
