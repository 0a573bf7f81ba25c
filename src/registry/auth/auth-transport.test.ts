import { afterEach, describe, expect, it } from "vitest";
import {
  FakeClock,
  ScriptedRegistry,
  bearerChallenge,
  createMemoryRegistry,
  memoryRegistryRoutes,
  selfSignedCertificate,
  sendBytes,
  sendError,
  sendJson,
  sha256,
  type ScriptedRequest,
} from "../../../test/support/scripted-registry.js";
import { MemoryLogger } from "../../log.js";
import { parseDigest, parseRepositoryPath, parseTag, type RegistryHost } from "../../reference/index.js";
import type { Credential, CredentialSource } from "../credentials/types.js";
import { RegistryError } from "../errors.js";
import { createStoreProvider, type StoreProviderOptions } from "../provider.js";
import { Redactor } from "../redact.js";
import { SecurityPolicy } from "../transport/security-policy.js";
import { UndiciTransport } from "../transport/undici-transport.js";
import { AuthTransport } from "./auth-transport.js";

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

    const store = provider.repository({
      kind: "remote",
      host: registry.host as RegistryHost,
      repository: parseRepositoryPath("team/app"),
    });
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
    const store = provider.repository({
      kind: "remote",
      host: registry.host as RegistryHost,
      repository: parseRepositoryPath("app"),
    });
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
    const target = provider.repository({
      kind: "remote",
      host: registry.host as RegistryHost,
      repository: parseRepositoryPath("to/repo"),
    });
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
    const store = provider.repository({
      kind: "remote",
      host: registry.host as RegistryHost,
      repository: parseRepositoryPath("app"),
    });
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
    const store = provider.repository({
      kind: "remote",
      host: registry.host as RegistryHost,
      repository: parseRepositoryPath("app"),
    });
    const error = await store.listTags().catch((caught: unknown) => caught);
    expect((error as RegistryError).code).toBe("registry-auth");
    expect((error as RegistryError).message).toContain("the credentials from the CI secret");
    const everything = JSON.stringify([String(error), (error as Error).stack, logger.lines]);
    expect(everything).not.toContain(wrong);
    expect(everything).not.toContain(Buffer.from(`alice:${wrong}`).toString("base64"));
  });
});

describe("other auth schemes and refreshed tokens", () => {
  const servers: ScriptedRegistry[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  async function start(count: number): Promise<ScriptedRegistry[]> {
    const started = await Promise.all(Array.from({ length: count }, () => ScriptedRegistry.start()));
    servers.push(...started);
    return started;
  }

  it("answers a Basic challenge and then authorises up front", async () => {
    const [registry] = await start(1);
    const expected = `Basic ${Buffer.from(`alice:${SECRET}`).toString("base64")}`;
    registry!.on("GET", "/v2/app/tags/list", (request, response) => {
      if (request.headers.authorization !== expected) {
        sendError(response, 401, "UNAUTHORIZED", "login", { "www-authenticate": 'Basic realm="Registry"' });
      } else {
        sendJson(response, 200, { name: "app", tags: ["v1"] });
      }
    });
    const provider = createStoreProvider({
      credentialSources: [
        staticCredentials({
          [registry!.host]: { kind: "basic", username: "alice", password: SECRET, source: "t" },
        }),
      ],
    });
    const store = provider.repository({
      kind: "remote",
      host: registry!.host as RegistryHost,
      repository: parseRepositoryPath("app"),
    });
    expect(await store.listTags()).toEqual(["v1"]);
    expect(await store.listTags()).toEqual(["v1"]);
    expect(registry!.requests.map((request) => request.headers.authorization ?? "none")).toEqual([
      "none",
      expected,
      expected,
    ]);
    await provider.close();
  });

  it("exchanges an identity token with an OAuth2 refresh-token POST, keeping the rotated refresh token", async () => {
    const [registry, authServer] = await start(2);
    const posts: URLSearchParams[] = [];
    let issued = 0;
    authServer!.on("POST", "/oauth", (request, response) => {
      const form = new URLSearchParams(request.body.toString());
      posts.push(form);
      issued += 1;
      sendJson(response, 200, {
        access_token: `access-${issued}`,
        refresh_token: `refresh-${issued}`,
        expires_in: 60,
      });
    });
    registry!.on("GET", "/v2/app/tags/list", (request, response) => {
      if (!request.headers.authorization?.startsWith("Bearer access-")) {
        sendError(response, 401, "UNAUTHORIZED", "token", {
          "www-authenticate": bearerChallenge(`${authServer!.url}/oauth`, "svc"),
        });
      } else {
        sendJson(response, 200, { name: "app", tags: [] });
      }
    });
    const clock = new FakeClock();
    const provider = createStoreProvider({
      clock,
      credentialSources: [
        staticCredentials({
          [registry!.host]: {
            kind: "identity-token",
            username: "<token>",
            identityToken: "refresh-0",
            source: "t",
          },
        }),
      ],
    });
    const store = provider.repository({
      kind: "remote",
      host: registry!.host as RegistryHost,
      repository: parseRepositoryPath("app"),
    });
    await store.listTags();
    clock.advance(120_000);
    await store.listTags();
    expect(posts.map((form) => Object.fromEntries(form))).toEqual([
      {
        grant_type: "refresh_token",
        client_id: "image-promoter",
        refresh_token: "refresh-0",
        service: "svc",
        scope: "repository:app:pull",
      },
      {
        grant_type: "refresh_token",
        client_id: "image-promoter",
        refresh_token: "refresh-1",
        service: "svc",
        scope: "repository:app:pull",
      },
    ]);
    await provider.close();
  });

  it("retries once with a fresh token when the registry refuses a cached one", async () => {
    const [registry, authServer] = await start(2);
    let issued = 0;
    let revokedBelow = 0;
    authServer!.on("GET", "/token", (_request, response) => {
      issued += 1;
      sendJson(response, 200, { token: `t${issued}`, expires_in: 300 });
    });
    registry!.on("GET", "/v2/app/tags/list", (request, response) => {
      const number = Number(/^Bearer t(\d+)$/.exec(request.headers.authorization ?? "")?.[1] ?? 0);
      if (number === 0 || number <= revokedBelow) {
        sendError(response, 401, "UNAUTHORIZED", "token", {
          "www-authenticate": bearerChallenge(`${authServer!.url}/token`, "svc"),
        });
      } else {
        sendJson(response, 200, { name: "app", tags: [] });
      }
    });
    const provider = createStoreProvider({ credentialSources: [], clock: new FakeClock() });
    const store = provider.repository({
      kind: "remote",
      host: registry!.host as RegistryHost,
      repository: parseRepositoryPath("app"),
    });
    await store.listTags();
    revokedBelow = 1;
    await store.listTags();
    expect(issued).toBe(2);
    expect(registry!.requests.map((request) => request.headers.authorization ?? "none")).toEqual([
      "none",
      "Bearer t1",
      "Bearer t1",
      "Bearer t2",
    ]);
    // Refused again after the fresh token: an error, not a loop.
    revokedBelow = 100;
    const error = await store.listTags().catch((caught: unknown) => caught);
    expect((error as RegistryError).code).toBe("registry-auth");
    expect(registry!.requests).toHaveLength(6);
    await provider.close();
  });
});

describe("tokens bound to the registry origin", () => {
  const servers: ScriptedRegistry[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  /** Two registries whose 401s name one realm; it mints `token-<n>` and rotates to `rotated-<n>`. */
  async function twoRegistriesOneRealm() {
    const [first, second, realm] = await Promise.all([
      ScriptedRegistry.start(),
      ScriptedRegistry.start(),
      ScriptedRegistry.start(),
    ]);
    servers.push(first, second, realm);
    const minted: { form: Record<string, string>; authorization?: string }[] = [];
    realm.on(undefined, "/token", (request, response) => {
      const form = Object.fromEntries(new URLSearchParams(request.body.toString()));
      minted.push({
        form,
        ...(request.headers.authorization === undefined
          ? {}
          : { authorization: request.headers.authorization }),
      });
      sendJson(response, 200, {
        token: `token-${minted.length}`,
        ...(form.refresh_token === undefined ? {} : { refresh_token: `rotated-${minted.length}` }),
        expires_in: 300,
      });
    });
    for (const registry of [first, second]) {
      registry.on("GET", "/v2/app/tags/list", (request, response) => {
        if (request.headers.authorization === undefined) {
          sendError(response, 401, "UNAUTHORIZED", "token", {
            // The challenge asks for more than the request needs: it is not added.
            "www-authenticate": bearerChallenge(
              `${realm.url}/token`,
              "svc",
              "repository:app:pull,push,delete",
            ),
          });
        } else {
          sendJson(response, 200, { name: "app", tags: [] });
        }
      });
    }
    return { first: first, second: second, minted };
  }

  function storeOf(provider: ReturnType<typeof createStoreProvider>, registry: ScriptedRegistry) {
    return provider.repository({
      kind: "remote",
      host: registry.host as RegistryHost,
      repository: parseRepositoryPath("app"),
    });
  }

  it("never hands one registry a token cached for another, even with the same realm, service and user", async () => {
    const { first, second, minted } = await twoRegistriesOneRealm();
    const provider = createStoreProvider({
      clock: new FakeClock(),
      credentialSources: [
        staticCredentials({
          [first.host]: { kind: "basic", username: "robot", password: "first-password", source: "t" },
          [second.host]: { kind: "basic", username: "robot", password: "second-password", source: "t" },
        }),
      ],
    });
    await storeOf(provider, first).listTags();
    await storeOf(provider, second).listTags();
    await storeOf(provider, first).listTags();
    expect(minted).toHaveLength(2);
    expect(first.requests.map((request) => request.headers.authorization ?? "none")).toEqual([
      "none",
      "Bearer token-1",
      "Bearer token-1",
    ]);
    expect(second.requests.map((request) => request.headers.authorization ?? "none")).toEqual([
      "none",
      "Bearer token-2",
    ]);
    await provider.close();
  });

  it("sends a rotated refresh token back only for the registry it was rotated for", async () => {
    const { first, second, minted } = await twoRegistriesOneRealm();
    const clock = new FakeClock();
    const identity = (identityToken: string): Credential => ({
      kind: "identity-token",
      username: "<token>",
      identityToken,
      source: "one config.json",
    });
    const provider = createStoreProvider({
      clock,
      credentialSources: [
        staticCredentials({
          [first.host]: identity("first-identity"),
          [second.host]: identity("second-identity"),
        }),
      ],
    });
    await storeOf(provider, first).listTags();
    await storeOf(provider, second).listTags();
    clock.advance(600_000);
    await storeOf(provider, second).listTags();
    await storeOf(provider, first).listTags();
    expect(minted.map((entry) => entry.form.refresh_token)).toEqual([
      "first-identity",
      "second-identity",
      "rotated-2",
      "rotated-1",
    ]);
    // Exactly the scopes the requests need, whatever the challenge asked for.
    expect(new Set(minted.map((entry) => entry.form.scope))).toEqual(new Set(["repository:app:pull"]));
    await provider.close();
  });
});

describe("token realm policy", () => {
  const servers: ScriptedRegistry[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  /**
   * A registry named `registry.test` (reached on 127.0.0.1 through a pinned address, over plain
   * HTTP because it is named insecure) whose name resolves, for the address check, to a public
   * address: it is "not internal", so a realm on 127.0.0.1 or 169.254.169.254 must be refused.
   */
  async function setUp(realm: (authServer: ScriptedRegistry) => string) {
    const registry = await ScriptedRegistry.start();
    const authServer = await ScriptedRegistry.start();
    servers.push(registry, authServer);
    authServer.on("GET", "/token", (_request, response) => {
      sendJson(response, 200, { token: "leaked?" });
    });
    registry.on("GET", /.*/, (_request, response) => {
      sendError(response, 401, "UNAUTHORIZED", "token", {
        "www-authenticate": bearerChallenge(realm(authServer), "svc"),
      });
    });
    const network = new UndiciTransport({
      policy: new SecurityPolicy([`registry.test:${registry.port}`]),
      hostAddresses: new Map([["registry.test", "127.0.0.1"]]),
    });
    const transport = new AuthTransport(network, {
      credentials: {
        lookup: () => Promise.resolve({ kind: "basic", username: "alice", password: SECRET, source: "t" }),
        places: () => [],
      },
      policy: new SecurityPolicy([`registry.test:${registry.port}`]),
      resolveHost: (hostname) =>
        Promise.resolve(
          hostname === "registry.test"
            ? ["203.0.113.10"]
            : hostname === "metadata.test"
              ? ["169.254.169.254"]
              : [hostname],
        ),
      clock: new FakeClock(),
      logger: new MemoryLogger(),
      redactor: new Redactor(),
    });
    const origin = `http://registry.test:${registry.port}`;
    const send = () =>
      transport.send({
        method: "GET",
        url: new URL("/v2/app/tags/list", origin),
        context: { operation: "list tags", registry: "registry.test" },
        auth: {
          registry: `registry.test:${registry.port}` as RegistryHost,
          origin,
          scopes: ["repository:app:pull"],
        },
      });
    return { authServer, send, network };
  }

  it("refuses a realm on a loopback or link-local address while the registry is public", async () => {
    for (const realm of [
      (auth: ScriptedRegistry) => `${auth.url}/token`,
      () => "https://metadata.test/computeMetadata/v1/token",
    ]) {
      const { authServer, send, network } = await setUp(realm);
      const error = await send().catch((caught: unknown) => caught);
      expect((error as RegistryError).code).toBe("registry-insecure");
      expect((error as RegistryError).message).toContain("loopback, private or link-local");
      expect(authServer.requests).toHaveLength(0);
      await network.close();
    }
  });
});

describe("token realm of an https registry", () => {
  it("must be https", async () => {
    const tls = await selfSignedCertificate(["registry.test"]);
    const registry = await ScriptedRegistry.start({ tls });
    const authServer = await ScriptedRegistry.start();
    authServer.on("GET", "/token", (_request, response) => {
      sendJson(response, 200, { token: "t" });
    });
    registry.on("GET", /.*/, (_request, response) => {
      sendError(response, 401, "UNAUTHORIZED", "token", {
        "www-authenticate": bearerChallenge(`${authServer.url}/token`, "svc"),
      });
    });
    const provider = createStoreProvider({
      caCertificates: tls.cert,
      hostAddresses: { "registry.test": "127.0.0.1" },
      credentialSources: [],
    });
    try {
      const store = provider.repository({
        kind: "remote",
        host: `registry.test:${registry.port}` as RegistryHost,
        repository: parseRepositoryPath("app"),
      });
      const error = await store.listTags().catch((caught: unknown) => caught);
      expect((error as RegistryError).code).toBe("registry-insecure");
      expect((error as RegistryError).message).toContain("must use an https token realm");
      expect(registry.requests).toHaveLength(1);
      expect(authServer.requests).toHaveLength(0);
    } finally {
      await provider.close();
      await registry.stop();
      await authServer.stop();
    }
  });
});

describe("credentials and other origins", () => {
  it("sends credentials to the registry only, never to a storage origin it redirects to, and redacts echoes", async () => {
    const registry = await ScriptedRegistry.start();
    const storage = await ScriptedRegistry.start();
    const expected = `Basic ${Buffer.from(`alice:${SECRET}`).toString("base64")}`;
    const blob = Buffer.from("blob bytes");
    const digest = parseDigest(sha256(blob));
    registry.on(undefined, /.*/, (request, response) => {
      if (request.headers.authorization !== expected) {
        sendError(response, 401, "UNAUTHORIZED", "login", { "www-authenticate": 'Basic realm="r"' });
      } else if (request.path.endsWith(`/blobs/${digest}`)) {
        response.writeHead(307, { location: `${storage.url}/store/blob?X-Amz-Signature=sig-0123456789` });
        response.end();
      } else {
        // A registry that echoes what it received into its error message.
        sendError(response, 400, "BAD", `you sent ${request.headers.authorization ?? ""} and ${SECRET}`);
      }
    });
    storage.on("GET", "/store/blob", (_request, response) => {
      sendBytes(response, 200, blob);
    });
    const logger = new MemoryLogger();
    const provider = createStoreProvider({
      logger,
      credentialSources: [
        staticCredentials({
          [registry.host]: { kind: "basic", username: "alice", password: SECRET, source: "t" },
        }),
      ],
    });
    try {
      const store = provider.repository({
        kind: "remote",
        host: registry.host as RegistryHost,
        repository: parseRepositoryPath("app"),
      });
      const stream = await store.openBlob({
        mediaType: "application/octet-stream",
        digest,
        size: blob.length,
      });
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).equals(blob)).toBe(true);
      expect(storage.requests).toHaveLength(1);
      expect(storage.requests[0]?.headers.authorization).toBeUndefined();

      const error = await store.listTags().catch((caught: unknown) => caught);
      expect((error as RegistryError).code).toBe("registry-http");
      const everything = JSON.stringify([String(error), logger.lines]);
      expect(everything).toContain("you sent");
      expect(everything).not.toContain(SECRET);
      expect(everything).not.toContain(expected.slice("Basic ".length));
      expect(everything).not.toContain("sig-0123456789");
    } finally {
      await provider.close();
      await registry.stop();
      await storage.stop();
    }
  });
});

describe("a short-lived credential refused before its time", () => {
  const servers: ScriptedRegistry[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.stop()));
  });

  /**
   * A registry whose token endpoint takes only passwords in `alive`, and a credential source
   * that mints `gen-N` passwords (as Google's Application Default Credentials mint access tokens).
   */
  async function setUp(renewable: boolean) {
    const registry = await ScriptedRegistry.start();
    const authServer = await ScriptedRegistry.start();
    servers.push(registry, authServer);
    const alive = new Set<string>();
    const shown: string[] = [];
    let minted = 0;
    const memory = createMemoryRegistry();
    memory.repository("app");
    memory.repository("other");
    authServer.on("GET", "/token", (request, response) => {
      const decoded = Buffer.from(
        (request.headers.authorization ?? "").replace(/^Basic /, ""),
        "base64",
      ).toString();
      const password = decoded.slice(decoded.indexOf(":") + 1);
      shown.push(password);
      if (!alive.has(password)) {
        sendError(response, 401, "UNAUTHORIZED", "token expired");
        return;
      }
      sendJson(response, 200, {
        token: `${TOKEN_PREFIX}${request.url.searchParams.getAll("scope").join(",")}`,
      });
    });
    memoryRegistryRoutes(registry, memory, (request, response) => {
      const name = /^\/v2\/(.+?)\/tags\//.exec(request.path)?.[1] ?? "";
      if (request.headers.authorization === `Bearer ${TOKEN_PREFIX}repository:${name}:pull`) return false;
      sendError(response, 401, "UNAUTHORIZED", "authentication required", {
        "www-authenticate": bearerChallenge(`${authServer.url}/token`, "scripted", `repository:${name}:pull`),
      });
      return true;
    });
    let current: Credential | undefined;
    const source: CredentialSource = {
      // The same credential for every repository until a fresh one is asked for.
      lookup: (_registry, _repository, options) => {
        if (current === undefined || options?.fresh === true) {
          minted += 1;
          const password = `gen-${minted}`;
          alive.add(password);
          current = {
            kind: "basic",
            username: "oauth2accesstoken",
            password,
            source: "the test's minting source",
            ...(renewable ? { renewAfter: Number.MAX_SAFE_INTEGER } : {}),
          };
        }
        return Promise.resolve(current);
      },
      describe: () => ["the test's minting source"],
    };
    const provider = createStoreProvider({ credentialSources: [source], clock: new FakeClock() });
    const store = (name: string) =>
      provider.repository({
        kind: "remote",
        host: registry.host as RegistryHost,
        repository: parseRepositoryPath(name),
      });
    return { alive, shown, store };
  }

  it("is renewed once and the request sent again", async () => {
    const { alive, shown, store } = await setUp(true);
    expect(await store("app").listTags()).toEqual([]);
    expect(shown).toEqual(["gen-1"]);
    alive.delete("gen-1");
    expect(await store("other").listTags()).toEqual([]);
    expect(shown).toEqual(["gen-1", "gen-1", "gen-2"]);
  });

  it("a credential that is not short-lived is not asked for again: the refusal stands", async () => {
    const { alive, shown, store } = await setUp(false);
    expect(await store("app").listTags()).toEqual([]);
    alive.delete("gen-1");
    const error = (await store("other")
      .listTags()
      .catch((caught: unknown) => caught)) as RegistryError;
    expect(error.code).toBe("registry-auth");
    expect(shown).toEqual(["gen-1", "gen-1"]);
  });
});
