import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { captureIO } from "../../../test/support/cli.js";
import {
  makeImage,
  makeIndex,
  writeOciLayoutDirectly,
  type TestContent,
} from "../../../test/support/test-images.js";
import { runCli } from "../main.js";

/** `promoter promote` between OCI layout trees: the quickstart path, no server needed. */

let dir: string;
const amd64 = makeImage({
  layers: 2,
  layerSize: 512,
  mediaTypes: "oci",
  seed: "amd64",
  platform: { architecture: "amd64", os: "linux" },
});
const arm64 = makeImage({
  layers: 2,
  layerSize: 512,
  mediaTypes: "oci",
  seed: "arm64",
  platform: { architecture: "arm64", os: "linux" },
});
const multi = makeIndex([amd64, arm64], { mediaType: "oci" });
const single = makeImage({ layers: 1, layerSize: 256, mediaTypes: "docker", seed: "single" });
const other = makeImage({ layers: 1, layerSize: 256, mediaTypes: "oci", seed: "other" });

function manifestText(images: string): string {
  return `registries:
- name: oci:staging
  src: true
- name: oci:mirror-a
- name: oci:mirror-b
images:
${images}`;
}

const IMAGES = `- name: app
  dmap:
    "${multi.digest}": ["v1.0", "v1"]
    "${single.digest}": []
`;

async function run(...args: string[]) {
  const capture = captureIO({ cwd: dir });
  const status = await runCli(args, capture.io);
  return { status, out: capture.out(), err: capture.err() };
}

async function seedStaging(entries: { content: TestContent; tag?: string }[]): Promise<void> {
  await writeOciLayoutDirectly(path.join(dir, "staging", "app"), entries);
}

async function tagsIn(layout: string): Promise<Record<string, string>> {
  const index = JSON.parse(await readFile(path.join(dir, layout, "index.json"), "utf8")) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const tags: Record<string, string> = {};
  for (const entry of index.manifests) {
    const tag = entry.annotations?.["org.opencontainers.image.ref.name"];
    if (tag) tags[tag] = entry.digest;
  }
  return tags;
}

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "promote-layout-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("promoter promote with OCI layouts", () => {
  it("plans without writing, then promotes, then has nothing left to do", async () => {
    await seedStaging([{ content: multi, tag: "v1.0" }, { content: single }]);
    await writeFile(path.join(dir, "promoter.yaml"), manifestText(IMAGES));

    const dry = await run("promote", "--manifest", "promoter.yaml");
    expect(dry.err).not.toMatch(/error|warn/);
    expect(dry.status).toBe(0);
    expect(dry.out).toContain("dry run");
    expect(dry.out).toMatch(/copy, tag v1, v1\.0 -> 2 destinations: oci:mirror-a, oci:mirror-b/);
    await expect(readFile(path.join(dir, "mirror-a", "app", "index.json"))).rejects.toThrow();
    // --dry-run is the default said explicitly (issue 17 item 8).
    const explicit = await run("promote", "--manifest", "promoter.yaml", "--dry-run");
    expect(explicit.status).toBe(0);
    expect(explicit.out.replace(/\d+ ms/, "")).toBe(dry.out.replace(/\d+ ms/, ""));
    await expect(readFile(path.join(dir, "mirror-a", "app", "index.json"))).rejects.toThrow();

    const real = await run(
      "promote",
      "--manifest",
      "promoter.yaml",
      "--confirm",
      "--quiet",
      "--report",
      "report.json",
    );
    expect(real.status).toBe(0);
    expect(real.out).toContain("Promotion plan");
    expect(real.out).toContain("Result: 6 edges: 6 copied");
    expect(real.out).not.toContain("problems");
    for (const mirror of ["mirror-a/app", "mirror-b/app"]) {
      expect(await tagsIn(mirror)).toEqual({ v1: multi.digest, "v1.0": multi.digest });
    }
    const report = JSON.parse(await readFile(path.join(dir, "report.json"), "utf8")) as {
      kind: string;
      edges: { outcome: string; tag: string | null; digest: string }[];
    };
    expect(report.kind).toBe("report");
    expect(report.edges).toHaveLength(6);
    expect(new Set(report.edges.map((edge) => edge.outcome))).toEqual(new Set(["copied"]));

    const again = await run("promote", "--manifest", "promoter.yaml", "--confirm", "--output", "json");
    expect(again.status).toBe(0);
    const document = JSON.parse(again.out) as { summary: { outcomes: Record<string, number> } };
    expect(document.summary.outcomes.unchanged).toBe(6);
  });

  it("refuses a tag move and still promotes the rest; exit 1", async () => {
    await seedStaging([{ content: multi, tag: "v1.0" }, { content: single }, { content: other }]);
    // mirror-a already has v1 pointing at another image.
    await writeOciLayoutDirectly(path.join(dir, "mirror-a", "app"), [{ content: other, tag: "v1" }]);
    await writeFile(path.join(dir, "promoter.yaml"), manifestText(IMAGES));

    const result = await run("promote", "--manifest", "promoter.yaml", "--confirm", "--quiet");
    expect(result.status).toBe(1);
    expect(result.out).toContain("refused tag move");
    expect(result.out).toContain(other.digest);
    expect(result.out).toMatch(/at promoter\.yaml:\d+:\d+/);
    expect(await tagsIn("mirror-a/app")).toEqual({ v1: other.digest, "v1.0": multi.digest });
    expect(await tagsIn("mirror-b/app")).toEqual({ v1: multi.digest, "v1.0": multi.digest });
  });

  it("reports a digest missing from the source; exit 1", async () => {
    await seedStaging([{ content: single }]);
    await writeFile(path.join(dir, "promoter.yaml"), manifestText(IMAGES));
    const result = await run("promote", "--manifest", "promoter.yaml", "--output", "json");
    expect(result.status).toBe(1);
    const document = JSON.parse(result.out) as { edges: { decision: string; digest: string }[] };
    const missing = document.edges.filter((edge) => edge.decision === "missing-source");
    expect(missing).toHaveLength(4);
    expect(new Set(missing.map((edge) => edge.digest))).toEqual(new Set([multi.digest]));
  });

  it("runs a saved plan, and refuses one the registries no longer match", async () => {
    await seedStaging([{ content: multi, tag: "v1.0" }, { content: single }, { content: other }]);
    await writeFile(path.join(dir, "promoter.yaml"), manifestText(IMAGES));
    expect((await run("promote", "--manifest", "promoter.yaml", "--plan-file", "plan.json")).status).toBe(0);

    // Someone pushes v1.0 to mirror-b by hand: the plan no longer holds.
    await writeOciLayoutDirectly(path.join(dir, "mirror-b", "app"), [{ content: other, tag: "v1.0" }]);
    const fromPlan = [
      "promote",
      "--from-plan",
      "plan.json",
      "--manifest",
      "promoter.yaml",
      "--confirm",
      "--quiet",
    ];
    const refused = await run(...fromPlan);
    expect(refused.status).toBe(1);
    expect(refused.err).toContain("no longer match the plan");
    expect(refused.err).toContain("planned copy, now refused-tag-move");
    await expect(readFile(path.join(dir, "mirror-a", "app", "index.json"))).rejects.toThrow();

    await rm(path.join(dir, "mirror-b"), { recursive: true });
    const ran = await run(...fromPlan);
    expect(ran.status).toBe(0);
    expect(await tagsIn("mirror-a/app")).toEqual({ v1: multi.digest, "v1.0": multi.digest });
  });

  it("prints markdown for a pull-request comment", async () => {
    await seedStaging([{ content: multi, tag: "v1.0" }, { content: single }]);
    await writeFile(path.join(dir, "promoter.yaml"), manifestText(IMAGES));
    const result = await run("promote", "--manifest", "promoter.yaml", "--output", "markdown");
    expect(result.status).toBe(0);
    expect(result.out).toContain("### Promotion plan (dry run)");
    expect(result.out).toContain("| `app` |");
  });

  it("refuses bad usage with exit 2", async () => {
    expect((await run("promote")).status).toBe(2);
    expect((await run("promote", "--from-plan", "p.json")).status).toBe(2);
    expect((await run("promote", "--manifest", "a.yaml", "--from-plan", "p.json")).status).toBe(2);
    expect((await run("promote", "--manifest", "missing.yaml")).status).toBe(2);
    expect((await run("promote", "--manifest", "a.yaml", "--output", "xml")).status).toBe(2);
  });
});
