import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectClear, requireBuiltCli, runPromoter } from "../support/promoter-process.js";
import {
  createMemoryRegistry,
  memoryRegistryRoutes,
  ScriptedRegistry,
  type MemoryRegistry,
} from "../support/scripted-registry.js";
import {
  makeImage,
  makeReferrer,
  sha256Digest,
  writeOciLayoutDirectly,
  type TestImage,
} from "../support/test-images.js";

/**
 * A staging pusher writes any JSON into a manifest. What the promoter reads from it must have
 * the types the OCI image spec gives it, or be refused, never cast: manifest-level annotations
 * are a map of strings (they are copied into the referrers list the promoter writes to
 * production, where every OCI client reads them as strings), artifactType a string.
 * Real CLI (bin/promoter.js); staging an OCI layout (anything the pusher wrote), production a
 * registry on 127.0.0.1 that stores what it is given and has no referrers API (the promoter
 * keeps the referrers tag schema there).
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/annotations.md#rules
 */

let work: string;
let production: ScriptedRegistry;
let memory: MemoryRegistry;
let counter = 0;

/** `referrer` with its manifest bytes rewritten by `edit` (digest and descriptor follow). */
function rewritten(referrer: TestImage, edit: (document: Record<string, unknown>) => void): TestImage {
  const document = JSON.parse(referrer.bytes.toString("utf8")) as Record<string, unknown>;
  edit(document);
  const bytes = Buffer.from(JSON.stringify(document));
  const digest = sha256Digest(bytes);
  return { ...referrer, bytes, digest, descriptor: { ...referrer.descriptor, digest, size: bytes.length } };
}

/** Staging holds `subject` (tag v1) and `referrer` (untagged); the manifest promotes v1 to production. */
async function promoteWithReferrer(subject: TestImage, referrer: TestImage) {
  counter += 1;
  const name = `case-${counter}`;
  await writeOciLayoutDirectly(path.join(work, name, "staging", "app"), [
    { content: subject, tag: "v1" },
    { content: referrer },
  ]);
  await writeFile(
    path.join(work, `${name}.yaml`),
    [
      "registries:",
      `- name: oci:${name}/staging`,
      "  src: true",
      `- name: ${production.host}/${name}`,
      "images:",
      "- name: app",
      "  dmap:",
      `    "${subject.digest}": ["v1"]`,
      "",
    ].join("\n"),
  );
  const run = await runPromoter(
    ["promote", "--manifest", `${name}.yaml`, "--confirm", "--quiet", "--attachments", "copied"],
    { cwd: work },
  );
  return { run, repository: `${name}/app` };
}

/** Every annotation value in what production holds, manifests and the referrers index alike. */
function productionAnnotationValues(repository: string): unknown[] {
  const values: unknown[] = [];
  const visit = (value: unknown): void => {
    if (Array.isArray(value)) {
      for (const entry of value as unknown[]) visit(entry);
      return;
    }
    if (typeof value !== "object" || value === null) return;
    for (const [name, entry] of Object.entries(value as Record<string, unknown>)) {
      if (name === "annotations" && typeof entry === "object" && entry !== null) {
        values.push(...Object.values(entry as Record<string, unknown>));
      } else visit(entry);
    }
  };
  for (const { bytes } of memory.repositories.get(repository)?.manifests.values() ?? []) {
    visit(JSON.parse(bytes.toString("utf8")));
  }
  return values;
}

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "hostile-oci-content-"));
  memory = createMemoryRegistry();
  production = await ScriptedRegistry.start();
  memoryRegistryRoutes(production, memory);
}, 60_000);

afterAll(async () => {
  await (production as ScriptedRegistry | undefined)?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("manifest-level annotations and artifactType are typed, not cast", () => {
  const subject = makeImage({
    layers: 1,
    layerSize: 256,
    mediaTypes: "oci",
    seed: "hostile-oci-content-subject",
  });
  const honest = makeReferrer({
    subject: subject.descriptor,
    artifactType: "application/vnd.example.sbom+json",
    seed: "hostile-oci-content-sbom",
    annotations: { "org.opencontainers.image.created": "2024-01-01T00:00:00Z" },
  });

  it("an honest referrer with string annotations is carried, and its annotations listed as strings", async () => {
    const { run, repository } = await promoteWithReferrer(subject, honest);
    expect(run.status, `${run.stdout}\n${run.stderr}`).toBe(0);
    expect(memory.repositories.get(repository)?.manifests.has(honest.digest)).toBe(true);
    expect(productionAnnotationValues(repository)).toContain("2024-01-01T00:00:00Z");
  });

  for (const [what, edit] of [
    [
      "an annotation whose value is a number",
      (document: Record<string, unknown>) => {
        document.annotations = { "org.opencontainers.image.created": 20240101 };
      },
    ],
    [
      "an annotation whose value is an object",
      (document: Record<string, unknown>) => {
        document.annotations = { "org.example.note": { "not a": "string" } };
      },
    ],
    [
      "annotations that are a list",
      (document: Record<string, unknown>) => {
        document.annotations = ["org.example.note=1"];
      },
    ],
    [
      "an artifactType that is not a string",
      (document: Record<string, unknown>) => {
        document.artifactType = { type: "application/vnd.example.sbom+json" };
      },
    ],
  ] as const) {
    it(`a referrer with ${what} is not carried, and production gets nothing untyped`, async () => {
      const hostile = rewritten(honest, edit);
      const { run, repository } = await promoteWithReferrer(subject, hostile);
      // The image is promoted; the layout's referrer scan reads the hostile manifest as what it
      // is, not a manifest (as any unreadable file in the layout), so it refers to nothing.
      expectClear(run, 0);
      expect(memory.repositories.get(repository)?.manifests.has(subject.digest)).toBe(true);
      expect(memory.repositories.get(repository)?.manifests.has(hostile.digest) ?? false).toBe(false);
      for (const value of productionAnnotationValues(repository)) expect(typeof value).toBe("string");
    });
  }
});
