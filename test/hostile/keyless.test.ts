import { generateKeyPairSync, verify as cryptoVerify } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDigest } from "../../src/reference/index.js";
import { PROMOTION_PREDICATE_TYPE, statementBytes, VSA_PREDICATE_TYPE } from "../../src/provenance/index.js";
import { createKeylessSigner } from "../../src/sign/index.js";
import { promotionRecord, verificationSummary } from "../support/attestations.js";
import { readBlob, readTaggedManifest, type VerifierLocation } from "../support/cosign-verifier.js";
import {
  bundleReferrer,
  cosignPayload,
  junkKeylessLayer,
  keylessLayerWith,
  pushToRegistry,
  signatureManifest,
  signingStatementBytes,
  SIMPLE_SIGNING,
  verifiedKeylessBundles,
} from "../support/hostile-signing.js";
import { expectClear, runPromoter } from "../support/promoter-process.js";
import { startRegistry, type TestRegistry } from "../support/registry-harness.js";
import {
  identityToken,
  startSigstoreStandIns,
  type SigstoreStandIns,
} from "../support/sigstore-stand-ins.js";
import { makeImage, type TestImage } from "../support/test-images.js";

/**
 * Finding 2 and its class: nothing that someone else could have written (staging's `.sig`, a
 * carried referrer, a layer copied to a mirror by an earlier run) counts as the promoter's own
 * signature unless it fully verifies as one: for keyless, the certificate chains to the
 * configured trusted root, names the configured identity and issuer, has its Rekor entry, and
 * signs the payload; for a key, the exact layer the promoter writes, signed with its key.
 * Through the real CLI, real registries, and the Fulcio and Rekor stand-ins.
 */

const SUBJECT = "release@example.com";
const ISSUER = "https://issuer.example";
const MALLORY = "mallory@example.com";

let work: string;
let staging: TestRegistry;
let prod: TestRegistry;
let services: SigstoreStandIns;
/** A second, untrusted sigstore deployment (the attacker's own Fulcio and Rekor). */
let rogue: SigstoreStandIns;

const release = generateKeyPairSync("ec", { namedCurve: "P-256" });

function image(name: string): TestImage {
  return makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: `hostile-keyless-${name}` });
}

function sigTag(digest: string): string {
  return `${digest.replace(":", "-")}.sig`;
}

/** `--keyless` against the stand-ins, naming who our own earlier signatures are from. */
function keylessFlags(): string[] {
  return [
    "--keyless",
    "--fulcio-url",
    services.fulcioUrl,
    "--rekor-url",
    services.rekorUrl,
    "--trusted-root",
    "trusted_root.json",
    "--certificate-identity",
    SUBJECT,
    "--certificate-oidc-issuer",
    ISSUER,
  ];
}

function promoter(...args: string[]) {
  return runPromoter(args, { cwd: work, env: { SIGSTORE_ID_TOKEN: identityToken(SUBJECT, ISSUER) } });
}

function fulcioCalls(): number {
  return services.requests.filter((request) => request.service === "fulcio").length;
}

/** A manifest promoting `name` from staging to `prod/<name>` (or another destination path). */
async function manifestFor(file: string, name: string, digest: string, destination = "prod"): Promise<void> {
  await writeFile(
    path.join(work, file),
    [
      "registries:",
      `- name: ${staging.host}/staging`,
      "  src: true",
      `- name: ${prod.host}/${destination}`,
      "images:",
      `- name: ${name}`,
      "  dmap:",
      `    "${digest}": ["v1"]`,
      "",
    ].join("\n"),
  );
}

/** Signs `payload` as someone through a sigstore deployment (what an attacker can do). */
function keylessAnnotations(through: SigstoreStandIns, subject: string, payload: Buffer) {
  return createKeylessSigner({
    fulcioUrl: through.fulcioUrl,
    rekorUrl: through.rekorUrl,
    identityToken: "env://TOKEN",
    env: { TOKEN: identityToken(subject, ISSUER) },
  }).signPayload(payload);
}

function at(name: string, destination = "prod"): VerifierLocation {
  return { kind: "registry", baseUrl: prod.url, repository: `${destination}/${name}` };
}

interface SigLayer {
  mediaType?: string;
  digest?: string;
  size?: number;
  annotations?: Record<string, string>;
}

async function sigLayers(location: VerifierLocation, digest: string): Promise<SigLayer[]> {
  const bytes = await readTaggedManifest(location, sigTag(digest));
  if (!bytes) return [];
  return (JSON.parse(bytes.toString("utf8")) as { layers?: SigLayer[] }).layers ?? [];
}

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), "hostile-keyless-"));
  [staging, prod, services, rogue] = await Promise.all([
    startRegistry(),
    startRegistry(),
    startSigstoreStandIns(),
    startSigstoreStandIns(),
  ]);
  await writeFile(path.join(work, "trusted_root.json"), JSON.stringify(services.trustedRoot()));
  await writeFile(
    path.join(work, "policy.yaml"),
    `trustedRoot: trusted_root.json\ndefault:\n  keyless:\n    - subject: ${SUBJECT}\n      issuer: ${ISSUER}\n`,
  );
  await writeFile(
    path.join(work, "release.key"),
    release.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  );
  await writeFile(
    path.join(work, "release.pub"),
    release.publicKey.export({ type: "spki", format: "pem" }).toString(),
  );
}, 120_000);

afterAll(async () => {
  await Promise.all([staging.stop(), prod.stop(), services.close(), rogue.close()]);
  await rm(work, { recursive: true, force: true });
});

describe("keyless: staging's layers never stand in for the promoter's own signature", () => {
  it("signs although staging's .sig holds layers over our exact payload with junk, foreign or untrusted certificates", async () => {
    const app = image("forged-sig");
    const identity = `${prod.host}/prod/app`;
    const payload = cosignPayload(identity, app.digest);
    const forged = signatureManifest([
      junkKeylessLayer(identity, app.digest),
      // A real signature from the trusted Fulcio, by someone else (anyone can get one).
      keylessLayerWith(identity, app.digest, await keylessAnnotations(services, MALLORY, payload)),
      // Our identity, from a Fulcio nobody configured.
      keylessLayerWith(identity, app.digest, await keylessAnnotations(rogue, SUBJECT, payload)),
    ]);
    await pushToRegistry(
      staging.host,
      "staging/app",
      [
        { content: app, tag: "v1" },
        { content: forged, tag: sigTag(app.digest) },
      ],
      work,
    );
    await manifestFor("forged-sig.yaml", "app", app.digest);

    const before = fulcioCalls();
    const run = await promoter(
      "promote",
      "--manifest",
      "forged-sig.yaml",
      "--confirm",
      "--quiet",
      ...keylessFlags(),
    );
    expectClear(run, 0);
    expect(fulcioCalls(), "the promoter made its own keyless signature").toBeGreaterThan(before);

    const judged = await promoter("verify", "--manifest", "forged-sig.yaml", "--policy", "policy.yaml");
    expectClear(judged, 0, /1 valid/);
    // The others' layers are carried, not dropped; ours is added next to them.
    const layers = await sigLayers(at("app"), app.digest);
    expect(layers).toHaveLength(4);

    // The next run recognises its own (verified) signature and signs nothing.
    const calls = fulcioCalls();
    const again = await promoter(
      "promote",
      "--manifest",
      "forged-sig.yaml",
      "--confirm",
      "--quiet",
      ...keylessFlags(),
    );
    expectClear(again, 0);
    expect(fulcioCalls()).toBe(calls);
  });

  it("verify --repair --keyless signs where the mirror only holds forged layers", async () => {
    const app = image("forged-repair");
    const identity = `${prod.host}/prod/repair`;
    await pushToRegistry(
      staging.host,
      "staging/repair",
      [
        { content: app, tag: "v1" },
        { content: signatureManifest([junkKeylessLayer(identity, app.digest)]), tag: sigTag(app.digest) },
      ],
      work,
    );
    await manifestFor("forged-repair.yaml", "repair", app.digest);
    // An unsigned promotion carries staging's .sig to production.
    expectClear(await promoter("promote", "--manifest", "forged-repair.yaml", "--confirm", "--quiet"), 0);
    expectClear(
      await promoter("verify", "--manifest", "forged-repair.yaml", "--policy", "policy.yaml"),
      1,
      /1 invalid/,
    );

    const before = fulcioCalls();
    const repaired = await promoter(
      "verify",
      "--manifest",
      "forged-repair.yaml",
      "--policy",
      "policy.yaml",
      "--repair",
      "--confirm",
      ...keylessFlags(),
    );
    expectClear(repaired, 0);
    expect(fulcioCalls()).toBeGreaterThan(before);
  });

  it("signs in the bundle layout although a mirror holds bundle referrers by someone else or with junk", async () => {
    const app = image("forged-bundle");
    const identity = `${prod.host}/prod/bundled`;
    const statement = signingStatementBytes(identity, app.digest);
    const mallory = createKeylessSigner({
      fulcioUrl: services.fulcioUrl,
      rekorUrl: services.rekorUrl,
      identityToken: "env://TOKEN",
      env: { TOKEN: identityToken(MALLORY, ISSUER) },
    });
    const byMallory = bundleReferrer(await mallory.signStatement(statement), app.descriptor);
    const junk = bundleReferrer(
      {
        mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
        verificationMaterial: { certificate: { rawBytes: Buffer.from("junk").toString("base64") } },
        dsseEnvelope: {
          payload: statement.toString("base64"),
          payloadType: "application/vnd.in-toto+json",
          signatures: [{ sig: Buffer.from("junk").toString("base64"), keyid: "" }],
        },
      },
      app.descriptor,
    );
    await pushToRegistry(
      staging.host,
      "staging/bundled",
      [{ content: app, tag: "v1" }, { content: byMallory }, { content: junk }],
      work,
    );
    await manifestFor("forged-bundle.yaml", "bundled", app.digest);
    // An unsigned promotion carries staging's referrers to production.
    expectClear(await promoter("promote", "--manifest", "forged-bundle.yaml", "--confirm", "--quiet"), 0);
    const expected = { trustedRoot: services.trustedRoot(), subject: SUBJECT, issuer: ISSUER };
    expect(await verifiedKeylessBundles(prod.url, "prod/bundled", app.digest, identity, expected)).toEqual(
      [],
    );

    const before = fulcioCalls();
    const run = await promoter(
      "promote",
      "--manifest",
      "forged-bundle.yaml",
      "--confirm",
      "--quiet",
      "--signature-format",
      "bundle",
      ...keylessFlags(),
    );
    expectClear(run, 0);
    expect(fulcioCalls()).toBeGreaterThan(before);
    expect(
      await verifiedKeylessBundles(prod.url, "prod/bundled", app.digest, identity, expected),
    ).toHaveLength(1);
  });
});

describe("key-based: only the exact layer the promoter writes counts as its own", () => {
  it("signs although staging holds a copy of our signature decorated with a junk Rekor bundle", async () => {
    const app = image("decorated-key");
    const identity = "registry.example.io/project/keyed";
    await pushToRegistry(staging.host, "staging/keyed", [{ content: app, tag: "v1" }], work);
    await manifestFor("keyed-a.yaml", "keyed", app.digest, "prod");
    const signKey = ["--sign-key", "release.key", "--sign-identity", "registry.example.io/project"];
    expectClear(
      await promoter("promote", "--manifest", "keyed-a.yaml", "--confirm", "--quiet", ...signKey),
      0,
    );
    const [genuine] = await sigLayers(at("keyed"), app.digest);
    expect(genuine?.annotations?.["dev.cosignproject.cosign/signature"]).toBeDefined();

    // The staging pusher copies the public signature and adds a Rekor bundle that is junk: a
    // verifier that checks bundles (cosign) rejects that layer.
    const decorated = signatureManifest([
      {
        mediaType: SIMPLE_SIGNING,
        bytes: cosignPayload(identity, app.digest),
        annotations: {
          ...genuine?.annotations,
          "dev.sigstore.cosign/bundle": JSON.stringify({ SignedEntryTimestamp: "junk", Payload: {} }),
        },
      },
    ]);
    await pushToRegistry(
      staging.host,
      "staging/keyed",
      [{ content: decorated, tag: sigTag(app.digest) }],
      work,
    );
    // A new mirror of the same image, in another manifest, with the same signed identity.
    await manifestFor("keyed-b.yaml", "keyed", app.digest, "mirror");
    expectClear(
      await promoter("promote", "--manifest", "keyed-b.yaml", "--confirm", "--quiet", ...signKey),
      0,
    );

    const layers = await sigLayers(at("keyed", "mirror"), app.digest);
    const plain = [];
    for (const layer of layers) {
      const annotations = layer.annotations ?? {};
      if (Object.keys(annotations).join() !== "dev.cosignproject.cosign/signature") continue;
      const payload = await readBlob(at("keyed", "mirror"), layer.digest ?? "");
      const signature = Buffer.from(annotations["dev.cosignproject.cosign/signature"] ?? "", "base64");
      if (payload && cryptoVerify("sha256", payload, release.publicKey, signature)) plain.push(layer);
    }
    expect(plain, "the mirror carries our own plain signature, not only the decorated copy").toHaveLength(1);
  });
});

describe("keyless: promotion attestations", () => {
  it("are verified by the policy's identity, recognised on a re-run, and a rogue deployment's lookalikes do not count", async () => {
    const app = image("attested");
    await pushToRegistry(staging.host, "staging/attested", [{ content: app, tag: "v1" }], work);
    await manifestFor("attested.yaml", "attested", app.digest);
    const identity = `${prod.host}/prod/attested`;

    // Signed (our keyless signature) but not attested yet; then the attacker, through their own
    // Fulcio and Rekor and with the same subject and issuer, attaches statements about it that
    // look like ours.
    expectClear(
      await promoter(
        "promote",
        "--manifest",
        "attested.yaml",
        "--confirm",
        "--quiet",
        "--no-attestations",
        ...keylessFlags(),
      ),
      0,
    );
    const rogueSigner = createKeylessSigner({
      fulcioUrl: rogue.fulcioUrl,
      rekorUrl: rogue.rekorUrl,
      identityToken: "env://TOKEN",
      env: { TOKEN: identityToken(SUBJECT, ISSUER) },
    });
    const facts = { identity, digest: parseDigest(app.digest) };
    for (const [statement, type] of [
      [promotionRecord(facts), PROMOTION_PREDICATE_TYPE],
      [verificationSummary(facts), VSA_PREDICATE_TYPE],
    ] as const) {
      const bundle = await rogueSigner.signStatement(statementBytes(statement));
      await pushToRegistry(
        prod.host,
        "prod/attested",
        [{ content: bundleReferrer(bundle, app.descriptor, type) }],
        work,
      );
    }
    const verify = () =>
      promoter("verify", "--manifest", "attested.yaml", "--policy", "policy.yaml", "--attestations");
    const before = await verify();
    expectClear(before, 1);
    expect(before.stdout).toMatch(/Attestations: 2 attestations checked: 0 valid/);

    // The next promotion writes ours next to theirs (theirs are not taken for ours).
    expectClear(
      await promoter("promote", "--manifest", "attested.yaml", "--confirm", "--quiet", ...keylessFlags()),
      0,
    );
    const after = await verify();
    expectClear(after, 0);
    expect(after.stdout).toMatch(/Attestations: 2 attestations checked: 2 valid/);

    // A re-run recognises its own keyless attestations: no new certificate is asked for.
    const calls = fulcioCalls();
    expectClear(
      await promoter("promote", "--manifest", "attested.yaml", "--confirm", "--quiet", ...keylessFlags()),
      0,
    );
    expect(fulcioCalls()).toBe(calls);
  });
});
