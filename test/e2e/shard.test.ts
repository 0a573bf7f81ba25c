import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../src/cli/main.js";
import { captureIO } from "../support/cli.js";
import { skopeoInspectRaw } from "../support/skopeo.js";
import { makeImage, makeIndex, writeOciLayoutDirectly, type TestContent } from "../support/test-images.js";

/**
 * `promoter promote --shard I/N` and `--shards N` (JOB_COMPLETION_INDEX), end to end over OCI
 * layouts: the shards' plans are disjoint and together are the whole plan, N workers run at the
 * same time without writing the same repository, and together leave the complete end state.
 */

const repoRoot = path.resolve(import.meta.dirname, "../..");
const cli = path.join(repoRoot, "bin", "promoter.js");
let work: string;

const images: { name: string; content: TestContent; tags: string[] }[] = Array.from(
  { length: 12 },
  (_, i) => {
    const image = (architecture: string) =>
      makeImage({
        layers: 1,
        layerSize: 2048,
        mediaTypes: "oci",
        seed: `shard-${i}-${architecture}`,
        platform: { architecture, os: "linux" },
      });
    return {
      name: i % 2 === 0 ? `team-${i % 3}/app-${i}` : `app-${i}`,
      content:
        i % 5 === 0 ? makeIndex([image("amd64"), image("arm64")], { mediaType: "oci" }) : image("amd64"),
      tags: i % 4 === 0 ? [`v${i}`, "stable"] : [`v${i}`],
    };
  },
);

const MANIFEST = [
  "registries:",
  "- name: oci:staging",
  "  src: true",
  "- name: oci:mirror-a",
  "- name: oci:mirror-b/deep",
  "images:",
  ...images.flatMap((image) => [
    `- name: ${image.name}`,
    "  dmap:",
    `    "${image.content.digest}": [${image.tags.map((tag) => `"${tag}"`).join(", ")}]`,
  ]),
  "",
].join("\n");

interface JsonEdge {
  destination: string;
  digest: string;
  tag?: string;
  decision: string;
  outcome?: string;
}

async function plan(args: string[], env: Record<string, string> = {}) {
  const capture = captureIO({ cwd: work, env: { HOME: work, ...env } });
  const status = await runCli(
    ["promote", "--manifest", "promotion.yaml", "--output", "json", ...args],
    capture.io,
  );
  return {
    status,
    err: capture.err(),
    document:
      status === 0 ? (JSON.parse(capture.out()) as { edges: JsonEdge[]; shard?: unknown }) : undefined,
  };
}

function key(edge: JsonEdge): string {
  return `${edge.destination}|${edge.digest}|${edge.tag ?? ""}`;
}

beforeAll(async () => {
  if (!existsSync(path.join(repoRoot, "dist", "cli", "entry.js"))) {
    throw new Error("dist/ is missing: run `npm run build` before the end-to-end sharding tests");
  }
  work = await mkdtemp(path.join(tmpdir(), "shard-e2e-"));
  for (const image of images) {
    await writeOciLayoutDirectly(path.join(work, "staging", image.name), [
      ...image.tags.map((tag) => ({ content: image.content, tag })),
    ]);
  }
  await writeFile(path.join(work, "promotion.yaml"), MANIFEST);
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

describe("promote --shard", () => {
  it("plans disjoint shards that together are the whole plan; --shard-by image keeps each image's mirrors together", async () => {
    const whole = await plan([]);
    expect(whole.status, whole.err).toBe(0);
    const all = whole.document!.edges.map(key).sort();
    expect(all).toHaveLength(2 * images.reduce((sum, image) => sum + image.tags.length, 0));

    for (const by of ["repository", "image"] as const) {
      for (const count of [2, 3, 5]) {
        const seen: string[] = [];
        const byRepository = new Map<string, number>();
        const byPath = new Map<string, number>();
        for (let index = 0; index < count; index++) {
          const args = ["--shard", `${index}/${count}`, ...(by === "image" ? ["--shard-by", "image"] : [])];
          const shard = await plan(args);
          expect(shard.status, shard.err).toBe(0);
          expect(shard.document!.shard).toEqual({ index, count, by });
          for (const edge of shard.document!.edges) {
            seen.push(key(edge));
            expect(byRepository.get(edge.destination) ?? index, `${edge.destination} split`).toBe(index);
            byRepository.set(edge.destination, index);
            if (by !== "image") continue;
            // mirror-a/<image> and mirror-b/deep/<image> share the path below the registry.
            const image = edge.destination.replace(/^oci:.*\/mirror-(a|b\/deep)\//, "");
            expect(byPath.get(image) ?? index, `${image} split across shards`).toBe(index);
            byPath.set(image, index);
          }
        }
        expect(new Set(seen).size).toBe(seen.length); // disjoint
        expect(seen.sort()).toEqual(all); // together, the whole plan
      }
    }
  });

  it("takes the index from JOB_COMPLETION_INDEX with --shards N, and refuses what is not a shard", async () => {
    const explicit = await plan(["--shard", "1/3"]);
    const indexed = await plan(["--shards", "3"], { JOB_COMPLETION_INDEX: "1" });
    expect(indexed.status, indexed.err).toBe(0);
    expect(indexed.document!.edges.map(key)).toEqual(explicit.document!.edges.map(key));

    for (const [args, env, message] of [
      [["--shard", "3/3"], {}, "--shard: shard index 3 is out of range: with 3 shards it is 0 to 2"],
      [["--shard", "2"], {}, '--shard: "2" is not I/N'],
      [
        ["--shards", "3"],
        {},
        "--shards 3 reads this worker's index from JOB_COMPLETION_INDEX, which is not set",
      ],
      [["--shards", "3"], { JOB_COMPLETION_INDEX: "7" }, "--shards: shard index 7 is out of range"],
      [
        ["--shards", "3"],
        { JOB_COMPLETION_INDEX: "x" },
        'JOB_COMPLETION_INDEX must be a whole number, not "x"',
      ],
      [["--shard", "0/2", "--shards", "2"], {}, "give either --shard I/N or --shards N, not both"],
      [["--shard-by", "image"], {}, "--shard-by goes with --shard I/N or --shards N"],
      [["--shard", "0/2", "--shard-by", "host"], {}, "--shard-by"],
    ] as const) {
      const run = await plan([...args], env);
      expect(run.status).toBe(2);
      expect(run.err).toContain(message);
      expect(run.err.trim().split("\n")).toHaveLength(1);
    }
  });

  it("lets three workers run at once and together leave the complete end state", async () => {
    const runs = await Promise.all(
      [0, 1, 2].map(
        (index) =>
          new Promise<{ code: number | null; out: string }>((resolve) => {
            const child = spawn(
              process.execPath,
              [
                cli,
                "promote",
                "--manifest",
                "promotion.yaml",
                "--shards",
                "3",
                "--confirm",
                "--quiet",
                "--output",
                "json",
              ],
              {
                cwd: work,
                env: { PATH: process.env.PATH ?? "", HOME: work, JOB_COMPLETION_INDEX: String(index) },
              },
            );
            let out = "";
            child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
            child.on("exit", (code) => {
              resolve({ code, out });
            });
          }),
      ),
    );
    const writer = new Map<string, number>();
    for (const [index, run] of runs.entries()) {
      expect(run.code).toBe(0);
      const document = JSON.parse(run.out) as { edges: JsonEdge[] };
      expect(document.edges.length).toBeGreaterThan(0);
      for (const edge of document.edges) {
        expect(edge.outcome).toBe("copied");
        // No repository is written by two workers.
        expect(writer.get(edge.destination) ?? index, edge.destination).toBe(index);
        writer.set(edge.destination, index);
      }
    }
    expect(writer.size).toBe(2 * images.length);
    for (const image of images) {
      for (const mirror of ["mirror-a", "mirror-b/deep"]) {
        for (const tag of image.tags) {
          const raw = await skopeoInspectRaw(`oci:${path.join(work, mirror, image.name)}:${tag}`);
          expect(raw.digest).toBe(image.content.digest);
        }
      }
    }
    // A second round finds nothing left in any shard.
    for (let index = 0; index < 3; index++) {
      const again = await plan(["--shard", `${index}/3`]);
      expect(again.document!.edges.every((edge) => edge.decision === "unchanged")).toBe(true);
    }
  });
});
