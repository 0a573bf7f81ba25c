import { describe, expect, it } from "vitest";
import { createManifestSet, parsePlainManifest, type PromotionManifest } from "../manifest/index.js";
import { MAX_INDEX_DEPTH } from "../oci/index.js";
import type { Digest, RepositoryPath, Tag } from "../reference/index.js";
import { decideEvent, Observations, type Judgement, type ManifestFacts, type Question } from "./decide.js";
import { buildDesiredState, repositoryStanding, type DesiredState } from "./desired-state.js";
import type { ManifestShape } from "../sign/attachment-recognition.js";
import { UNATTRIBUTED_HOST, type RegistryEvent } from "./event.js";
import { judgeEvent, type ManifestLookup } from "./observe.js";

const digest = (fill: string): Digest => `sha256:${fill.repeat(64)}` as Digest;
const INDEX = digest("1");
const IMAGE = digest("2");
const TAGLESS = digest("3");
const CHILD_A = digest("4");
const CHILD_B = digest("5");
const OUTER = digest("6");
const INNER = digest("7");
const NESTED_CHILD = digest("8");
const REFERRER = digest("9");
const STRANGER = digest("a");
const SIGNATURE_MANIFEST = digest("b");
const RUNNABLE = digest("c");
const RUNNABLE_REFERRER = digest("d");
const REFERRERS_INDEX = digest("e");
const IMAGE_TYPE = "application/vnd.oci.image.manifest.v1+json";
const INDEX_TYPE = "application/vnd.oci.image.index.v1+json";
/** A cosign signature: OCI config, one simple-signing layer. */
const SIGNATURE_SHAPE: ManifestShape = {
  mediaType: IMAGE_TYPE,
  configMediaType: "application/vnd.oci.image.config.v1+json",
  layerMediaTypes: ["application/vnd.dev.cosign.simplesigning.v1+json"],
};
/** What a container runtime runs: an image config and a filesystem layer. */
const RUNNABLE_SHAPE: ManifestShape = {
  mediaType: IMAGE_TYPE,
  configMediaType: "application/vnd.oci.image.config.v1+json",
  layerMediaTypes: ["application/vnd.oci.image.layer.v1.tar+gzip"],
};
const hex = (value: Digest): string => value.slice("sha256:".length);

function manifest(file: string, text: string): PromotionManifest {
  const parsed = parsePlainManifest({ file, text });
  if (!parsed.manifest) throw new Error(JSON.stringify(parsed.findings));
  return parsed.manifest;
}

const MAIN = manifest(
  "main.yaml",
  `
registries:
  - name: reg.example/prod/staging
    src: true
  - name: reg.example/prod
  - name: mirror.example/images
images:
  - name: app
    dmap:
      "${INDEX}": ["1.0"]
      "${IMAGE}": ["2.0", "latest"]
      "${TAGLESS}": []
      "${OUTER}": []
`,
);

/** second.yaml: a second staging (stage2.example/s) promoting STRANGER with `tags` to reg.example/prod/app. */
function secondManifest(tags: readonly string[]): PromotionManifest {
  return manifest(
    "second.yaml",
    `
registries:
  - name: stage2.example/s
    src: true
  - name: reg.example/prod
images:
  - name: app
    dmap:
      "${STRANGER}": [${tags.map((tag) => JSON.stringify(tag)).join(", ")}]
`,
  );
}

function state(...manifests: PromotionManifest[]): DesiredState {
  // Two manifests listing one repository is a disputed-repository finding, and a loaded set
  // leaves both entries out (src/manifest/ownership.ts); the desired state's merging of several
  // claims is tested on the bare set.
  if (manifests.length > 1) return buildDesiredState({ manifests, findings: [] });
  return buildDesiredState(createManifestSet(manifests.length > 0 ? manifests : [MAIN]));
}

/** An in-memory lookup: the facts a registry would give, and the tags verified so far. */
class MemoryLookup implements ManifestLookup {
  readonly reads: Digest[] = [];
  readonly facts = new Map<Digest, ManifestFacts>([
    [INDEX, { mediaType: "application/vnd.oci.image.index.v1+json", children: [CHILD_A, CHILD_B] }],
    [IMAGE, { mediaType: "application/vnd.oci.image.manifest.v1+json", children: [] }],
    [OUTER, { mediaType: "application/vnd.oci.image.index.v1+json", children: [INNER] }],
    [INNER, { mediaType: "application/vnd.oci.image.index.v1+json", children: [NESTED_CHILD] }],
    [
      REFERRER,
      {
        mediaType: IMAGE_TYPE,
        children: [],
        subject: IMAGE,
        shape: { ...SIGNATURE_SHAPE, artifactType: "application/vnd.dev.sigstore.bundle.v0.3+json" },
      },
    ],
    [SIGNATURE_MANIFEST, { mediaType: IMAGE_TYPE, children: [], shape: SIGNATURE_SHAPE }],
    [RUNNABLE, { mediaType: IMAGE_TYPE, children: [], shape: RUNNABLE_SHAPE }],
    [RUNNABLE_REFERRER, { mediaType: IMAGE_TYPE, children: [], subject: IMAGE, shape: RUNNABLE_SHAPE }],
    [
      REFERRERS_INDEX,
      {
        mediaType: INDEX_TYPE,
        children: [SIGNATURE_MANIFEST, REFERRER],
        shape: { mediaType: INDEX_TYPE, layerMediaTypes: [] },
      },
    ],
  ]);
  readonly verifiedTags = new Map<string, Tag>();
  readonly tags = new Map<Tag, Digest>();

  manifest(_repository: unknown, wanted: Digest): Promise<ManifestFacts | undefined> {
    this.reads.push(wanted);
    return Promise.resolve(this.facts.get(wanted));
  }

  verifiedTagFor(repositoryKey: string, wanted: Digest): Tag | undefined {
    return this.verifiedTags.get(`${repositoryKey}@${wanted}`);
  }

  resolveTag(_repository: unknown, tag: Tag): Promise<Digest | undefined> {
    return Promise.resolve(this.tags.get(tag));
  }
}

let counter = 0;
type EventFields = Omit<Partial<RegistryEvent>, "repository"> & { repository?: string };

function event(fields: EventFields): RegistryEvent {
  counter += 1;
  return {
    id: `distribution:${counter}`,
    source: "distribution",
    action: "push",
    targetKind: "manifest",
    attribution: "endpoint",
    host: "reg.example",
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    ...fields,
    repository: (fields.repository ?? "prod/app") as RepositoryPath,
  };
}

async function judge(
  fields: Parameters<typeof event>[0],
  options: { final?: boolean } = {},
  lookup = new MemoryLookup(),
) {
  return judgeEvent(event(fields), state(), lookup, options);
}

function verdictOf(judgement: Judgement): string {
  return judgement.kind === "decided" ? `${judgement.verdict}:${judgement.rule}` : judgement.kind;
}

describe("desired state", () => {
  it("holds production repositories only, mirrors sharing their content", () => {
    const desired = state();
    expect([...desired.repositories.keys()].sort()).toEqual([
      "mirror.example/images/app",
      "reg.example/prod/app",
    ]);
    const prod = desired.repositories.get("reg.example/prod/app")!;
    expect(prod.tags.get("latest" as Tag)).toEqual([IMAGE]);
    expect(prod.digests.get(TAGLESS)?.tags).toEqual([]);
    expect(prod.digests.get(IMAGE)?.sources.map((source) => source.repository)).toEqual(["prod/staging/app"]);
    expect(desired.repositories.get("mirror.example/images/app")?.digests).toBe(prod.digests);
    expect(desired.edgeCount).toBe((1 + 2 + 1 + 1) * 2);
  });

  it("classifies by the most specific registry location", () => {
    const desired = state();
    // Events carry hosts in lower case (the event parsers fold them: server.test.ts, event.test.ts).
    expect(repositoryStanding(desired, "reg.example", "prod/app").kind).toBe("managed");
    expect(repositoryStanding(desired, "reg.example", "prod/other").kind).toBe("unmanaged");
    expect(repositoryStanding(desired, "reg.example", "prod/staging/app").kind).toBe("not-production");
    expect(repositoryStanding(desired, "reg.example", "elsewhere/app").kind).toBe("not-production");
    expect(repositoryStanding(desired, "other.example", "prod/app").kind).toBe("not-production");
  });

  it("merges two manifests promoting into one repository without touching the shared mirror content", () => {
    const second = secondManifest(["1.0", "extra"]);
    const desired = state(MAIN, second);
    const prod = desired.repositories.get("reg.example/prod/app")!;
    expect(prod.tags.get("1.0" as Tag)).toEqual([INDEX, STRANGER]);
    expect(prod.digests.get(STRANGER)?.sources.map((source) => source.repository)).toEqual(["s/app"]);
    const mirror = desired.repositories.get("mirror.example/images/app")!;
    expect(mirror.digests.has(STRANGER)).toBe(false);
    expect(mirror.tags.get("1.0" as Tag)).toEqual([INDEX]);
  });
});

describe("judgeEvent", () => {
  it("ignores pulls, blobs and repositories outside production", async () => {
    expect(verdictOf(await judge({ action: "pull", digest: STRANGER }))).toBe("ignored");
    expect(verdictOf(await judge({ targetKind: "blob", digest: STRANGER }))).toBe("ignored");
    expect(verdictOf(await judge({ action: "mount", targetKind: "blob", digest: STRANGER }))).toBe("ignored");
    expect(
      verdictOf(await judge({ repository: "prod/staging/app", digest: STRANGER, tag: "x" as Tag })),
    ).toBe("ignored");
    expect(
      verdictOf(await judge({ attribution: "payload", host: "unknown.example", digest: STRANGER })),
    ).toBe("ignored");
  });

  it("verifies what the manifests ask for, at every mirror", async () => {
    expect(verdictOf(await judge({ digest: INDEX, tag: "1.0" as Tag }))).toBe("verified:promoted-tag");
    expect(verdictOf(await judge({ digest: IMAGE, tag: "latest" as Tag }))).toBe("verified:promoted-tag");
    expect(verdictOf(await judge({ digest: TAGLESS }))).toBe("verified:promoted-digest");
    expect(verdictOf(await judge({ host: "mirror.example", repository: "images/app", digest: INDEX }))).toBe(
      "verified:promoted-digest",
    );
  });

  it("verifies children of promoted indexes and names the parent, also when nested", async () => {
    const child = await judge({ digest: CHILD_B });
    expect(child).toMatchObject({ verdict: "verified", rule: "child-of-promoted-index", parent: INDEX });
    expect(child.kind === "decided" && child.reason).toContain(INDEX);
    expect(await judge({ digest: NESTED_CHILD })).toMatchObject({
      rule: "child-of-promoted-index",
      parent: OUTER,
    });
    expect(await judge({ digest: INNER })).toMatchObject({ rule: "child-of-promoted-index", parent: OUTER });
  });

  it("follows nested indexes exactly as deep as a copy does (MAX_INDEX_DEPTH)", async () => {
    const lookup = new MemoryLookup();
    // TAGLESS is promoted; below it a chain of indexes, level n holding the manifest of level n+1.
    const level = (n: number): Digest => `sha256:${n.toString(16).padStart(2, "0").repeat(32)}` as Digest;
    for (let n = 0; n <= MAX_INDEX_DEPTH; n++) {
      lookup.facts.set(n === 0 ? TAGLESS : level(n), {
        mediaType: INDEX_TYPE,
        children: [level(n + 1)],
      });
    }
    expect(await judge({ digest: level(MAX_INDEX_DEPTH) }, {}, lookup)).toMatchObject({
      rule: "child-of-promoted-index",
      parent: TAGLESS,
    });
    expect(verdictOf(await judge({ digest: level(MAX_INDEX_DEPTH + 1) }, { final: true }, lookup))).toBe(
      "violation:unexpected-digest",
    );
  });

  it("refuses tags the manifests do not ask for, and tags pointing elsewhere", async () => {
    const retag = await judge({ digest: IMAGE, tag: "extra" as Tag });
    expect(verdictOf(retag)).toBe("violation:unexpected-tag");
    expect(retag.kind === "decided" && retag.reason).toMatch(/the digest is promoted, the tag is not/);
    const moved = await judge({ digest: IMAGE, tag: "1.0" as Tag });
    expect(verdictOf(moved)).toBe("violation:tag-points-elsewhere");
    expect(moved.kind === "decided" && moved.reason).toContain(INDEX);
  });

  it("verifies signature, attestation and SBOM tags of promoted digests and their children", async () => {
    for (const suffix of [".sig", ".att", ".sbom"]) {
      const judgement = await judge({
        digest: SIGNATURE_MANIFEST,
        tag: `sha256-${hex(IMAGE)}${suffix}` as Tag,
      });
      expect(judgement).toMatchObject({ verdict: "verified", rule: "attached-artifact-tag", subject: IMAGE });
    }
    expect(
      await judge({ digest: REFERRERS_INDEX, tag: `sha256-${hex(IMAGE)}` as Tag, mediaType: INDEX_TYPE }),
    ).toMatchObject({ verdict: "verified", rule: "attached-artifact-tag", subject: IMAGE });
    expect(
      await judge({ digest: SIGNATURE_MANIFEST, tag: `sha256-${hex(CHILD_A)}.sig` as Tag }),
    ).toMatchObject({
      verdict: "verified",
      subject: CHILD_A,
      parent: INDEX,
    });
    expect(
      verdictOf(await judge({ digest: SIGNATURE_MANIFEST, tag: `sha256-${hex(STRANGER)}.sig` as Tag })),
    ).toBe("violation:unexpected-attached-artifact");
  });

  it("verifies the attachment tags of sha512 digests, which name them by their first 64 hex digits", async () => {
    const image512 = `sha512:${"f".repeat(64)}${"0".repeat(64)}` as Digest;
    const child512 = `sha512:${"e".repeat(128)}` as Digest;
    const index512 = `sha512:${"d".repeat(128)}` as Digest;
    const desired = state(
      manifest(
        "sha512.yaml",
        `
registries:
  - name: reg.example/prod/staging
    src: true
  - name: reg.example/prod
images:
  - name: app
    dmap:
      "${image512}": ["1.0"]
      "${index512}": ["2.0"]
`,
      ),
    );
    const lookup = new MemoryLookup();
    lookup.facts.set(index512, { mediaType: INDEX_TYPE, children: [child512] });
    const judgeTag = (tag: string) =>
      judgeEvent(event({ digest: SIGNATURE_MANIFEST, tag: tag as Tag }), desired, lookup);
    for (const tag of [`sha512-${"f".repeat(64)}.sig`, `sha512-${"f".repeat(64)}.att`]) {
      expect(await judgeTag(tag)).toMatchObject({ verdict: "verified", subject: image512 });
    }
    expect(await judgeTag(`sha512-${"e".repeat(64)}.sig`)).toMatchObject({
      verdict: "verified",
      subject: child512,
      parent: index512,
    });
    const unknown = await judgeTag(`sha512-${"c".repeat(64)}.sig`);
    expect(verdictOf(unknown)).toBe("violation:unexpected-attached-artifact");
    expect(unknown.kind === "decided" && unknown.reason).toContain(`sha512:${"c".repeat(64)}…`);
  });

  it("calls a runnable image under an attached-artifact tag what it is, not an attachment", async () => {
    const asSignature = await judge({ digest: RUNNABLE, tag: `sha256-${hex(IMAGE)}.sig` as Tag });
    expect(asSignature).toMatchObject({ verdict: "violation", rule: "not-an-attachment", subject: IMAGE });
    expect(asSignature.kind === "decided" && asSignature.reason).toMatch(
      /signature tag of promoted digest .* holds a runnable image \(image config .*, 1 filesystem layer\)/,
    );
    const lookup = new MemoryLookup();
    lookup.facts.set(STRANGER, {
      mediaType: INDEX_TYPE,
      children: [SIGNATURE_MANIFEST, RUNNABLE],
      shape: { mediaType: INDEX_TYPE, layerMediaTypes: [] },
    });
    const asReferrersIndex = await judge(
      { digest: STRANGER, tag: `sha256-${hex(IMAGE)}` as Tag, mediaType: INDEX_TYPE },
      {},
      lookup,
    );
    expect(verdictOf(asReferrersIndex)).toBe("violation:not-an-attachment");
    expect(asReferrersIndex.kind === "decided" && asReferrersIndex.reason).toContain(
      `an index whose entry ${RUNNABLE} is a runnable image`,
    );
  });

  it("holds an attached-artifact tag whose content cannot be read yet, then calls it a violation", async () => {
    const unreadable = { digest: STRANGER, tag: `sha256-${hex(IMAGE)}.sig` as Tag };
    expect(verdictOf(await judge(unreadable))).toBe("undetermined");
    const final = await judge(unreadable, { final: true });
    expect(verdictOf(final)).toBe("violation:not-an-attachment");
    expect(final.kind === "decided" && final.reason).toMatch(/could not tell .* could not be read/);
  });

  it("calls a runnable image whose subject is promoted a disguised referrer once its grace is over", async () => {
    expect(verdictOf(await judge({ digest: RUNNABLE_REFERRER }))).toBe("undetermined");
    const final = await judge({ digest: RUNNABLE_REFERRER }, { final: true });
    expect(final).toMatchObject({ verdict: "violation", rule: "not-an-attachment", subject: IMAGE });
    expect(final.kind === "decided" && final.reason).toMatch(
      /subject .* is promoted, but it is a runnable image/,
    );
  });

  it("verifies referrers whose subject is promoted", async () => {
    expect(await judge({ digest: REFERRER })).toMatchObject({
      verdict: "verified",
      rule: "referrer-of-promoted-digest",
      subject: IMAGE,
    });
    const lookup = new MemoryLookup();
    lookup.facts.set(STRANGER, {
      mediaType: IMAGE_TYPE,
      children: [],
      subject: TAGLESS.replace("3", "f") as Digest,
      shape: SIGNATURE_SHAPE,
    });
    expect(verdictOf(await judge({ digest: STRANGER }, { final: true }, lookup))).toBe(
      "violation:unexpected-digest",
    );
  });

  it("holds an unexplained tagless push until final, then calls it a violation", async () => {
    expect(verdictOf(await judge({ digest: STRANGER }))).toBe("undetermined");
    const final = await judge({ digest: STRANGER }, { final: true });
    expect(verdictOf(final)).toBe("violation:unexpected-digest");
  });

  it("explains a tagless push by a verified tag that followed it", async () => {
    const lookup = new MemoryLookup();
    lookup.verifiedTags.set(`reg.example/prod/app@${SIGNATURE_MANIFEST}`, `sha256-${hex(IMAGE)}.sig` as Tag);
    expect(await judge({ digest: SIGNATURE_MANIFEST }, {}, lookup)).toMatchObject({
      verdict: "verified",
      rule: "tagged-after-push",
    });
  });

  it("calls every delete in production a violation", async () => {
    expect(verdictOf(await judge({ action: "delete", targetKind: "unknown", digest: INDEX }))).toBe(
      "violation:delete",
    );
    expect(verdictOf(await judge({ action: "delete", targetKind: "unknown", tag: "1.0" as Tag }))).toBe(
      "violation:delete",
    );
    expect(verdictOf(await judge({ action: "delete", targetKind: "blob", digest: STRANGER }))).toBe(
      "violation:delete",
    );
    expect(verdictOf(await judge({ action: "delete", repository: "prod/other", digest: STRANGER }))).toBe(
      "violation:delete",
    );
    expect(
      verdictOf(await judge({ action: "delete", repository: "prod/staging/app", digest: STRANGER })),
    ).toBe("ignored");
  });

  it("calls events nothing attributes to a registry violations, also where the Host names production", async () => {
    const unattributed = await judge({
      attribution: "none",
      host: UNATTRIBUTED_HOST,
      unattributed: "it came to POST /events, which names no registry",
      requestHost: "reg.example",
      digest: IMAGE,
      tag: "latest" as Tag,
    });
    expect(verdictOf(unattributed)).toBe("violation:unattributed-event");
    expect(unattributed.kind === "decided" && unattributed.reason).toBe(
      `push prod/app:latest@${IMAGE}: it came to POST /events, which names no registry (the pusher called the registry "reg.example")`,
    );
    // Pulls and blob uploads change nothing, attributed or not.
    expect(verdictOf(await judge({ attribution: "none", host: UNATTRIBUTED_HOST, action: "pull" }))).toBe(
      "ignored",
    );
    // An endpoint for a registry no manifest names: a wrong notification URL, not "not production".
    const unnamed = await judge({ host: "typo.example", digest: STRANGER, tag: "x" as Tag });
    expect(verdictOf(unnamed)).toBe("violation:unattributed-event");
    expect(unnamed.kind === "decided" && unnamed.reason).toMatch(
      /registry typo\.example, which no manifest names/,
    );
    // Pub/Sub payloads name their registry: an unknown one is simply not production.
    expect(verdictOf(await judge({ attribution: "payload", host: "typo.example", digest: STRANGER }))).toBe(
      "ignored",
    );
  });

  it("names the Host the pusher sent in a violation, and judges by the endpoint's registry", async () => {
    const spoofed = await judge({
      requestHost: "not-production.example",
      digest: RUNNABLE,
      tag: "1.0" as Tag,
    });
    expect(verdictOf(spoofed)).toBe("violation:tag-points-elsewhere");
    expect(spoofed.kind === "decided" && spoofed.reason).toMatch(
      /\(the pusher called the registry "not-production\.example"\)$/,
    );
    const honest = await judge({ requestHost: "reg.example", digest: IMAGE, tag: "extra" as Tag });
    expect(honest.kind === "decided" && honest.reason).not.toMatch(/pusher called/);
  });

  it("calls a push into a production repository no manifest names a violation", async () => {
    const judgement = await judge({ repository: "prod/other", digest: STRANGER, tag: "1" as Tag });
    expect(verdictOf(judgement)).toBe("violation:unmanaged-repository");
  });

  it("resolves a tag event without digest (Pub/Sub) through the lookup", async () => {
    const lookup = new MemoryLookup();
    lookup.tags.set("2.0" as Tag, IMAGE);
    expect(verdictOf(await judge({ source: "pubsub", tag: "2.0" as Tag }, {}, lookup))).toBe(
      "verified:promoted-tag",
    );
    expect(verdictOf(await judge({ source: "pubsub", tag: "9.9" as Tag }, {}, lookup))).toBe(
      "violation:unexpected-tag",
    );
  });

  it("accepts either digest of a conflicting tag claim", async () => {
    const second = secondManifest(["1.0"]);
    const desired = state(MAIN, second);
    for (const claimed of [INDEX, STRANGER]) {
      const judgement = await judgeEvent(
        event({ digest: claimed, tag: "1.0" as Tag }),
        desired,
        new MemoryLookup(),
      );
      expect(verdictOf(judgement)).toBe("verified:promoted-tag");
    }
  });

  it("reads each promoted manifest once per judgement", async () => {
    const lookup = new MemoryLookup();
    await judge({ digest: STRANGER }, {}, lookup);
    const counts = new Map<Digest, number>();
    for (const read of lookup.reads) counts.set(read, (counts.get(read) ?? 0) + 1);
    expect(Math.max(...counts.values())).toBe(1);
  });
});

describe("decideEvent: deciding without reading", () => {
  /** What a question asks, in a line. */
  const asked = (question: Question): string =>
    `${question.kind} ${question.kind === "tag-digest" ? question.tag : question.digest}`;

  /** Decides synchronously, answering each round of questions from `lookup`'s maps; the rounds asked. */
  function decideAnswering(
    pushed: RegistryEvent,
    lookup: MemoryLookup,
  ): { judgement: Judgement; rounds: string[][] } {
    const desired = state();
    const observed = new Observations();
    const rounds: string[][] = [];
    for (;;) {
      const outcome = decideEvent(pushed, desired, observed);
      if (outcome.done) return { judgement: outcome.value, rounds };
      rounds.push(outcome.questions.map(asked));
      for (const question of outcome.questions) {
        if (question.kind === "manifest") {
          observed.recordManifest(question.repository, question.digest, lookup.facts.get(question.digest));
        } else if (question.kind === "verified-tag") {
          observed.recordVerifiedTag(
            question.repository,
            question.digest,
            lookup.verifiedTagFor(question.repository.key, question.digest),
          );
        } else {
          observed.recordTagDigest(question.repository, question.tag, lookup.tags.get(question.tag));
        }
      }
    }
  }

  it("decides at once what the desired state alone explains", () => {
    const outcome = decideEvent(event({ digest: IMAGE }), state(), new Observations());
    expect(outcome).toMatchObject({ done: true, value: { verdict: "verified", rule: "promoted-digest" } });
  });

  it("asks what it needs a step at a time, cheapest first, and decides as judgeEvent does", async () => {
    const pushed = event({ digest: CHILD_A });
    const { judgement, rounds } = decideAnswering(pushed, new MemoryLookup());
    const promoted = [...state().repositories.get("reg.example/prod/app")!.digests.keys()];
    expect(rounds).toEqual([
      [`verified-tag ${CHILD_A}`],
      [`manifest ${CHILD_A}`],
      // The promoted manifests of the repository, one level of the index tree, together.
      promoted.map((digest) => `manifest ${digest}`),
    ]);
    expect(judgement).toMatchObject({ verdict: "verified", rule: "child-of-promoted-index", parent: INDEX });
    expect(judgement).toEqual(await judgeEvent(pushed, state(), new MemoryLookup()));
  });

  it("asks for the digest of a tag an event names without one", () => {
    const lookup = new MemoryLookup();
    lookup.tags.set("2.0" as Tag, IMAGE);
    const { judgement, rounds } = decideAnswering(event({ tag: "2.0" as Tag }), lookup);
    expect(rounds).toEqual([["tag-digest 2.0"]]);
    expect(judgement).toMatchObject({ verdict: "verified", rule: "promoted-tag" });
  });
});
