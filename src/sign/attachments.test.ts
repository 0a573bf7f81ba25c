import { generateKeyPairSync, sign as cryptoSign, type KeyObject } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  readTaggedManifest,
  verifyCosignSignature,
  type VerifierLocation,
} from "../../test/support/cosign-verifier.js";
import {
  makeImage,
  makeIndex,
  makeLayerSetImage,
  makeReferrer,
  sha256Digest,
  writeOciLayoutDirectly,
  type LayerSetLayer,
  type LayoutEntry,
  type TestImage,
} from "../../test/support/test-images.js";
import type { RepositoryLocation, RepositoryPath } from "../reference/index.js";
import { createStoreProvider, type RegistryStoreProvider, type RepositoryOpener } from "../registry/index.js";
import type { SignatureFormat, SignatureTarget, TargetDestination } from "./attachment-plan.js";
import { executeAttachments } from "./execute-attachments.js";
import { parseSigningKey } from "./keys.js";
import {
  LIST_SOURCE_TAGS_MIN_TARGETS,
  planAttachments,
  type PlanAttachmentsOptions,
} from "./plan-attachments.js";
import { createKeySigner } from "./signer.js";

/**
 * The signature engine against real OCI layout stores, judged by the independent verifier
 * (test/support/cosign-verifier.ts), which does not use this code.
 */

const IDENTITY = "registry.example.io/project/app";
const MIRRORS = ["mirror-a", "mirror-b", "mirror-c"];

const amd64 = makeImage({
  layers: 1,
  layerSize: 128,
  mediaTypes: "oci",
  seed: "s-amd64",
  platform: { architecture: "amd64", os: "linux" },
});
const arm64 = makeImage({
  layers: 1,
  layerSize: 128,
  mediaTypes: "oci",
  seed: "s-arm64",
  platform: { architecture: "arm64", os: "linux" },
});
const attestation = makeReferrer({
  subject: amd64.descriptor,
  artifactType: "application/vnd.in-toto+json",
  seed: "att-child",
});
const attestationChild = {
  ...attestation,
  descriptor: {
    mediaType: attestation.mediaType,
    digest: attestation.digest,
    size: attestation.bytes.length,
    platform: { architecture: "unknown", os: "unknown" },
    annotations: { "vnd.docker.reference.type": "attestation-manifest" },
  },
};
const multi = makeIndex([amd64, arm64, attestationChild], { mediaType: "oci" });

let dir: string;
let provider: RegistryStoreProvider;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "sign-attachments-"));
  provider = createStoreProvider();
});
afterEach(async () => {
  await provider.close();
  await rm(dir, { recursive: true, force: true });
});

function keyPair(): { privateKey: KeyObject; pem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return {
    privateKey,
    pem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

function location(layout: string): RepositoryLocation {
  return { kind: "oci-layout", directory: path.join(dir, layout), repository: "app" as RepositoryPath };
}

function verifierAt(layout: string): VerifierLocation {
  return { kind: "layout", directory: path.join(dir, layout, "app") };
}

function target(overrides: Partial<SignatureTarget> = {}): SignatureTarget {
  return {
    project: "test",
    image: "app" as RepositoryPath,
    source: location("staging"),
    sourceKey: `oci:${path.join(dir, "staging")}/app`,
    digest: multi.digest,
    identities: [IDENTITY],
    destinations: MIRRORS.map((mirror) => ({
      location: location(mirror),
      key: `oci:${path.join(dir, mirror)}/app`,
      registry: `oci:${mirror}`,
    })),
    copied: false,
    ...overrides,
  };
}

/** A `.sig`/`.att`-shaped manifest built here, independently of src/sign. */
function layerSetImage(layers: LayerSetLayer[]): TestImage {
  return makeLayerSetImage(
    layers,
    '{"architecture":"","os":"","rootfs":{"type":"layers","diff_ids":[]},"config":{}}',
  );
}

function otherSignerSignature(privateKey: KeyObject, digest: string): TestImage {
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": "builder.example/app" },
        image: { "docker-manifest-digest": digest },
        type: "cosign container image signature",
      },
      optional: { creator: "the builder" },
    }),
  );
  return layerSetImage([
    {
      mediaType: "application/vnd.dev.cosign.simplesigning.v1+json",
      bytes: payload,
      annotations: {
        "dev.cosignproject.cosign/signature": cryptoSign("sha256", payload, privateKey).toString("base64"),
      },
    },
  ]);
}

async function seed(layout: string, entries: LayoutEntry[]): Promise<void> {
  await writeOciLayoutDirectly(path.join(dir, layout, "app"), entries);
}

async function run(options: Partial<PlanAttachmentsOptions> = {}, targets = [target()]) {
  const plan = await planAttachments(targets, { provider, ...options });
  const outcomes = await executeAttachments(plan, {
    provider,
    ...(options.signer ? { signer: options.signer } : {}),
  });
  return { plan, outcomes };
}

async function sigDigests(digest: string): Promise<(string | undefined)[]> {
  return Promise.all(
    MIRRORS.map(async (mirror) => {
      const bytes = await readTaggedManifest(verifierAt(mirror), `${digest.replace(":", "-")}.sig`);
      return bytes ? sha256Digest(bytes) : undefined;
    }),
  );
}

describe("signing promoted digests (OCI layouts)", () => {
  it("signs an index and its images once, writes identical .sig manifests everywhere, then has nothing to do", async () => {
    const key = keyPair();
    await seed("staging", [{ content: multi, tag: "v1" }]);
    for (const mirror of MIRRORS) await seed(mirror, [{ content: multi, tag: "v1" }]);
    const signer = createKeySigner(parseSigningKey(key.pem, "test key"));

    const { plan, outcomes } = await run({ signer });
    const work = plan.works[0];
    expect(work?.notes.join()).toMatch(/unknown\/unknown.*not signed/);
    expect(work?.subjects.map((subject) => subject.items.map((item) => item.action))).toEqual([
      ["sign"],
      ["sign"],
      ["sign"],
      [],
    ]);
    expect(outcomes.filter((outcome) => outcome.status === "signed")).toHaveLength(9);

    for (const subject of [multi.digest, amd64.digest, arm64.digest]) {
      const digests = await sigDigests(subject);
      expect(new Set(digests).size).toBe(1);
      expect(digests[0]).toBeDefined();
      for (const mirror of MIRRORS) {
        const check = await verifyCosignSignature(verifierAt(mirror), subject, {
          publicKeyPem: key.publicKeyPem,
          identity: IDENTITY,
        });
        expect(check.ok, `${mirror} ${subject}: ${check.reason ?? ""}`).toBe(true);
        expect(check.layers).toHaveLength(1);
      }
    }
    expect(
      (
        await verifyCosignSignature(verifierAt("mirror-a"), attestation.digest, {
          publicKeyPem: key.publicKeyPem,
          identity: IDENTITY,
        })
      ).ok,
    ).toBe(false);

    const again = await run({ signer });
    expect(
      again.plan.works[0]?.subjects.flatMap((subject) => subject.items.map((item) => item.action)),
    ).toEqual(["unchanged", "unchanged", "unchanged"]);
    expect(again.outcomes).toEqual([]);
  });

  it("keeps another signer's signature, and copies the merged manifest to every mirror", async () => {
    const key = keyPair();
    const builder = keyPair();
    const image = makeImage({ layers: 1, layerSize: 64, mediaTypes: "oci", seed: "keep-other" });
    await seed("staging", [{ content: image, tag: "v1" }]);
    const theirs = otherSignerSignature(builder.privateKey, image.digest);
    for (const mirror of MIRRORS) {
      await seed(mirror, [
        { content: image, tag: "v1" },
        ...(mirror === "mirror-b" ? [{ content: theirs, tag: `${image.digest.replace(":", "-")}.sig` }] : []),
      ]);
    }
    const signer = createKeySigner(parseSigningKey(key.pem, "test key"));
    await run({ signer }, [target({ digest: image.digest })]);

    const digests = await sigDigests(image.digest);
    expect(new Set(digests).size).toBe(1);
    for (const mirror of MIRRORS) {
      const ours = await verifyCosignSignature(verifierAt(mirror), image.digest, {
        publicKeyPem: key.publicKeyPem,
        identity: IDENTITY,
      });
      const kept = await verifyCosignSignature(verifierAt(mirror), image.digest, {
        publicKeyPem: builder.publicKeyPem,
        identity: "builder.example/app",
      });
      expect(ours.ok && kept.ok, `${mirror}: ${ours.reason ?? ""} ${kept.reason ?? ""}`).toBe(true);
      expect(ours.layers).toHaveLength(2);
    }

    // A second run finds our signature in the merged manifest and adds no second copy.
    const again = await run({ signer }, [target({ digest: image.digest })]);
    expect(again.plan.works[0]?.subjects[0]?.items.map((item) => item.action)).toEqual(["unchanged"]);
  });

  it("carries staging's .sig, .att, .sbom and referrers to every destination", async () => {
    const builder = keyPair();
    const image = makeImage({ layers: 1, layerSize: 64, mediaTypes: "oci", seed: "carry" });
    const sig = otherSignerSignature(builder.privateKey, image.digest);
    const att = layerSetImage([
      {
        mediaType: "application/vnd.dsse.envelope.v1+json",
        bytes: Buffer.from('{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[]}'),
        annotations: { predicateType: "https://slsa.dev/provenance/v1" },
      },
    ]);
    const sbom = layerSetImage([
      { mediaType: "text/spdx+json", bytes: Buffer.from('{"spdxVersion":"SPDX-2.3"}'), annotations: {} },
    ]);
    const referrer = makeReferrer({
      subject: image.descriptor,
      artifactType: "application/vnd.example.sbom+json",
      seed: "ref",
    });
    const prefix = image.digest.replace(":", "-");
    await seed("staging", [
      { content: image, tag: "v1" },
      { content: sig, tag: `${prefix}.sig` },
      { content: att, tag: `${prefix}.att` },
      { content: sbom, tag: `${prefix}.sbom` },
      { content: referrer },
    ]);
    for (const mirror of MIRRORS) await seed(mirror, [{ content: image, tag: "v1" }]);

    const { outcomes } = await run({ attachments: "all" }, [target({ digest: image.digest })]);
    expect(outcomes.every((outcome) => outcome.status === "written")).toBe(true);
    for (const mirror of MIRRORS) {
      for (const [suffix, content] of [
        ["sig", sig],
        ["att", att],
        ["sbom", sbom],
      ] as const) {
        const bytes = await readTaggedManifest(verifierAt(mirror), `${prefix}.${suffix}`);
        expect(bytes && sha256Digest(bytes), `${mirror} .${suffix}`).toBe(content.digest);
      }
      const check = await verifyCosignSignature(verifierAt(mirror), image.digest, {
        publicKeyPem: builder.publicKeyPem,
        identity: "builder.example/app",
      });
      expect(check.ok).toBe(true);
      const index = await readFile(path.join(dir, mirror, "app", "index.json"), "utf8");
      expect(index).toContain(referrer.digest);
    }
    const again = await run({ attachments: "all" }, [target({ digest: image.digest })]);
    expect(again.outcomes).toEqual([]);
  });
});

describe("a subject whose planning fails", () => {
  /** A `.sig` tag in staging that names an index, not a signature manifest: it cannot be read. */
  async function stageWithBrokenSig(subject: string): Promise<void> {
    const broken = makeIndex([arm64], { mediaType: "oci" });
    await seed("staging", [
      { content: multi, tag: "v1" },
      { content: broken, tag: `${subject.replace(":", "-")}.sig` },
    ]);
    for (const mirror of MIRRORS) await seed(mirror, [{ content: multi, tag: "v1" }]);
  }

  async function signBoth(concurrency: number) {
    const key = keyPair();
    const signer = createKeySigner(parseSigningKey(key.pem, "test key"));
    const targets = [target({ copied: true }), target({ digest: amd64.digest, rootIsIndex: false })];
    const plan = await planAttachments(targets, { provider, signer, attachments: "all", concurrency });
    const outcomes = await executeAttachments(plan, { provider, signer });
    const signedAt = async (digest: string) =>
      Promise.all(
        MIRRORS.map(
          async (mirror) =>
            (
              await verifyCosignSignature(verifierAt(mirror), digest, {
                publicKeyPem: key.publicKeyPem,
                identity: IDENTITY,
              })
            ).ok,
        ),
      );
    return { plan, outcomes, signedAt };
  }

  it("does not take its index's other images with it, nor another target's image", async () => {
    // The index's own attachment is unreadable; its images are fine, and amd64 is also promoted
    // on its own (a target that finds it claimed by the index's).
    await stageWithBrokenSig(multi.digest);
    for (const concurrency of [1, 8]) {
      const { plan, outcomes, signedAt } = await signBoth(concurrency);
      expect(plan.works[0]?.problem, `concurrency ${concurrency}`).toBeDefined();
      expect(outcomes.filter((o) => o.status === "failed" && o.subject === multi.digest)).toHaveLength(
        MIRRORS.length,
      );
      expect(await signedAt(amd64.digest)).toEqual(MIRRORS.map(() => true));
      expect(await signedAt(arm64.digest)).toEqual(MIRRORS.map(() => true));
    }
  });

  it("is reported by every target that needs it, not only by the one that planned it first", async () => {
    await stageWithBrokenSig(amd64.digest);
    for (const concurrency of [1, 8]) {
      const { plan, signedAt } = await signBoth(concurrency);
      // amd64 fails in the index's target and again in its own: neither says all is well.
      expect(plan.works.map((work) => work.problem !== undefined)).toEqual([true, true]);
      expect(await signedAt(arm64.digest)).toEqual(MIRRORS.map(() => true));
    }
  });
});

describe("staging's attachments of many digests of one repository", () => {
  /** The listings and the references `resolve` was asked for, per layout. */
  const listingsAndLookups = (name: string, method: string, args: readonly unknown[]) =>
    method === "listTags"
      ? `${name} listTags`
      : method === "resolve"
        ? `${name} resolve ${String(args[0])}`
        : undefined;

  async function carryAll(count: number) {
    const builder = keyPair();
    const images = Array.from({ length: count }, (_, i) =>
      makeImage({ layers: 1, layerSize: 64, mediaTypes: "oci", seed: `many-${count}-${i}` }),
    );
    const signed = images[1]!;
    const sig = otherSignerSignature(builder.privateKey, signed.digest);
    await seed("staging", [
      ...images.map((image, i) => ({ content: image, tag: `v${i}` })),
      { content: sig, tag: `${signed.digest.replace(":", "-")}.sig` },
    ]);
    for (const mirror of MIRRORS)
      await seed(
        mirror,
        images.map((image, i) => ({ content: image, tag: `v${i}` })),
      );
    const asked: string[] = [];
    const plan = await planAttachments(
      images.map((image) => target({ digest: image.digest })),
      { provider: spying(provider, asked, listingsAndLookups), attachments: "all" },
    );
    const outcomes = await executeAttachments(plan, { provider });
    return { asked: asked.filter((call) => call.startsWith("staging ")), images, signed, sig, outcomes };
  }

  it(`lists the repository once from ${LIST_SOURCE_TAGS_MIN_TARGETS} digests on, and asks only for the tags it holds`, async () => {
    const { asked, signed, sig, outcomes } = await carryAll(LIST_SOURCE_TAGS_MIN_TARGETS + 1);
    const prefix = signed.digest.replace(":", "-");
    expect(asked).toEqual(["staging listTags", `staging resolve ${prefix}.sig`]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(MIRRORS.map(() => "written"));
    for (const mirror of MIRRORS) {
      const bytes = await readTaggedManifest(verifierAt(mirror), `${prefix}.sig`);
      expect(bytes && sha256Digest(bytes), mirror).toBe(sig.digest);
    }
  });

  it("asks for each attachment tag below that, without listing", async () => {
    const count = LIST_SOURCE_TAGS_MIN_TARGETS - 1;
    const { asked, outcomes } = await carryAll(count);
    expect(asked.filter((call) => call.endsWith("listTags"))).toEqual([]);
    expect(asked.filter((call) => /\.(sig|att|sbom)$/.test(call))).toHaveLength(3 * count);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(MIRRORS.map(() => "written"));
  });
});

/**
 * Which store methods were called, per layout: `mirror-a getManifest` (or what `describe` makes
 * of a call; nothing when it gives undefined).
 */
function spying(
  opener: RepositoryOpener,
  calls: string[],
  describe: (name: string, method: string, args: readonly unknown[]) => string | undefined = (name, method) =>
    `${name} ${method}`,
): RepositoryOpener {
  return {
    repository(at) {
      const store = opener.repository(at);
      const name = at.kind === "oci-layout" ? path.basename(at.directory) : at.host;
      return new Proxy(store, {
        get(object, property, receiver) {
          const value: unknown = Reflect.get(object, property, receiver);
          if (typeof value !== "function") return value;
          return (...args: unknown[]): unknown => {
            const call = describe(name, String(property), args);
            if (call !== undefined) calls.push(call);
            return (value as (...all: unknown[]) => unknown).apply(object, args);
          };
        },
      });
    },
  };
}

function destinationAt(mirror: string): TargetDestination {
  return { location: location(mirror), key: `oci:${path.join(dir, mirror)}/app`, registry: `oci:${mirror}` };
}

const WRITES = /put|mount/i;

describe("a run that plans only some destinations of a digest (--changed-since, a shard, a repair)", () => {
  it.each(["cosign", "bundle"] as const)(
    "copies the signature the other destinations hold instead of making another (%s layout)",
    async (format: SignatureFormat) => {
      const key = keyPair();
      const signer = createKeySigner(parseSigningKey(key.pem, "test key"));
      await seed("staging", [{ content: multi, tag: "v1" }]);
      for (const mirror of MIRRORS) await seed(mirror, [{ content: multi, tag: "v1" }]);
      // An earlier run signed the first two mirrors; the third is new.
      const [a, b, c] = MIRRORS.map(destinationAt);
      if (!a || !b || !c) throw new Error("three mirrors");
      const first = await run({ signer, format }, [target({ destinations: [a, b] })]);
      const signed = first.outcomes.filter((outcome) => outcome.status === "signed");
      expect(signed).toHaveLength(6);

      const calls: string[] = [];
      const plan = await planAttachments([target({ destinations: [c], elsewhere: [a, b] })], {
        provider: spying(provider, calls),
        signer,
        format,
      });
      const items = plan.works[0]?.subjects.flatMap((subject) => subject.items) ?? [];
      expect(items.map((item) => [item.action, item.writeTo])).toEqual(
        [0, 1, 2].map(() => ["write", [c.key]]),
      );
      const outcomes = await executeAttachments(plan, { provider: spying(provider, calls), signer });
      expect(outcomes.map((outcome) => [outcome.status, outcome.destination])).toEqual(
        [0, 1, 2].map(() => ["written", c.key]),
      );
      // The same signature as at the others, byte for byte; nothing written to them.
      const wanted = new Map(signed.map((outcome) => [outcome.subject, outcome.digest]));
      for (const outcome of outcomes) expect(outcome.digest).toBe(wanted.get(outcome.subject));
      if (format === "cosign") {
        for (const subject of [multi.digest, amd64.digest, arm64.digest]) {
          const digests = await sigDigests(subject);
          expect(new Set(digests).size, subject).toBe(1);
          expect(digests[0]).toBe(wanted.get(subject));
        }
      }
      const elsewhere = calls.filter((call) => !call.startsWith("mirror-c "));
      expect(elsewhere.length).toBeGreaterThan(0);
      expect(elsewhere.filter((call) => WRITES.test(call))).toEqual([]);

      // Now in place: the next scoped run reads nothing outside its scope.
      calls.length = 0;
      const again = await planAttachments([target({ destinations: [c], elsewhere: [a, b] })], {
        provider: spying(provider, calls),
        signer,
        format,
      });
      expect(again.works[0]?.subjects.flatMap((subject) => subject.items.map((item) => item.action))).toEqual(
        ["unchanged", "unchanged", "unchanged"],
      );
      expect(calls.filter((call) => !call.startsWith("mirror-c ") && !call.startsWith("staging "))).toEqual(
        [],
      );
    },
  );

  it("signs when no destination holds our signature, and writes only where it is in scope", async () => {
    const key = keyPair();
    const signer = createKeySigner(parseSigningKey(key.pem, "test key"));
    const image = makeImage({ layers: 1, layerSize: 64, mediaTypes: "oci", seed: "first-scoped" });
    await seed("staging", [{ content: image, tag: "v1" }]);
    for (const mirror of MIRRORS) await seed(mirror, [{ content: image, tag: "v1" }]);
    const [a, b, c] = MIRRORS.map(destinationAt);
    if (!a || !b || !c) throw new Error("three mirrors");
    const calls: string[] = [];
    const plan = await planAttachments(
      [target({ digest: image.digest, destinations: [c], elsewhere: [a, b] })],
      {
        provider: spying(provider, calls),
        signer,
      },
    );
    expect(plan.works[0]?.subjects[0]?.items.map((item) => [item.action, item.writeTo])).toEqual([
      ["sign", [c.key]],
    ]);
    const outcomes = await executeAttachments(plan, { provider: spying(provider, calls), signer });
    expect(outcomes.map((outcome) => [outcome.status, outcome.destination])).toEqual([["signed", c.key]]);
    expect(await sigDigests(image.digest)).toEqual([undefined, undefined, outcomes[0]?.digest]);
    expect(calls.filter((call) => !call.startsWith("mirror-c ") && WRITES.test(call))).toEqual([]);
  });
});
