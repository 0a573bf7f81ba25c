import { mkdtemp, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sha256 } from "../../test/support/scripted-registry.js";
import { parseDigest, parseRepositoryPath, type RegistryHost } from "../reference/index.js";
import { createStoreProvider } from "./provider.js";
import { RemoteRepository } from "./remote/remote-repository.js";

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(path.join(os.tmpdir(), "provider-test-"));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe("createStoreProvider", () => {
  it("opens OCI layouts with the layout backend and counts their operations under oci:DIR", async () => {
    const provider = createStoreProvider({ credentialSources: [] });
    const store = provider.repository({
      kind: "oci-layout",
      directory,
      repository: parseRepositoryPath("team/app"),
    });
    const bytes = Buffer.from("layer");
    const digest = parseDigest(sha256(bytes));
    async function* content() {
      await Promise.resolve();
      yield bytes;
    }
    await store.putBlob({ mediaType: "application/octet-stream", digest, size: bytes.length }, content());
    expect(await store.hasBlob(digest)).toBe(true);
    expect(store.name).toContain("team/app");
    expect(await provider.catalog({ kind: "oci-layout", directory }, "")).toEqual(["team/app"]);
    expect(provider.requestCounts().get(`oci:${directory}`)).toEqual({
      total: 3,
      byMethod: { PUT: 1, HEAD: 1, GET: 1 },
    });
    await provider.close();
  });

  it("opens remote repositories that can mount from each other within one registry only", () => {
    const provider = createStoreProvider({ credentialSources: [] });
    const open = (host: string, name: string) =>
      provider.repository({
        kind: "remote",
        host: host as RegistryHost,
        repository: parseRepositoryPath(name),
      });
    const a = open("registry.example", "a");
    expect(a).toBeInstanceOf(RemoteRepository);
    expect(a.name).toBe("registry.example/a");
    expect(a.canMountFrom(open("registry.example", "b"))).toBe(true);
    expect(a.canMountFrom(open("other.example", "a"))).toBe(false);
    expect(
      a.canMountFrom(
        provider.repository({ kind: "oci-layout", directory, repository: parseRepositoryPath("a") }),
      ),
    ).toBe(false);
  });

  it("refuses a CA bundle without certificates", () => {
    expect(() => createStoreProvider({ caBundleFile: path.join(directory, "missing.pem") })).toThrow(
      /cannot use CA bundle/,
    );
  });
});
