import { generateKeyPairSync } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { makeImage, writeOciLayoutDirectly } from "../../test/support/test-images.js";
import { parseDigest, type RepositoryLocation, type RepositoryPath } from "../reference/index.js";
import { createStoreProvider, type RegistryStoreProvider } from "../registry/index.js";
import { executeAttachments } from "./execute-attachments.js";
import { parseSigningKey, parseVerificationKey } from "./keys.js";
import { planAttachments } from "./plan-attachments.js";
import { createKeySigner } from "./signer.js";
import { checkSourceSignatures, loadSourcePolicy, ruleFor, withDefaultKeys } from "./source-policy.js";

let dir: string;
let provider: RegistryStoreProvider;
const builder = generateKeyPairSync("ec", { namedCurve: "P-256" });
const builderPem = builder.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
const builderPublic = builder.publicKey.export({ type: "spki", format: "pem" }).toString();
const other = generateKeyPairSync("ec", { namedCurve: "P-256" })
  .publicKey.export({ type: "spki", format: "pem" })
  .toString();

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "source-policy-"));
  provider = createStoreProvider();
  await writeFile(path.join(dir, "builder.pub"), builderPublic);
  await writeFile(path.join(dir, "other.pub"), other);
});
afterEach(async () => {
  await provider.close();
  await rm(dir, { recursive: true, force: true });
});

function staging(image: string): RepositoryLocation {
  return { kind: "oci-layout", directory: path.join(dir, "staging"), repository: image as RepositoryPath };
}

/** Signs a staging digest in place (staging as its own destination), in one of the layouts. */
async function signInStaging(image: string, digest: string, format: "cosign" | "bundle"): Promise<void> {
  const location = staging(image);
  const key = `oci:${path.join(dir, "staging")}/${image}`;
  const signer = createKeySigner(parseSigningKey(builderPem, "builder"));
  const target = {
    project: "p",
    image: image as RepositoryPath,
    source: location,
    sourceKey: key,
    digest: parseDigest(digest),
    identities: [`staging.example/${image}`],
    destinations: [{ location, key, registry: "oci:staging" }],
    copied: false,
  };
  const plan = await planAttachments([target], { provider, signer, format, attachments: "none" });
  await executeAttachments(plan, { provider, signer });
}

describe("source signature policy", () => {
  it("accepts digests signed by a trusted key in either layout and refuses the others with a reason", async () => {
    const cosignSigned = makeImage({ layers: 1, layerSize: 32, mediaTypes: "oci", seed: "src-cosign" });
    const bundleSigned = makeImage({ layers: 1, layerSize: 32, mediaTypes: "oci", seed: "src-bundle" });
    const unsigned = makeImage({ layers: 1, layerSize: 32, mediaTypes: "oci", seed: "src-none" });
    for (const [image, content] of [
      ["a", cosignSigned],
      ["b", bundleSigned],
      ["c", unsigned],
    ] as const) {
      await writeOciLayoutDirectly(path.join(dir, "staging", image), [{ content, tag: "v1" }]);
    }
    await signInStaging("a", cosignSigned.digest, "cosign");
    await signInStaging("b", bundleSigned.digest, "bundle");

    await writeFile(path.join(dir, "policy.yaml"), "default:\n  keys: [builder.pub]\n");
    const policy = await loadSourcePolicy("policy.yaml", { cwd: dir });
    const rule = ruleFor(policy, "oci:staging", "p");
    expect(rule?.keys).toHaveLength(1);
    const requests = [
      ["a", cosignSigned.digest],
      ["b", bundleSigned.digest],
      ["c", unsigned.digest],
    ].map(([image = "", digest = ""]) => ({
      location: staging(image),
      key: image,
      digest: parseDigest(digest),
      rule: rule ?? { keys: [] },
    }));
    const refusals = await checkSourceSignatures(requests, { provider });
    expect([...refusals.keys()]).toEqual(["c"]);
    expect(refusals.get("c")).toMatch(/no signature \(sha256-.*\.sig is absent\)/);

    const strangers = await checkSourceSignatures(
      requests.map((request) => ({ ...request, rule: { keys: [parseVerificationKey(other, "other.pub")] } })),
      { provider },
    );
    expect([...strangers.keys()].sort()).toEqual(["a", "b", "c"]);
    expect(strangers.get("a")).toMatch(/does not verify with the public key/);
    expect(strangers.get("b")).toMatch(/signed with another key/);
  });

  it("matches rules by registry and project, then the default", async () => {
    await writeFile(
      path.join(dir, "policy.yaml"),
      "default:\n  keys: [builder.pub]\nrules:\n  - registry: gcr.io/staging-foo\n    keys: [other.pub]\n  - project: bar\n    keys: [other.pub, builder.pub]\n",
    );
    const policy = await loadSourcePolicy(path.join(dir, "policy.yaml"));
    expect(ruleFor(policy, "gcr.io/staging-foo", "x")?.keys).toHaveLength(1);
    expect(ruleFor(policy, "gcr.io/staging-foo", "x")?.keys[0]?.source).toBe("other.pub");
    expect(ruleFor(policy, "gcr.io/other", "bar")?.keys).toHaveLength(2);
    expect(ruleFor(policy, "gcr.io/other", "baz")?.keys[0]?.source).toBe("builder.pub");
    expect(ruleFor({ rules: policy.rules }, "gcr.io/other", "baz")).toBeUndefined();
  });

  it("reads a rule's provenance settings, and keeps them when CLI keys join the default", async () => {
    await writeFile(
      path.join(dir, "policy.yaml"),
      [
        "default:",
        "  keys: [builder.pub]",
        "  provenance: required",
        "  builderIdRegExp: https://github\\.com/org/ci/\\.github/workflows/build\\.yml@refs/tags/v.+",
        "  sourceRepository: https://github.com/org/app",
        "  buildLevel: 2",
        "rules:",
        "  - project: legacy",
        "    keys: [other.pub]",
        "    provenance: ignore",
        "",
      ].join("\n"),
    );
    const policy = await loadSourcePolicy("policy.yaml", { cwd: dir });
    const expected = {
      mode: "required",
      builderIdRegExp: "https://github\\.com/org/ci/\\.github/workflows/build\\.yml@refs/tags/v.+",
      sourceRepositories: ["https://github.com/org/app"],
      buildLevel: 2,
    };
    expect(policy.default?.provenance).toEqual(expected);
    expect(ruleFor(policy, "gcr.io/x", "legacy")?.provenance).toEqual({ mode: "ignore" });
    const withKeys = withDefaultKeys(policy, [parseVerificationKey(other, "other.pub")]);
    expect(withKeys.default?.provenance).toEqual(expected);
    expect(withKeys.default?.keys).toHaveLength(2);
  });

  it("says what is wrong with a policy file", async () => {
    const cases: [string, RegExp][] = [
      ["default:\n  keys: [builder.pub]\n  provenance: maybe\n", /default\.provenance must be one of/],
      [
        "default:\n  keys: [builder.pub]\n  buildLevel: 3\n",
        /buildLevel 3 needs builderId or builderIdRegExp/,
      ],
      ["default:\n  keys: [builder.pub]\n  builderIdRegExp: a(?=b)\n", /not portable RE2 syntax/],
      ["default:\n  keys: [builder.pub]\n  colour: red\n", /unknown field colour/],
      ["default:\n  keyless:\n    - subject: a@b.c\n      issuer: https://i\n", /need a trustedRoot/],
      ["default: {}\n", /needs keys or keyless identities/],
      ["default:\n  keys: [missing.pub]\n", /cannot use key missing\.pub: no such file/],
      ["rules: {}\n", /rules must be a list/],
      ["trustedRoot: trusted.json\ndefault:\n  keys: [builder.pub]\n", /cannot read trustedRoot/],
      ["default: [", /not valid YAML/],
    ];
    for (const [text, message] of cases) {
      await writeFile(path.join(dir, "policy.yaml"), text);
      await expect(loadSourcePolicy("policy.yaml", { cwd: dir })).rejects.toThrow(message);
    }
    await writeFile(
      path.join(dir, "trusted.json"),
      JSON.stringify({ tlogs: [], certificateAuthorities: [] }),
    );
    await writeFile(
      path.join(dir, "policy.yaml"),
      "trustedRoot: trusted.json\ndefault:\n  keyless:\n    - subjectRegExp: '('\n      issuer: https://i\n",
    );
    await expect(loadSourcePolicy("policy.yaml", { cwd: dir })).rejects.toThrow(/invalid regular expression/);
  });
});
