import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { makeImage, writeOciLayoutDirectly } from "../../test/support/test-images.js";
import { parseRepositoryPath, parseTag, type Digest, type Tag } from "../reference/index.js";
import { createStoreProvider } from "../registry/index.js";
import { observeRepository } from "./inventory.js";

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "inventory-"));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const images = Array.from({ length: 10 }, (_, i) =>
  makeImage({ layers: 1, layerSize: 64, mediaTypes: "oci", seed: `inv-${i}` }),
);
const tags = images.map((_, i) => parseTag(`v${i}`));

function question(): { tags: Set<Tag>; digests: Set<Digest> } {
  return { tags: new Set(tags), digests: new Set(images.map((image) => image.digest)) };
}

async function observe(repository: string) {
  const provider = createStoreProvider();
  const store = provider.repository({
    kind: "oci-layout",
    directory: dir,
    repository: parseRepositoryPath(repository),
  });
  const state = await observeRepository(store, question());
  const requests = [...provider.requestCounts().values()].reduce((sum, count) => sum + count.total, 0);
  return { state, requests };
}

describe("observeRepository", () => {
  it("costs one request per tag when everything is there", async () => {
    await writeOciLayoutDirectly(
      path.join(dir, "done"),
      images.map((content, i) => ({ content, tag: `v${i}` })),
    );
    const { state, requests } = await observe("done");
    expect(state.kind).toBe("observed");
    if (state.kind !== "observed") return;
    expect(state.tags.size).toBe(10);
    expect(state.digests.size).toBe(10);
    expect(requests).toBe(10);
    expect(state.empty).toBeUndefined();
  });

  it("lists tags once instead of asking for each when the repository is new", async () => {
    const { state, requests } = await observe("new");
    expect(state).toMatchObject({ kind: "observed" });
    if (state.kind !== "observed") return;
    expect(state.tags.size).toBe(0);
    expect(state.digests.size).toBe(0);
    // HEAD of the first tag, one tags list, then a HEAD per wanted digest.
    expect(requests).toBe(1 + 1 + 10);
    // Listed with nothing in it: the copy need not check for anything there.
    expect(state.empty).toBe(true);
  });

  it("finds the tags that exist and the digests behind missing tags", async () => {
    await writeOciLayoutDirectly(path.join(dir, "half"), [
      { content: images[1]!, tag: "v1" },
      { content: images[2]! },
      { content: images[3]!, tag: "v0" },
    ]);
    const { state } = await observe("half");
    if (state.kind !== "observed") throw new Error("not observed");
    expect(Object.fromEntries(state.tags)).toEqual({ v0: images[3]!.digest, v1: images[1]!.digest });
    expect([...state.digests].sort()).toEqual(
      [images[1]!.digest, images[2]!.digest, images[3]!.digest].sort(),
    );
    expect(state.empty).toBeUndefined();
  });
});
