/**
 * The client against real registries with authentication: distribution 2.8.2 with token auth
 * (through the test token server) and with htpasswd basic auth. Credentials reach the client
 * through its real sources (environment variables, a Docker config.json).
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistry, type TestRegistry } from "../../../test/support/registry-harness.js";
import { skopeoInspectRaw } from "../../../test/support/skopeo.js";
import { allBlobs, allManifests, makeImage, type TestContent } from "../../../test/support/test-images.js";
import { MemoryLogger } from "../../log.js";
import type { Descriptor } from "../../oci/index.js";
import { parseRepositoryPath, parseTag, type RegistryHost } from "../../reference/index.js";
import { registryAuthVariable } from "../credentials/sources.js";
import { RegistryError } from "../errors.js";
import { createStoreProvider, type RegistryStoreProvider, type StoreProviderOptions } from "../provider.js";
import type { RepositoryStore } from "../store.js";

const PUSHER_PASSWORD = "pusher-Secret-5150";
const ADMIN_PASSWORD = "admin-Secret-8086";

let scratch: string;
const providers: RegistryStoreProvider[] = [];

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), "distribution-auth-test-"));
});

afterAll(async () => {
  await Promise.all(providers.map((provider) => provider.close()));
  await rm(scratch, { recursive: true, force: true });
});

function open(options: StoreProviderOptions): RegistryStoreProvider {
  const provider = createStoreProvider({ homeDirectory: path.join(scratch, "no-home"), ...options });
  providers.push(provider);
  return provider;
}

function repository(provider: RegistryStoreProvider, registry: TestRegistry, name: string): RepositoryStore {
  return provider.repository({
    kind: "remote",
    host: registry.host as RegistryHost,
    repository: parseRepositoryPath(name),
  });
}

async function* bytesOf(buffer: Buffer): AsyncGenerator<Uint8Array> {
  await Promise.resolve();
  yield buffer;
}

async function push(store: RepositoryStore, content: TestContent, tag: string): Promise<void> {
  for (const blob of allBlobs(content)) {
    if (!(await store.hasBlob(blob.descriptor.digest))) {
      await store.putBlob(blob.descriptor, bytesOf(blob.bytes));
    }
  }
  for (const manifest of allManifests(content)) {
    await store.putManifest(
      { digest: manifest.digest, mediaType: manifest.mediaType, bytes: manifest.bytes },
      manifest === content ? parseTag(tag) : manifest.digest,
    );
  }
}

describe("distribution 2.8.2 with token auth", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({
      auth: "token",
      users: [
        { username: "admin", password: ADMIN_PASSWORD, access: "all" },
        {
          username: "pusher",
          password: PUSHER_PASSWORD,
          access: [
            { name: "token/source", actions: ["pull"] },
            { name: "token/target*", actions: ["pull", "push"] },
          ],
        },
        {
          username: "stranger",
          password: "stranger-pass",
          access: [{ name: "token/target-b", actions: ["pull", "push"] }],
        },
      ],
    });
  });
  afterAll(async () => {
    await registry.stop();
  });

  const envFor = (username: string, password: string) => ({
    [registryAuthVariable(registry.host)]: `${username}:${password}`,
  });

  it("pushes and pulls with tokens for exactly the scopes needed, and escalates for a mount", async () => {
    const image = makeImage({ layers: 2, layerSize: 2000, mediaTypes: "oci", seed: "token-auth" });
    const admin = open({ env: envFor("admin", ADMIN_PASSWORD) });
    await push(repository(admin, registry, "token/source"), image, "v1");

    const tokenServer = registry.tokenServer!;
    tokenServer.resetRequests();
    const logger = new MemoryLogger();
    const pusher = open({ env: envFor("pusher", PUSHER_PASSWORD), logger });
    const source = pusher.repository({
      kind: "remote",
      host: registry.host as RegistryHost,
      repository: parseRepositoryPath("token/source"),
    });
    expect((await source.getManifest(parseTag("v1")))?.digest).toBe(image.digest);
    const target = repository(pusher, registry, "token/target");
    for (const blob of allBlobs(image)) {
      expect(await target.mountBlob(blob.descriptor as Descriptor, parseRepositoryPath("token/source"))).toBe(
        true,
      );
    }
    await target.putManifest(
      { digest: image.digest, mediaType: image.mediaType, bytes: image.bytes },
      parseTag("v1"),
    );
    expect(
      (
        await skopeoInspectRaw(`docker://${registry.host}/token/target:v1`, {
          creds: { username: "pusher", password: PUSHER_PASSWORD },
        })
      ).digest,
    ).toBe(image.digest);

    const asked = tokenServer.requests
      .filter((request) => request.status === 200)
      .map((request) => [...request.scopes].sort());
    expect(asked).toContainEqual(["repository:token/source:pull"]);
    expect(asked).toContainEqual(["repository:token/source:pull", "repository:token/target:pull,push"]);
    expect(asked).toContainEqual(["repository:token/target:pull,push"]);
    // One token per scope set: the mounts of two blobs and the manifest push shared tokens.
    expect(tokenServer.requests.length).toBe(new Set(asked.map((scopes) => scopes.join(" "))).size);
    expect(JSON.stringify(logger.lines)).not.toContain(PUSHER_PASSWORD);
  });

  it("falls back to an upload when the mount source is not readable with these credentials", async () => {
    const image = makeImage({ layers: 1, layerSize: 1000, mediaTypes: "oci", seed: "token-no-mount" });
    const admin = open({ env: envFor("admin", ADMIN_PASSWORD) });
    await push(repository(admin, registry, "token/source"), image, "v2");
    const stranger = open({ env: envFor("stranger", "stranger-pass") });
    const target = repository(stranger, registry, "token/target-b");
    const layer = image.layers[0]!;
    expect(await target.mountBlob(layer.descriptor as Descriptor, parseRepositoryPath("token/source"))).toBe(
      false,
    );
    // Distribution answers such a mount with 401, not 202; the client stops asking for that pair.
    const posts = stranger.requestCounts().get(registry.host)?.byMethod.POST;
    expect(
      await target.mountBlob(image.config.descriptor as Descriptor, parseRepositoryPath("token/source")),
    ).toBe(false);
    expect(stranger.requestCounts().get(registry.host)?.byMethod.POST).toBe(posts);
    await target.putBlob(layer.descriptor, bytesOf(layer.bytes));
    expect(await target.hasBlob(layer.descriptor.digest)).toBe(true);
  });

  it("exchanges an OAuth2 refresh token (identity token) for access tokens", async () => {
    const response = await fetch(registry.tokenServer!.realm, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "password",
        username: "pusher",
        password: PUSHER_PASSWORD,
        access_type: "offline",
        client_id: "test",
        service: registry.tokenServer!.service,
      }).toString(),
    });
    const { refresh_token: refreshToken } = (await response.json()) as { refresh_token: string };
    const dockerConfig = path.join(scratch, "identity");
    await mkdir(dockerConfig, { recursive: true });
    await writeFile(
      path.join(dockerConfig, "config.json"),
      JSON.stringify({
        auths: {
          [registry.host]: { auth: Buffer.from("<token>:").toString("base64"), identitytoken: refreshToken },
        },
      }),
    );
    registry.tokenServer!.resetRequests();
    const provider = open({ env: { DOCKER_CONFIG: dockerConfig } });
    const tags = await repository(provider, registry, "token/target").listTags();
    expect(tags).toContain("v1");
    expect(registry.tokenServer!.requests.map((request) => [request.method, request.grantType])).toEqual([
      ["POST", "refresh_token"],
    ]);
  });

  it("reads anonymously, and a push without credentials names where it looked", async () => {
    const provider = open({ env: {} });
    const store = repository(provider, registry, "token/target");
    expect(await store.listTags()).toContain("v1");
    const blob = Buffer.from("anonymous push");
    const { createHash } = await import("node:crypto");
    const digest = `sha256:${createHash("sha256").update(blob).digest("hex")}` as Descriptor["digest"];
    const error = await store
      .putBlob({ mediaType: "application/octet-stream", digest, size: blob.length }, bytesOf(blob))
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).code).toBe("registry-auth");
    expect((error as RegistryError).message).toContain(registry.host);
    expect((error as RegistryError).message).toContain(registryAuthVariable(registry.host));
    expect((error as RegistryError).message).toContain(
      path.join(scratch, "no-home", ".docker", "config.json"),
    );
  });
});

describe("distribution 2.8.2 with basic auth", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({
      auth: "basic",
      users: [{ username: "basic", password: PUSHER_PASSWORD }],
    });
  });
  afterAll(async () => {
    await registry.stop();
  });

  async function dockerConfigWith(name: string, password: string): Promise<string> {
    const directory = path.join(scratch, name);
    await mkdir(directory, { recursive: true });
    await writeFile(
      path.join(directory, "config.json"),
      JSON.stringify({
        auths: { [`http://${registry.host}`]: { auth: Buffer.from(`basic:${password}`).toString("base64") } },
      }),
    );
    return directory;
  }

  it("pushes and pulls with credentials from a Docker config.json", async () => {
    const image = makeImage({ layers: 1, layerSize: 1000, mediaTypes: "docker", seed: "basic-auth" });
    const provider = open({ env: { DOCKER_CONFIG: await dockerConfigWith("basic-good", PUSHER_PASSWORD) } });
    const store = repository(provider, registry, "basic/app");
    await push(store, image, "v1");
    expect((await store.getManifest(parseTag("v1")))?.digest).toBe(image.digest);
    expect(await store.listTags()).toEqual(["v1"]);
  });

  it("refuses a wrong password with registry-auth, never showing it", async () => {
    const wrong = "Wrong-Password-31337";
    const configDirectory = await dockerConfigWith("basic-bad", wrong);
    const logger = new MemoryLogger();
    const provider = open({ env: { DOCKER_CONFIG: configDirectory }, logger });
    const error = await repository(provider, registry, "basic/app")
      .listTags()
      .catch((caught: unknown) => caught);
    expect((error as RegistryError).code).toBe("registry-auth");
    expect((error as RegistryError).message).toContain(
      `the credentials from ${path.join(configDirectory, "config.json")}`,
    );
    const everything = JSON.stringify([String(error), (error as Error).stack, logger.lines]);
    expect(everything).not.toContain(wrong);
    expect(everything).not.toContain(Buffer.from(`basic:${wrong}`).toString("base64"));
  });
});
