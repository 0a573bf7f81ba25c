import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistry, type TestRegistry } from "./registry-harness.js";
import { scanForIncompleteTags } from "./registry-judge.js";
import { SkopeoError, skopeoInspectRaw, skopeoListTags } from "./skopeo.js";
import { makeImage, pushWithSkopeo, writeOciLayoutDirectly } from "./test-images.js";

function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const reader = { username: "reader", password: "reader-secret", access: "pull" as const };
const pusher = { username: "pusher", password: "pusher-secret", access: "push" as const };

let layoutDir: string;
const image = makeImage({ layers: 2, layerSize: 2048, mediaTypes: "oci", seed: "harness" });

beforeAll(async () => {
  layoutDir = await mkdtemp(path.join(os.tmpdir(), "harness-layout-"));
  await writeOciLayoutDirectly(layoutDir, [{ content: image, tag: "v1" }]);
});
afterAll(async () => {
  await rm(layoutDir, { recursive: true, force: true });
});

describe("registry without auth", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(async () => {
    await registry.stop();
  });

  it("answers /v2/ on a loopback port and accepts a skopeo push", async () => {
    expect(registry.host).toMatch(/^127\.0\.0\.1:\d+$/);
    const response = await fetch(`${registry.url}/v2/`);
    expect(response.status).toBe(200);
    await pushWithSkopeo(layoutDir, "v1", `${registry.host}/team/app:v1`);
    const { digest, bytes } = await skopeoInspectRaw(`docker://${registry.host}/team/app:v1`);
    expect(digest).toBe(image.digest);
    expect(bytes.equals(image.bytes)).toBe(true);
    expect(await skopeoListTags(`docker://${registry.host}/team/app`)).toEqual(["v1"]);
    expect(registry.logs()).toMatch(/listening on 127\.0\.0\.1/);
  });
});

describe("registry with htpasswd basic auth", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: "basic", users: [pusher] });
  });
  afterAll(async () => {
    await registry.stop();
  });

  it("challenges with Basic and accepts the right credentials only", async () => {
    const anonymous = await fetch(`${registry.url}/v2/`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get("www-authenticate")).toMatch(/^Basic realm="test-registry"/);
    const basic = (user: string, password: string): string =>
      `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
    expect(
      (await fetch(`${registry.url}/v2/`, { headers: { authorization: basic("pusher", "pusher-secret") } }))
        .status,
    ).toBe(200);
    expect(
      (await fetch(`${registry.url}/v2/`, { headers: { authorization: basic("pusher", "wrong") } })).status,
    ).toBe(401);

    await expect(
      pushWithSkopeo(layoutDir, "v1", `${registry.host}/app:v1`, { username: "pusher", password: "wrong" }),
    ).rejects.toThrow(SkopeoError);
    await pushWithSkopeo(layoutDir, "v1", `${registry.host}/app:v1`, {
      username: "pusher",
      password: "pusher-secret",
    });
    const { digest } = await skopeoInspectRaw(`docker://${registry.host}/app:v1`, {
      creds: { username: "pusher", password: "pusher-secret" },
    });
    expect(digest).toBe(image.digest);
  });
});

describe("registry with token auth", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: "token", users: [reader, pusher], anonymous: "none" });
  });
  afterAll(async () => {
    await registry.stop();
  });

  it("challenges with Bearer naming the token server's realm and service", async () => {
    const response = await fetch(`${registry.url}/v2/`);
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toBe(
      `Bearer realm="${registry.tokenServer!.realm}",service="test-registry"`,
    );
    const tags = await fetch(`${registry.url}/v2/app/tags/list`);
    expect(tags.headers.get("www-authenticate")).toBe(
      `Bearer realm="${registry.tokenServer!.realm}",service="test-registry",scope="repository:app:pull"`,
    );
  });

  it("lets the pusher push and the reader only pull; wrong passwords fail", async () => {
    const tokens = registry.tokenServer!;
    tokens.resetRequests();
    await pushWithSkopeo(layoutDir, "v1", `${registry.host}/app:v1`, {
      username: "pusher",
      password: "pusher-secret",
    });
    expect(
      tokens.requests.some((r) => r.username === "pusher" && r.scopes.includes("repository:app:pull,push")),
    ).toBe(true);

    const read = await skopeoInspectRaw(`docker://${registry.host}/app:v1`, {
      creds: { username: "reader", password: "reader-secret" },
    });
    expect(read.digest).toBe(image.digest);
    await expect(
      pushWithSkopeo(layoutDir, "v1", `${registry.host}/app:v2`, {
        username: "reader",
        password: "reader-secret",
      }),
    ).rejects.toThrow(/denied|unauthorized|authentication required/i);
    await expect(
      skopeoInspectRaw(`docker://${registry.host}/app:v1`, {
        creds: { username: "pusher", password: "nope" },
      }),
    ).rejects.toThrow(SkopeoError);
    // Anonymous requests get nothing from this server.
    await expect(skopeoInspectRaw(`docker://${registry.host}/app:v1`)).rejects.toThrow(SkopeoError);
  });

  it("grants exactly the requested scopes the user may have, and records them", async () => {
    const tokens = registry.tokenServer!;
    tokens.resetRequests();
    const basic = `Basic ${Buffer.from("reader:reader-secret").toString("base64")}`;
    const url = `${tokens.realm}?service=test-registry&scope=repository:app:pull,push&scope=repository:other:pull`;
    const response = await fetch(url, { headers: { authorization: basic } });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { token: string; access_token: string; expires_in: number };
    expect(body.token).toBe(body.access_token);
    expect(body.expires_in).toBe(300);
    const claims = JSON.parse(Buffer.from(body.token.split(".")[1]!, "base64url").toString()) as {
      access: unknown;
      aud: string;
      sub: string;
    };
    expect(claims.access).toEqual([
      { type: "repository", name: "app", actions: ["pull"] },
      { type: "repository", name: "other", actions: ["pull"] },
    ]);
    expect(claims.aud).toBe("test-registry");
    expect(tokens.requestCount()).toBe(1);
    expect(tokens.requests[0]).toMatchObject({
      method: "GET",
      grantType: "basic",
      username: "reader",
      scopes: ["repository:app:pull,push", "repository:other:pull"],
      status: 200,
    });

    // The token works at the registry for what it grants, and not for more.
    const bearer = { authorization: `Bearer ${body.token}` };
    expect((await fetch(`${registry.url}/v2/app/tags/list`, { headers: bearer })).status).toBe(200);
    const upload = await fetch(`${registry.url}/v2/app/blobs/uploads/`, { method: "POST", headers: bearer });
    expect(upload.status).toBe(401);
  });

  it("speaks the OAuth2 password and refresh_token grants", async () => {
    const tokens = registry.tokenServer!;
    tokens.resetRequests();
    const post = (form: Record<string, string>): Promise<Response> =>
      fetch(tokens.realm, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(form).toString(),
      });
    const first = await post({
      grant_type: "password",
      username: "pusher",
      password: "pusher-secret",
      service: "test-registry",
      scope: "repository:app:pull,push",
      client_id: "tests",
      access_type: "offline",
    });
    expect(first.status).toBe(200);
    const firstBody = (await first.json()) as { access_token: string; refresh_token?: string; scope: string };
    expect(firstBody.refresh_token).toMatch(/^[0-9a-f]{48}$/);
    expect(firstBody.scope).toBe("repository:app:pull,push");

    const online = (await (
      await post({
        grant_type: "password",
        username: "pusher",
        password: "pusher-secret",
        service: "test-registry",
      })
    ).json()) as { refresh_token?: string };
    expect(online.refresh_token).toBeUndefined();

    const refreshed = await post({
      grant_type: "refresh_token",
      refresh_token: firstBody.refresh_token!,
      service: "test-registry",
      scope: "repository:app:pull",
    });
    expect(refreshed.status).toBe(200);
    const refreshedBody = (await refreshed.json()) as { access_token: string };
    const tags = await fetch(`${registry.url}/v2/app/tags/list`, {
      headers: { authorization: `Bearer ${refreshedBody.access_token}` },
    });
    expect(await tags.json()).toEqual({ name: "app", tags: ["v1"] });

    expect(
      (await post({ grant_type: "refresh_token", refresh_token: "bogus", service: "test-registry" })).status,
    ).toBe(401);
    expect(
      (await post({ grant_type: "password", username: "pusher", password: "x", service: "test-registry" }))
        .status,
    ).toBe(401);
    expect(tokens.requests.map((r) => [r.grantType, r.status])).toEqual([
      ["password", 200],
      ["password", 200],
      ["refresh_token", 200],
      ["refresh_token", 401],
      ["password", 401],
    ]);
  });
});

describe("token expiry", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry({ auth: "token", tokenExpiresInSeconds: 2, compensateTokenLeeway: true });
  });
  afterAll(async () => {
    await registry.stop();
  });

  it("the registry refuses a token once expires_in has passed", async () => {
    const response = await fetch(
      `${registry.tokenServer!.realm}?service=test-registry&scope=repository:app:pull`,
    );
    const { token, expires_in } = (await response.json()) as { token: string; expires_in: number };
    expect(expires_in).toBe(2);
    const headers = { authorization: `Bearer ${token}` };
    expect((await fetch(`${registry.url}/v2/app/tags/list`, { headers })).status).toBe(404);
    await new Promise((resolve) => setTimeout(resolve, 3_100));
    expect((await fetch(`${registry.url}/v2/app/tags/list`, { headers })).status).toBe(401);
  });
});

describe("notifications", () => {
  it("posts push events with the configured headers", async () => {
    const received: { headers: IncomingMessage["headers"]; body: unknown }[] = [];
    const server = createServer((request, response) => {
      let text = "";
      request.on("data", (chunk: Buffer) => (text += chunk.toString()));
      request.on("end", () => {
        received.push({ headers: request.headers, body: JSON.parse(text) });
        response.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const registry = await startRegistry({
      notifications: [
        { url: `http://127.0.0.1:${port}/events`, headers: { Authorization: "Bearer hook-secret" } },
      ],
    });
    try {
      await pushWithSkopeo(layoutDir, "v1", `${registry.host}/hooked:v1`);
      const deadline = Date.now() + 10_000;
      const manifestPush = (): unknown =>
        received
          .flatMap(
            (r) =>
              (r.body as { events: { action: string; target: { mediaType: string; tag?: string } }[] })
                .events,
          )
          .find(
            (e) => e.action === "push" && e.target.mediaType === image.mediaType && e.target.tag === "v1",
          );
      while (!manifestPush() && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 50));
      expect(manifestPush()).toMatchObject({
        action: "push",
        target: { repository: "hooked", digest: image.digest, tag: "v1" },
      });
      expect(received[0]!.headers.authorization).toBe("Bearer hook-secret");
      expect(received[0]!.headers["content-type"]).toBe("application/vnd.docker.distribution.events.v1+json");
    } finally {
      await registry.stop();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("stop()", () => {
  it("ends exactly the registry process and removes its folder", async () => {
    const first = await startRegistry();
    const second = await startRegistry({ auth: "basic" });
    expect(first.host).not.toBe(second.host);
    expect(processExists(first.pid)).toBe(true);
    await first.stop();
    expect(processExists(first.pid)).toBe(false);
    expect(existsSync(first.tempDir)).toBe(false);
    expect(processExists(second.pid)).toBe(true);
    expect((await fetch(`${second.url}/v2/`)).status).toBe(401);
    await second.stop();
    await second.stop(); // idempotent
    expect(processExists(second.pid)).toBe(false);
    await expect(fetch(`${first.url}/v2/`)).rejects.toThrow();
  });
});

/**
 * What distribution 2.8.2 does on loopback, pinned so a change of the registry shows up here
 * (docs/test-harness.md lists the same facts).
 */
describe("distribution 2.8.2 facts", () => {
  let registry: TestRegistry;
  const oci = makeImage({ layers: 1, layerSize: 512, mediaTypes: "oci", seed: "facts-oci" });
  const docker = makeImage({ layers: 1, layerSize: 512, mediaTypes: "docker", seed: "facts-docker" });
  const accept = {
    accept: [oci.mediaType, docker.mediaType, "application/vnd.oci.image.index.v1+json"].join(", "),
  };

  async function putManifest(
    repository: string,
    reference: string,
    mediaType: string,
    bytes: Buffer,
  ): Promise<Response> {
    return fetch(`${registry.url}/v2/${repository}/manifests/${reference}`, {
      method: "PUT",
      headers: { "content-type": mediaType },
      body: bytes,
    });
  }
  async function uploadBlob(repository: string, bytes: Buffer, digest: string): Promise<void> {
    const start = await fetch(`${registry.url}/v2/${repository}/blobs/uploads/`, { method: "POST" });
    expect(start.status).toBe(202);
    const location = new URL(start.headers.get("location")!, registry.url);
    location.searchParams.set("digest", digest);
    const put = await fetch(location, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream" },
      body: bytes,
    });
    expect(put.status).toBe(201);
  }
  async function pushImage(repository: string, content: typeof oci, tag: string): Promise<void> {
    for (const item of [content.config, ...content.layers])
      await uploadBlob(repository, item.bytes, item.descriptor.digest);
    expect((await putManifest(repository, tag, content.mediaType, content.bytes)).status).toBe(201);
  }

  beforeAll(async () => {
    registry = await startRegistry();
    await pushImage("facts", oci, "oci");
    await pushImage("facts", docker, "docker");
  });
  afterAll(async () => {
    await registry.stop();
  });

  it("accepts OCI indexes and Docker manifest lists", async () => {
    const { makeIndex } = await import("./test-images.js");
    const ociIndex = makeIndex([oci], { mediaType: "oci" });
    const list = makeIndex([docker], { mediaType: "docker" });
    expect((await putManifest("facts", "index", ociIndex.mediaType, ociIndex.bytes)).status).toBe(201);
    expect((await putManifest("facts", "list", list.mediaType, list.bytes)).status).toBe(201);
    const got = await fetch(`${registry.url}/v2/facts/manifests/index`, {
      headers: { accept: ociIndex.mediaType },
    });
    expect(got.headers.get("docker-content-digest")).toBe(ociIndex.digest);
    expect(got.headers.get("content-type")).toBe(ociIndex.mediaType);
  });

  it("stores a manifest with subject byte for byte, but has no referrers API", async () => {
    const { makeReferrer } = await import("./test-images.js");
    const referrer = makeReferrer({
      subject: oci.descriptor,
      artifactType: "application/vnd.example.sbom",
      seed: "f",
    });
    for (const item of [referrer.config, ...referrer.layers])
      await uploadBlob("facts", item.bytes, item.descriptor.digest);
    const put = await putManifest("facts", referrer.digest, referrer.mediaType, referrer.bytes);
    expect(put.status).toBe(201);
    expect(put.headers.get("oci-subject")).toBeNull();
    const got = await fetch(`${registry.url}/v2/facts/manifests/${referrer.digest}`, { headers: accept });
    expect(Buffer.from(await got.arrayBuffer()).equals(referrer.bytes)).toBe(true);
    const referrers = await fetch(`${registry.url}/v2/facts/referrers/${oci.digest}`);
    expect(referrers.status).toBe(404);
  });

  it("does not store a blob sent as a single-request monolithic upload (POST ?digest= with body)", async () => {
    const bytes = Buffer.from("monolithic upload body");
    const { sha256Digest } = await import("./test-images.js");
    const digest = sha256Digest(bytes);
    const post = await fetch(`${registry.url}/v2/facts/blobs/uploads/?digest=${digest}`, {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: bytes,
    });
    expect(post.status).toBe(202); // it opens an upload session and ignores the body
    const head = await fetch(`${registry.url}/v2/facts/blobs/${digest}`, { method: "HEAD" });
    expect(head.status).toBe(404);
  });

  it("mounts across repositories: 201 when the blob is in `from`, 202 (an upload session) otherwise", async () => {
    const layer = oci.layers[0]!.descriptor.digest;
    const mounted = await fetch(`${registry.url}/v2/other/blobs/uploads/?mount=${layer}&from=facts`, {
      method: "POST",
    });
    expect(mounted.status).toBe(201);
    // Absolute URLs unless `http.relativeurls` is set (see the relativeUrls option below).
    expect(mounted.headers.get("location")).toBe(`${registry.url}/v2/other/blobs/${layer}`);
    expect(mounted.headers.get("docker-content-digest")).toBe(layer);
    const missing = `sha256:${"0".repeat(64)}`;
    const declined = await fetch(`${registry.url}/v2/other/blobs/uploads/?mount=${missing}&from=facts`, {
      method: "POST",
    });
    expect(declined.status).toBe(202);
    expect(declined.headers.get("location")).toMatch(
      new RegExp(`^${registry.url}/v2/other/blobs/uploads/[0-9a-f-]+\\?_state=`),
    );
  });

  it("answers with relative Location headers when started with relativeUrls", async () => {
    const relative = await startRegistry({ relativeUrls: true });
    try {
      const start = await fetch(`${relative.url}/v2/rel/blobs/uploads/`, { method: "POST" });
      expect(start.status).toBe(202);
      expect(start.headers.get("location")).toMatch(/^\/v2\/rel\/blobs\/uploads\/[0-9a-f-]+\?_state=/);
    } finally {
      await relative.stop();
    }
  });

  it("ignores n on tags/list but paginates _catalog", async () => {
    for (const tag of ["t1", "t2", "t3"])
      expect((await putManifest("facts", tag, oci.mediaType, oci.bytes)).status).toBe(201);
    const tags = await fetch(`${registry.url}/v2/facts/tags/list?n=2`);
    expect(tags.headers.get("link")).toBeNull();
    expect(((await tags.json()) as { tags: string[] }).tags.length).toBeGreaterThan(2);

    for (const repository of ["cat-a", "cat-b", "cat-c"]) await pushImage(repository, oci, "x");
    const page = await fetch(`${registry.url}/v2/_catalog?n=2`);
    expect(((await page.json()) as { repositories: string[] }).repositories).toHaveLength(2);
    expect(page.headers.get("link")).toMatch(/^<\/v2\/_catalog\?last=[^&>]+&n=2>; rel="next"$/);
  });

  it("answers 404 to a GET without Accept for an OCI manifest, 200 for a Docker one", async () => {
    expect((await fetch(`${registry.url}/v2/facts/manifests/oci`)).status).toBe(404);
    expect((await fetch(`${registry.url}/v2/facts/manifests/oci`, { headers: accept })).status).toBe(200);
    expect((await fetch(`${registry.url}/v2/facts/manifests/docker`)).status).toBe(200);
  });
});

describe("the registry judge", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  }, 60_000);
  afterAll(async () => {
    await registry.stop();
  });

  it("reports a tag that serves an image whose layer the registry cannot deliver", async () => {
    await pushWithSkopeo(layoutDir, "v1", `${registry.host}/judge/app:v1`);
    expect((await scanForIncompleteTags(registry.url, ["judge/app"])).problems).toEqual([]);
    // The layer's data removed from the filesystem storage behind the registry's back.
    const hex = image.layers[0]!.descriptor.digest.slice("sha256:".length);
    await rm(path.join(registry.dataDir, "docker/registry/v2/blobs/sha256", hex.slice(0, 2), hex), {
      recursive: true,
    });
    const { problems } = await scanForIncompleteTags(registry.url, ["judge/app"]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(new RegExp(`^judge/app:v1 -> .*blob ${image.layers[0]!.descriptor.digest}`));
  });
});
