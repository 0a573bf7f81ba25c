import { afterEach, describe, expect, it } from "vitest";
import {
  FakeClock,
  ScriptedRegistry,
  bearerChallenge,
  createMemoryRegistry,
  memoryRegistryRoutes,
  sendError,
  sendJson,
  type ScriptedRequest,
} from "../../../test/support/scripted-registry.js";
import { MemoryLogger } from "../../log.js";
import { parseDigest, parseRepositoryPath, parseTag, type RegistryHost } from "../../reference/index.js";
import type { Credential, CredentialSource } from "../credentials/types.js";
import { RegistryError } from "../errors.js";
import { createStoreProvider, type StoreProviderOptions } from "../provider.js";

const SECRET = "s3cr3t-Pa55word-that-must-never-leak";
const TOKEN_PREFIX = "tok-";

function staticCredentials(entries: Record<string, Credential>): CredentialSource {
  return {
    lookup: (registry: RegistryHost) => Promise.resolve(entries[registry]),
    describe: () => ["the test's credential table"],
  };
}

interface TokenServerState {
  issued: number;
  expiresIn?: number;
  requests: ScriptedRequest[];
}

/** A registry on `scripted` that wants Bearer tokens from a token endpoint on `auth`. */
function tokenProtectedRegistry(
  scripted: ScriptedRegistry,
  authServer: ScriptedRegistry,
  state: TokenServerState,
) {
  const memory = createMemoryRegistry();
  const valid = new Map<string, string[]>();
  authServer.on("GET", "/token", (request, response) => {
    state.requests.push(request);
    const header = request.headers.authorization ?? "";
    const expected = `Basic ${Buffer.from(`alice:${SECRET}`).toString("base64")}`;
    if (header !== expected) {
      sendError(response, 401, "UNAUTHORIZED", "bad credentials");
      return;
    }
    state.issued += 1;
    const token = `${TOKEN_PREFIX}${state.issued}`;
    valid.set(token, request.url.searchParams.getAll("scope"));
    sendJson(response, 200, {
      token,
      ...(state.expiresIn === undefined ? {} : { expires_in: state.expiresIn }),
    });
  });
  memoryRegistryRoutes(scripted, memory, (request, response) => {
    const token = /^Bearer (.+)$/.exec(request.headers.authorization ?? "")?.[1];
    const name = /^\/v2\/(.+?)\/(?:manifests|blobs|tags)\//.exec(request.path)?.[1] ?? "";
    const needs = request.method === "GET" || request.method === "HEAD" ? "pull" : "push";
    const granted = token === undefined ? undefined : valid.get(token);
    const ok = granted?.some((scope) => scope.startsWith(`repository:${name}:`) && scope.includes(needs));
    if (ok) return false;
    sendError(response, 401, "UNAUTHORIZED", "authentication required", {
      "www-authenticate": bearerChallenge(
        `${authServer.url}/token`,
        "scripted",
        `repository:${name}:${needs}`,
      ),
    });
    return true;
  });
  return { memory, valid };
}

describe("bearer token flow against a scripted registry", () => {
  const servers: ScriptedRegistry[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  async function setUp(options: Partial<StoreProviderOptions> = {}) {
    const registry = await ScriptedRegistry.start();
    const authServer = await ScriptedRegistry.start();
    servers.push(registry, authServer);
    const state: TokenServerState = { issued: 0, requests: [] };
    const { memory } = tokenProtectedRegistry(registry, authServer, state);
    const clock = new FakeClock();
    const logger = new MemoryLogger();
    const provider = createStoreProvider({
      credentialSources: [
        staticCredentials({
          [registry.host]: { kind: "basic", username: "alice", password: SECRET, source: "test" },
        }),
      ],
      clock,
      logger,
      ...options,
    });
    return { registry, authServer, state, memory, clock, logger, provider };
  }

  it("answers 401 with a token for exactly the scopes needed, then caches it", async () => {
    const { registry, state, memory, provider } = await setUp();
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: "application/vnd.oci.image.index.v1+json",
        manifests: [],
      }),
    );
    const repository = memory.repository("team/app");
    const digest = parseDigest(
      `sha256:${(await import("node:crypto")).createHash("sha256").update(manifest).digest("hex")}`,
    );
    repository.manifests.set(digest, {
      bytes: manifest,
      mediaType: "application/vnd.oci.image.index.v1+json",
    });
    repository.tags.set("v1", digest);

    const store = provider.repository(
      { kind: "remote", host: registry.host as RegistryHost, repository: parseRepositoryPath("team/app") },
      "source",
    );
    const content = await store.getManifest(parseTag("v1"));
    expect(content?.digest).toBe(digest);
    expect(Buffer.from(content!.bytes).equals(manifest)).toBe(true);
    expect(state.requests).toHaveLength(1);
    expect(state.requests[0]!.url.searchParams.getAll("scope")).toEqual(["repository:team/app:pull"]);
    expect(state.requests[0]!.url.searchParams.get("service")).toBe("scripted");

    // The second read uses the cached token: no token request, no 401.
    await store.resolve(parseTag("v1"));
    expect(state.requests).toHaveLength(1);
    const manifestRequests = registry.requestsTo("/v2/team/app/manifests/v1");
    expect(manifestRequests.map((request) => request.headers.authorization ?? "none")).toEqual([
      "none",
      `Bearer ${TOKEN_PREFIX}1`,
      `Bearer ${TOKEN_PREFIX}1`,
    ]);
    expect(provider.requestCounts().get(registry.host)?.byMethod).toEqual({ GET: 2, HEAD: 1 });
  });

  it("fetches a new token when the cached one expires", async () => {
    const { registry, state, memory, provider, clock } = await setUp();
    memory.repository("app");
    const store = provider.repository(
      { kind: "remote", host: registry.host as RegistryHost, repository: parseRepositoryPath("app") },
      "source",
    );
    state.expiresIn = 120;
    expect(await store.listTags()).toEqual([]);
    expect(state.issued).toBe(1);
    clock.advance(60_000);
    await store.listTags();
    expect(state.issued).toBe(1);
    // 120 s lifetime minus the 30 s margin: at 95 s the token is no longer used.
    clock.advance(35_000);
    await store.listTags();
    expect(state.issued).toBe(2);
    const authorizations = registry
      .requestsTo("/v2/app/tags/list")
      .map((r) => r.headers.authorization ?? "none");
    expect(authorizations.at(-1)).toBe(`Bearer ${TOKEN_PREFIX}2`);
  });

  it("asks for pull,push to write and adds pull on the source repository for a mount", async () => {
    const { registry, state, memory, provider } = await setUp();
    const blob = Buffer.from("layer bytes");
    const digest = parseDigest(
      `sha256:${(await import("node:crypto")).createHash("sha256").update(blob).digest("hex")}`,
    );
    memory.repository("from/repo").blobs.set(digest, blob);
    const target = provider.repository(
      { kind: "remote", host: registry.host as RegistryHost, repository: parseRepositoryPath("to/repo") },
      "destination",
    );
    expect(
      await target.mountBlob(
        { mediaType: "application/octet-stream", digest, size: blob.length },
        parseRepositoryPath("from/repo"),
      ),
    ).toBe(true);
    const scopes = state.requests.map((request) => request.url.searchParams.getAll("scope"));
    expect(scopes.at(-1)).toEqual(["repository:from/repo:pull", "repository:to/repo:pull,push"]);
    expect(memory.repository("to/repo").blobs.get(digest)?.equals(blob)).toBe(true);
  });

  it("names the registry and the places looked in when there are no credentials, without secrets", async () => {
    const { registry, provider } = await setUp({
      credentialSources: [staticCredentials({})],
    });
    const store = provider.repository(
      { kind: "remote", host: registry.host as RegistryHost, repository: parseRepositoryPath("app") },
      "source",
    );
    const error = await store.listTags().catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RegistryError);
    const registryError = error as RegistryError;
    expect(registryError.code).toBe("registry-auth");
    expect(registryError.message).toContain(registry.host);
    expect(registryError.message).toContain("the test's credential table");
    expect(registryError.message).toContain("token endpoint refused anonymous access");
  });

  it("refuses wrong credentials with registry-auth and never shows the password", async () => {
    const wrong = "wr0ng-Secret-value-9876";
    const registry = await ScriptedRegistry.start();
    const authServer = await ScriptedRegistry.start();
    servers.push(registry, authServer);
    tokenProtectedRegistry(registry, authServer, { issued: 0, requests: [] });
    const logger = new MemoryLogger();
    const provider = createStoreProvider({
      credentialSources: [
        staticCredentials({
          [registry.host]: { kind: "basic", username: "alice", password: wrong, source: "the CI secret" },
        }),
      ],
      clock: new FakeClock(),
      logger,
    });
    const store = provider.repository(
      { kind: "remote", host: registry.host as RegistryHost, repository: parseRepositoryPath("app") },
      "source",
    );
    const error = await store.listTags().catch((caught: unknown) => caught);
    expect((error as RegistryError).code).toBe("registry-auth");
    expect((error as RegistryError).message).toContain("the credentials from the CI secret");
    const everything = JSON.stringify([String(error), (error as Error).stack, logger.lines]);
    expect(everything).not.toContain(wrong);
    expect(everything).not.toContain(Buffer.from(`alice:${wrong}`).toString("base64"));
  });
});
