import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeImage, writeOciLayoutDirectly } from "../../test/support/test-images.js";
import { copyGraphs, type CopyEvent } from "../copy/index.js";
import { silentLogger } from "../log.js";
import type { RepositoryPath } from "../reference/index.js";
import { openOciLayoutRepository } from "../registry/index.js";
import type { OutputStream } from "./io.js";
import { ProgressReporter } from "./progress.js";

/**
 * The live progress line (issue 17 item 9): during one long upload, when no blob or destination
 * has finished, it must move with the bytes: bytes sent of the bytes begun, the rate, the time
 * left.
 */

const silentStream: OutputStream = { write: () => true } as unknown as OutputStream;
const MiB = 1024 * 1024;

function reporter(now: () => number, totalDestinations = 2): ProgressReporter {
  return new ProgressReporter({
    stream: silentStream,
    mode: "quiet",
    logger: silentLogger,
    totalTasks: 1,
    totalDestinations,
    now,
  });
}

describe("progress line of a real copy", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(path.join(tmpdir(), "progress-"));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it("moves with the bytes of an upload in flight, toward the size of that upload", async () => {
    const image = makeImage({ layers: 1, layerSize: 6 * MiB, mediaTypes: "oci", seed: "progress-big" });
    const layer = image.layers[0]!.descriptor;
    await writeOciLayoutDirectly(path.join(root, "staging", "big"), [{ content: image, tag: "v1" }]);
    const open = (tree: string) =>
      openOciLayoutRepository({
        kind: "oci-layout",
        directory: path.join(root, tree),
        repository: "big" as RepositoryPath,
      });
    const progress = reporter(() => performance.now());
    const during: string[] = [];
    let layerDone = 0;
    const onEvent = (event: CopyEvent): void => {
      progress.onEvent(event);
      if (event.type === "blob-uploaded" && event.digest === layer.digest) layerDone += 1;
      // What the line says while the big layer is still on its way to both mirrors.
      if (event.type === "blob-progress" && event.digest === layer.digest && layerDone === 0) {
        during.push(progress.statusLine());
      }
    };
    const outcomes = await copyGraphs(
      [
        {
          id: "big",
          source: open("staging"),
          digest: image.digest,
          destinations: [
            { store: open("mirror-a"), tags: [] },
            { store: open("mirror-b"), tags: [] },
          ],
        },
      ],
      { onEvent },
    );
    expect(outcomes.map((outcome) => outcome.status)).toEqual(["copied", "copied"]);
    expect(during.length).toBeGreaterThan(2);
    const sent = during.map((line) => {
      const match = /^copying: ([\d.]+) (B|KiB|MiB) of ([\d.]+) (B|KiB|MiB) at /.exec(line);
      expect(match, line).not.toBeNull();
      const scale = (unit: string) => (unit === "MiB" ? MiB : unit === "KiB" ? 1024 : 1);
      return { done: Number(match![1]) * scale(match![2]!), total: Number(match![3]) * scale(match![4]!) };
    });
    for (const [index, line] of during.entries()) {
      expect(line).toMatch(/; 0\/2 image destinations; blobs \d+ uploading, /);
      expect(sent[index]!.total).toBeGreaterThanOrEqual(layer.size * 0.99);
      if (index > 0) expect(sent[index]!.done).toBeGreaterThanOrEqual(sent[index - 1]!.done);
    }
    expect(sent.at(-1)!.done).toBeGreaterThan(sent[0]!.done);
    expect(sent.some(({ done, total }) => done > 0 && done < total * 0.9)).toBe(true);
    // After the run: everything sent, nothing in flight.
    expect(progress.statusLine()).toMatch(
      /^copying: ([\d.]+ MiB) of \1 at [^;]+; 2\/2 image destinations; blobs 4 uploaded, 0 mounted, 0 present$/,
    );
  });
});

describe("progress line arithmetic", () => {
  const event = (fields: Record<string, unknown>): CopyEvent =>
    ({
      taskId: "t",
      destination: "oci:mirror/app",
      digest: "sha256:aa",
      size: 600 * MiB,
      ...fields,
    }) as CopyEvent;

  it("says bytes of total, the rate since the first byte, and the time left", () => {
    let clock = 5_000;
    const progress = reporter(() => clock, 1);
    progress.onEvent(event({ type: "blob-skipped", reason: "exists", size: 10 }));
    progress.onEvent(event({ type: "blob-started", attempt: 1 }));
    expect(progress.statusLine()).toBe(
      "copying: 0 B of 600 MiB at 0 B/s; 0/1 image destinations; blobs 1 uploading, 0 uploaded, 0 mounted, 1 present",
    );
    progress.onEvent(event({ type: "blob-progress", bytes: 1 }));
    clock += 15_000;
    progress.onEvent(event({ type: "blob-progress", bytes: 300 * MiB - 1 }));
    expect(progress.statusLine()).toBe(
      "copying: 300 MiB of 600 MiB at 20.0 MiB/s, ~15.0 s left; 0/1 image destinations; blobs 1 uploading, 0 uploaded, 0 mounted, 1 present",
    );
  });

  it("takes back the bytes of a failed attempt, and counts a finished upload whole", () => {
    let clock = 0;
    const progress = reporter(() => clock, 1);
    progress.onEvent(event({ type: "blob-started", attempt: 1 }));
    progress.onEvent(event({ type: "blob-progress", bytes: 100 * MiB }));
    progress.onEvent(event({ type: "blob-failed", error: new Error("reset"), retrying: true }));
    progress.onEvent(event({ type: "blob-started", attempt: 2 }));
    clock = 10_000;
    progress.onEvent(event({ type: "blob-progress", bytes: 200 * MiB }));
    expect(progress.statusLine()).toMatch(/^copying: 200 MiB of 600 MiB at /);
    progress.onEvent(event({ type: "blob-uploaded" }));
    expect(progress.statusLine()).toMatch(
      /^copying: 600 MiB of 600 MiB at [\d.]+ MiB\/s; 0\/1 image destinations; blobs 1 uploaded, 0 mounted, 0 present$/,
    );
  });
});
