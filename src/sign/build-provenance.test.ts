import { describe, expect, it } from "vitest";
import { readThirdParty, readThirdPartyJson } from "../../test/support/third-party-artifacts.js";
import { parseDigest, type Digest } from "../reference/index.js";
import { bundleStatement } from "./bundle-format.js";
import {
  judgeProvenance,
  MAX_PROVENANCE_FIELD_LENGTH,
  parseSlsaProvenance,
  repositoryOfGitUri,
  SLSA_PROVENANCE_V02,
  SLSA_PROVENANCE_V1,
  type ProvenancePolicy,
  type VerifiedStatement,
} from "./build-provenance.js";
import { SignError } from "./errors.js";
import { createKeylessPolicy, trustMaterialFromTrustedRoot } from "./keyless-policy.js";
import { provenancePolicyOf } from "./source-policy.js";

/**
 * Staging's SLSA provenance read and judged, on real provenance: two keyless sigstore bundles
 * GitHub Actions builders made and slsa-verifier keeps as test data (test/fixtures/third-party/
 * SOURCES.md), one SLSA v1 (bazel-contrib/publish-to-bcr for aspect-build/rules_lint,
 * `cli/slsa-verifier/testdata/bcr/MODULE.bazel.intoto.jsonl`) and one SLSA v0.2 in an in-toto
 * Statement v0.1 (slsa-github-generator's generic generator for slsa-framework/example-package,
 * `cli/slsa-verifier/testdata/gha_generic/v2.1.0/binary-linux-amd64-workflow_dispatch.intoto.jsonl`).
 * They verify with the public-good trusted root cosign keeps; then hostile variants of their
 * statements.
 */

const V1_BUNDLE = "slsa-verifier/MODULE.bazel.intoto.jsonl";
const V1_SUBJECT = parseDigest("sha256:06ce330900a7d6403bc8d88e5dfad6aeeb8ae40179f66bb89e69c8bf6f6b1a0b");
const V1_BUILDER =
  "https://github.com/bazel-contrib/publish-to-bcr/.github/workflows/publish.yaml@refs/tags/v0.0.1";
const V02_BUNDLE = "slsa-verifier/binary-linux-amd64-workflow_dispatch.intoto.jsonl";
const V02_SUBJECT = parseDigest("sha256:376e7e01348585b6e6643bc6663146b9d525d9b41228bf180eaeb4d4a3706caa");
const V02_BUILDER =
  "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.1.0";
const GITHUB_ISSUER = "https://token.actions.githubusercontent.com";
const ENVELOPE = parseDigest(`sha256:${"e".repeat(64)}`);

async function statementOf(bundle: string): Promise<Buffer> {
  const statement = bundleStatement(await readThirdParty(bundle));
  if (!statement) throw new Error(`${bundle} holds no statement`);
  return statement;
}

function verified(statement: Uint8Array, predicateType = SLSA_PROVENANCE_V1): VerifiedStatement {
  return { statement, predicateType, envelope: ENVELOPE, signer: "builder-key" };
}

function statement(subject: Digest, predicate: unknown, predicateType = SLSA_PROVENANCE_V1): Buffer {
  return Buffer.from(
    JSON.stringify({
      _type: "https://in-toto.io/Statement/v1",
      subject: [{ name: "app", digest: { sha256: subject.slice("sha256:".length) } }],
      predicateType,
      predicate,
    }),
  );
}

const SUBJECT = parseDigest(`sha256:${"a".repeat(64)}`);

describe("real SLSA provenance (slsa-verifier's test data)", () => {
  it("v1: the builder, build type, repository (workflow.repository) and commit (resolvedDependencies)", async () => {
    const parsed = parseSlsaProvenance(await statementOf(V1_BUNDLE), V1_SUBJECT);
    expect(parsed).toEqual({
      ok: true,
      value: {
        predicateType: SLSA_PROVENANCE_V1,
        builderId: V1_BUILDER,
        buildType: "https://actions.github.io/buildtypes/workflow/v1",
        sourceRepository: "https://github.com/aspect-build/rules_lint",
        sourceCommit: "8f70009fde0c94ade6ce2a054b94718c819126ec",
      },
    });
  });

  it("v0.2 (in-toto Statement v0.1): builder.id, buildType, invocation.configSource", async () => {
    const parsed = parseSlsaProvenance(await statementOf(V02_BUNDLE), V02_SUBJECT);
    expect(parsed).toEqual({
      ok: true,
      value: {
        predicateType: SLSA_PROVENANCE_V02,
        builderId: V02_BUILDER,
        buildType: "https://github.com/slsa-framework/slsa-github-generator/generic@v1",
        sourceRepository: "https://github.com/slsa-framework/example-package",
        sourceCommit: "4d329c75e7ec1725f7c9ce917a8799d408d06be3",
      },
    });
  });

  it("verifies keyless with the public-good root, then passes the expected builder and refuses another", async () => {
    const trust = await trustMaterialFromTrustedRoot(
      await readThirdPartyJson("cosign/bundle/trusted_root_pgi.json"),
      "trusted_root_pgi.json",
    );
    // The builder's own workflow identity signs (GitHub's OIDC): the hosted builder vouches.
    const keyless = createKeylessPolicy([{ subject: V1_BUILDER, issuer: GITHUB_ISSUER }], trust);
    const bytes = await readThirdParty(V1_BUNDLE);
    const signed = await keyless.verifyBundle(bytes, { digest: V1_SUBJECT }, "attestation");
    expect(signed).toEqual({ ok: true, signer: `${V1_BUILDER} (${GITHUB_ISSUER})` });
    if (!signed.ok) return;
    const candidate: VerifiedStatement = {
      statement: await statementOf(V1_BUNDLE),
      predicateType: SLSA_PROVENANCE_V1,
      envelope: ENVELOPE,
      signer: signed.signer,
    };
    const policy: ProvenancePolicy = {
      mode: "required",
      builderIdRegExp:
        "https://github\\.com/bazel-contrib/publish-to-bcr/\\.github/workflows/publish\\.yaml@refs/tags/v.+",
      sourceRepositories: ["https://github.com/aspect-build/rules_lint"],
      buildLevel: 3,
    };
    expect(judgeProvenance(V1_SUBJECT, [candidate], [], policy)).toEqual({
      status: "verified",
      build: {
        builderId: V1_BUILDER,
        buildType: "https://actions.github.io/buildtypes/workflow/v1",
        sourceRepository: "https://github.com/aspect-build/rules_lint",
        sourceCommit: "8f70009fde0c94ade6ce2a054b94718c819126ec",
        slsaBuildLevel: 3,
        attestation: { digest: ENVELOPE, predicateType: SLSA_PROVENANCE_V1, signer: signed.signer },
      },
    });
    const judged = judgeProvenance(V1_SUBJECT, [candidate], [], { mode: "required", builderId: V02_BUILDER });
    expect(judged.status).toBe("refused");
    if (judged.status !== "refused") return;
    expect(judged.reason).toContain(`built by "${V1_BUILDER}", not the expected builder "${V02_BUILDER}"`);
    // Another genuine provenance is not about this digest.
    expect(parseSlsaProvenance(await statementOf(V1_BUNDLE), V02_SUBJECT)).toEqual({
      ok: false,
      reason: `the provenance is not about ${V02_SUBJECT}`,
    });
  });
});

describe("judging provenance", () => {
  const good = verified(
    statement(SUBJECT, { runDetails: { builder: { id: "https://ci.example/builder" } } }),
  );

  it("absent, verified, and claimed without an expected builder (level 1 only by the owner's word)", () => {
    expect(judgeProvenance(SUBJECT, [], [], { mode: "if-present" })).toEqual({ status: "absent" });
    const judged = judgeProvenance(SUBJECT, [good], [], { mode: "if-present", buildLevel: 1 });
    expect(judged.status === "verified" && judged.build.slsaBuildLevel).toBe(1);
    const noLevel = judgeProvenance(SUBJECT, [good], [], { mode: "if-present" });
    expect(noLevel.status === "verified" && "slsaBuildLevel" in noLevel.build).toBe(false);
  });

  it("other predicates are not provenance; one that did not verify refuses when none does", () => {
    const sbom = verified(statement(SUBJECT, {}, "https://spdx.dev/Document"), "https://spdx.dev/Document");
    expect(judgeProvenance(SUBJECT, [sbom], [], { mode: "if-present" })).toEqual({ status: "absent" });
    expect(
      judgeProvenance(SUBJECT, [sbom], ["bundle sha256:b: signed by mallory"], { mode: "if-present" }),
    ).toEqual({
      status: "refused",
      reason: "no SLSA provenance is acceptable: bundle sha256:b: signed by mallory",
    });
    expect(
      judgeProvenance(SUBJECT, [good], ["bundle sha256:b: signed by mallory"], { mode: "if-present" }).status,
    ).toBe("verified");
  });

  it("one provenance that meets the expectations is enough; a forged builder alone is refused", () => {
    const forged = verified(
      statement(SUBJECT, { runDetails: { builder: { id: "https://evil.example/b" } } }),
    );
    const policy: ProvenancePolicy = { mode: "required", builderId: "https://ci.example/builder" };
    expect(judgeProvenance(SUBJECT, [forged, good], [], policy).status).toBe("verified");
    expect(judgeProvenance(SUBJECT, [forged], [], policy)).toEqual({
      status: "refused",
      reason: `no SLSA provenance is acceptable: ${ENVELOPE} (signed by builder-key): built by "https://evil.example/b", not the expected builder "https://ci.example/builder"`,
    });
  });

  it("matches the builder expression whole and the source repository exactly", () => {
    const lookalike = verified(
      statement(SUBJECT, { runDetails: { builder: { id: "https://ci.example/builder.evil" } } }),
    );
    const regexp: ProvenancePolicy = { mode: "required", builderIdRegExp: "https://ci\\.example/builder" };
    expect(judgeProvenance(SUBJECT, [good], [], regexp).status).toBe("verified");
    expect(judgeProvenance(SUBJECT, [lookalike], [], regexp).status).toBe("refused");
    const fromRepo = (repository: string) =>
      verified(
        statement(SUBJECT, {
          buildDefinition: { externalParameters: { workflow: { repository } } },
          runDetails: { builder: { id: "https://ci.example/builder" } },
        }),
      );
    const source: ProvenancePolicy = { mode: "required", sourceRepositories: ["https://github.com/org/app"] };
    expect(judgeProvenance(SUBJECT, [fromRepo("https://github.com/org/app")], [], source).status).toBe(
      "verified",
    );
    const fork = judgeProvenance(SUBJECT, [fromRepo("https://github.com/mallory/app")], [], source);
    expect(fork.status === "refused" && fork.reason).toContain(
      'built from "https://github.com/mallory/app", not the expected source "https://github.com/org/app"',
    );
    const none = judgeProvenance(SUBJECT, [good], [], source);
    expect(none.status === "refused" && none.reason).toContain("names no source repository");
  });
});

describe("hostile provenance statements", () => {
  it.each([
    ["not JSON", Buffer.from("{"), "the provenance statement is not JSON"],
    [
      "not a statement",
      Buffer.from(JSON.stringify({ _type: "https://example/other", predicateType: SLSA_PROVENANCE_V1 })),
      "the provenance is not an in-toto statement",
    ],
    [
      "no builder",
      statement(SUBJECT, { runDetails: {} }),
      `the ${SLSA_PROVENANCE_V1} provenance names no builder id`,
    ],
    [
      "a builder id that is no string",
      statement(SUBJECT, { runDetails: { builder: { id: ["https://ci.example/builder"] } } }),
      `the ${SLSA_PROVENANCE_V1} provenance names no builder id`,
    ],
    [
      "a v0.2 builder in the v1 place",
      statement(SUBJECT, { builder: { id: "https://ci.example/builder" } }),
      `the ${SLSA_PROVENANCE_V1} provenance names no builder id`,
    ],
    [
      "a huge builder id",
      statement(SUBJECT, { runDetails: { builder: { id: "b".repeat(1_000_000) } } }),
      `the provenance's builder id is longer than ${MAX_PROVENANCE_FIELD_LENGTH} characters`,
    ],
    ["no predicate", statement(SUBJECT, "text"), "the provenance has no predicate"],
  ])("refuses %s", (_name, bytes, reason) => {
    expect(parseSlsaProvenance(bytes, SUBJECT)).toEqual({ ok: false, reason });
  });

  it("keeps a long builder id short in a reason", () => {
    const long = `https://evil.example/${"x".repeat(MAX_PROVENANCE_FIELD_LENGTH - 100)}`;
    const judged = judgeProvenance(
      SUBJECT,
      [verified(statement(SUBJECT, { runDetails: { builder: { id: long } } }))],
      [],
      { mode: "required", builderId: "https://ci.example/builder" },
    );
    expect(judged.status).toBe("refused");
    if (judged.status === "refused") expect(judged.reason.length).toBeLessThan(600);
  });

  it("ignores sources that are not a git commit, too long, or beyond the first entries", () => {
    const parsed = parseSlsaProvenance(
      statement(SUBJECT, {
        buildDefinition: {
          resolvedDependencies: [
            { uri: "git+https://github.com/org/not-a-commit", digest: { gitCommit: "main" } },
            { uri: `git+https://github.com/${"o".repeat(5000)}`, digest: { gitCommit: "a".repeat(40) } },
            ...Array.from({ length: 300 }, () => ({ uri: 42 })),
            { uri: "git+https://github.com/org/late@refs/heads/main", digest: { gitCommit: "b".repeat(40) } },
          ],
        },
        runDetails: { builder: { id: "https://ci.example/builder" } },
      }),
      SUBJECT,
    );
    expect(parsed).toEqual({
      ok: true,
      value: { predicateType: SLSA_PROVENANCE_V1, builderId: "https://ci.example/builder" },
    });
  });

  it("v0.2: the first git material when there is no configSource", () => {
    const parsed = parseSlsaProvenance(
      statement(
        SUBJECT,
        {
          builder: { id: "https://ci.example/builder" },
          materials: [
            { uri: "pkg:docker/alpine", digest: { sha256: "c".repeat(64) } },
            { uri: "git+https://gitlab.example/org/app.git@refs/tags/v1", digest: { sha1: "d".repeat(40) } },
          ],
        },
        SLSA_PROVENANCE_V02,
      ),
      SUBJECT,
    );
    expect(parsed.ok && parsed.value).toMatchObject({
      sourceRepository: "https://gitlab.example/org/app.git",
      sourceCommit: "d".repeat(40),
    });
  });

  it("reads a repository out of a git URI", () => {
    expect(repositoryOfGitUri("git+https://github.com/org/repo@refs/heads/main")).toBe(
      "https://github.com/org/repo",
    );
    expect(repositoryOfGitUri("https://github.com/org/repo")).toBe("https://github.com/org/repo");
    expect(repositoryOfGitUri("git+https://github.com/org/repo#sub/dir")).toBe("https://github.com/org/repo");
    expect(repositoryOfGitUri("git+https://user@host.example/org/repo@v1")).toBe(
      "https://user@host.example/org/repo",
    );
  });
});

describe("a rule's provenance settings", () => {
  const where = "policy.yaml: rules[0]";

  it("reads them, if-present by default", () => {
    expect(provenancePolicyOf({}, where)).toBeUndefined();
    expect(
      provenancePolicyOf({ builderId: "https://ci.example/b", sourceRepository: "https://x/y" }, where),
    ).toEqual({
      mode: "if-present",
      builderId: "https://ci.example/b",
      sourceRepositories: ["https://x/y"],
    });
    expect(provenancePolicyOf({ provenance: "required", buildLevel: 1 }, where)).toEqual({
      mode: "required",
      buildLevel: 1,
    });
  });

  it.each([
    [{ provenance: "always" }, /provenance must be one of required, if-present, ignore/],
    [{ builderIdRegExp: "(?i)builder" }, /not portable RE2 syntax/],
    [{ builderId: 7 }, /builderId must be a non-empty string/],
    [{ sourceRepository: [1] }, /sourceRepository must be a list of strings/],
    [{ buildLevel: 4 }, /buildLevel must be one of 1, 2, 3/],
    [{ buildLevel: 2 }, /buildLevel 2 needs builderId or builderIdRegExp/],
    [{ provenance: "ignore", builderId: "https://ci.example/b" }, /no effect with provenance: ignore/],
  ])("refuses %j", (settings, message) => {
    expect(() => provenancePolicyOf(settings, where)).toThrow(SignError);
    expect(() => provenancePolicyOf(settings, where)).toThrow(message);
  });
});
