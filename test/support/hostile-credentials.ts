/**
 * Hostile peers and a CLI runner for the credential tests (test/hostile/credentials.test.ts):
 * registries that run their own token realm (or name someone else's) and record every secret
 * they are handed, and docker credential helper scripts that write down what they were given.
 * Everything listens on 127.0.0.1.
 */
import { chmod, writeFile } from "node:fs/promises";
import type { ServerResponse } from "node:http";
import * as path from "node:path";
import {
  ScriptedRegistry,
  bearerChallenge,
  createMemoryRegistry,
  memoryRegistryRoutes,
  sendError,
  sendJson,
  type MemoryRegistry,
  type ScriptedRequest,
} from "./scripted-registry.js";
import { allBlobs, allManifests, type TestContent } from "./test-images.js";

/** Polls `condition` every 20 ms until it holds or `timeoutMs` passes; says which. */
export async function eventually(condition: () => boolean, timeoutMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return true;
}

export interface HostileChallenge {
  readonly realm: string;
  readonly service: string;
  readonly scope?: string;
}

export interface HostileRegistryOptions {
  /** Its name in the tokens it mints (`<name>-access-1`, `<name>-refresh-1`). */
  readonly name: string;
  /**
   * The challenge to answer `request` with, or undefined to serve it. Default: requests without
   * an Authorization header are challenged with its own realm. A hostile registry may name
   * another registry's realm to have the client fetch that registry's tokens for it.
   */
  readonly challenge?: (request: ScriptedRequest, own: HostileChallenge) => HostileChallenge | undefined;
  /** Answers a request to its realm itself when it returns true (a redirect, a bad token). */
  readonly answerTokenRequest?: (request: ScriptedRequest, response: ServerResponse) => boolean;
  /** Awaited before the first 401 is answered (to let the client do something else first). */
  readonly beforeFirstChallenge?: () => Promise<void>;
}

/**
 * A registry that serves an in-memory store to any Bearer token and answers requests without
 * one with a 401 naming a realm; its own realm (`/token`) mints tokens for anyone and rotates
 * refresh tokens, as OAuth2 servers may. It records every Authorization header and every refresh
 * token it is sent: what a compromised registry collects.
 */
export class HostileRegistry {
  /** Authorization headers of registry API requests (`/v2/...`). */
  readonly authorizations: string[] = [];
  /** `refresh_token` values posted to its realm. */
  readonly refreshTokens: string[] = [];
  /** Authorization headers sent to its realm. */
  readonly realmAuthorizations: string[] = [];
  /** The refresh tokens it minted, in order. */
  readonly mintedRefreshTokens: string[] = [];
  private minted = 0;
  private challenged = false;

  private constructor(
    readonly server: ScriptedRegistry,
    readonly memory: MemoryRegistry,
    private readonly options: HostileRegistryOptions,
  ) {}

  static async start(options: HostileRegistryOptions): Promise<HostileRegistry> {
    const server = await ScriptedRegistry.start();
    const registry = new HostileRegistry(server, createMemoryRegistry(), options);
    registry.install();
    return registry;
  }

  /** `127.0.0.1:PORT`. */
  get host(): string {
    return this.server.host;
  }

  get realm(): string {
    return `${this.server.url}/token`;
  }

  /** Stores `content` under `repository` with `tags`, as if it had been pushed. */
  seed(repository: string, content: TestContent, tags: readonly string[] = []): void {
    const stored = this.memory.repository(repository);
    for (const blob of allBlobs(content)) stored.blobs.set(blob.descriptor.digest, blob.bytes);
    for (const manifest of allManifests(content)) {
      stored.manifests.set(manifest.digest, { bytes: manifest.bytes, mediaType: manifest.mediaType });
    }
    for (const tag of tags) stored.tags.set(tag, content.digest);
  }

  stop(): Promise<void> {
    return this.server.stop();
  }

  private install(): void {
    this.server.on(undefined, "/token", (request, response) => {
      this.token(request, response);
    });
    this.server.on(undefined, "/v2/", (request, response) => {
      this.guard(request, response);
    });
    memoryRegistryRoutes(this.server, this.memory, (request, response) => this.guard(request, response));
  }

  /**
   * Records the request's Authorization and answers with a 401 when `challenge` says so (by
   * default: when there is none); returns whether it answered.
   */
  private guard(request: ScriptedRequest, response: ServerResponse): boolean {
    const authorization = request.headers.authorization;
    if (authorization !== undefined) this.authorizations.push(authorization);
    const name = /^\/v2\/(.+?)\/(?:manifests|blobs|tags|referrers)\//.exec(request.path)?.[1];
    const own: HostileChallenge = {
      realm: this.realm,
      service: this.options.name,
      ...(name === undefined ? {} : { scope: `repository:${name}:pull` }),
    };
    const challenge = this.options.challenge
      ? this.options.challenge(request, own)
      : authorization === undefined
        ? own
        : undefined;
    if (challenge === undefined) {
      if (request.path !== "/v2/") return false;
      sendJson(response, 200, {});
      return true;
    }
    const answer = () => {
      sendError(response, 401, "UNAUTHORIZED", "authentication required", {
        "www-authenticate": bearerChallenge(challenge.realm, challenge.service, challenge.scope),
      });
    };
    if (this.challenged) {
      answer();
    } else {
      this.challenged = true;
      void (this.options.beforeFirstChallenge?.() ?? Promise.resolve()).then(answer);
    }
    return true;
  }

  private token(request: ScriptedRequest, response: ServerResponse): void {
    if (request.headers.authorization !== undefined)
      this.realmAuthorizations.push(request.headers.authorization);
    if (this.options.answerTokenRequest?.(request, response)) return;
    this.minted += 1;
    const accessToken = `${this.options.name}-access-${this.minted}`;
    if (request.method === "POST") {
      const form = new URLSearchParams(request.body.toString("utf8"));
      const refreshToken = form.get("refresh_token");
      if (refreshToken !== null) this.refreshTokens.push(refreshToken);
      // Rotates the refresh token on every exchange, as OAuth2 servers may (RFC 6749 section 6).
      const rotated = `${this.options.name}-refresh-${this.minted}`;
      this.mintedRefreshTokens.push(rotated);
      sendJson(response, 200, { access_token: accessToken, refresh_token: rotated, expires_in: 300 });
      return;
    }
    sendJson(response, 200, { token: accessToken, expires_in: 300 });
  }
}

/**
 * Writes `docker-credential-<name>` into `directory`: a shell script that writes its whole
 * environment to `<directory>/<name>.env` and answers with `username`/`secret`.
 */
export async function writeEnvironmentDumpingHelper(
  directory: string,
  name: string,
  answer: { readonly username: string; readonly secret: string },
): Promise<{ readonly program: string; readonly dump: string }> {
  const program = path.join(directory, `docker-credential-${name}`);
  const dump = path.join(directory, `${name}.env`);
  const script = [
    "#!/bin/sh",
    `env > '${dump}'`,
    "cat > /dev/null",
    `printf '%s' '${JSON.stringify({ ServerURL: "", Username: answer.username, Secret: answer.secret })}'`,
    "",
  ].join("\n");
  await writeFile(program, script);
  await chmod(program, 0o755);
  return { program, dump };
}
