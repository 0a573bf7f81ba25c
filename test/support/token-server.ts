/**
 * A small token server for tests: it signs the JWTs a distribution registry configured with
 * `auth.token` trusts, and records every request so tests can assert exact scopes.
 *
 * Protocols:
 * - GET with optional basic credentials and `scope` query parameters (Docker token spec)
 *   https://distribution.github.io/distribution/spec/auth/token/
 * - POST form (OAuth2 password and refresh_token grants)
 *   https://distribution.github.io/distribution/spec/auth/oauth/
 * - JWT layout distribution 2.8 verifies: ES256, certificate chain in the `x5c` header checked
 *   against `rootcertbundle`, claims iss/aud/exp/nbf/iat/jti/sub/access.
 *   https://distribution.github.io/distribution/spec/auth/jwt/
 */
import { execFile } from "node:child_process";
import { createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import * as path from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** Distribution 2.8 accepts a token for this long after its `exp` (clock-skew leeway). */
export const REGISTRY_TOKEN_LEEWAY_SECONDS = 60;
/** The largest request body the token server reads (a form of credentials and scopes). */
const MAX_TOKEN_REQUEST_BYTES = 64 * 1024;

export type TokenAction = "pull" | "push" | "delete" | "*";

/**
 * What a user may do. `name` matches a repository (or `catalog` for type `registry`) exactly,
 * or by prefix when it ends with `*` (`*` alone matches everything).
 */
export interface AccessRule {
  readonly type?: "repository" | "registry";
  readonly name: string;
  readonly actions: readonly TokenAction[];
}

/**
 * Shortcuts: `pull` may only pull everything; `push` may pull and push everything; `all` may
 * also delete and list the catalog (the default).
 */
export type UserAccess = "pull" | "push" | "all" | readonly AccessRule[];

export interface TestUser {
  readonly username: string;
  readonly password: string;
  /**
   * Token auth only: decides each time whether a password is good, instead of `password` (a
   * Google access token as `oauth2accesstoken`'s password is good until it expires).
   */
  readonly acceptsPassword?: (password: string) => boolean;
  readonly access?: UserAccess;
}

/** One entry of a token's `access` claim. */
export interface GrantedAccess {
  readonly type: string;
  readonly name: string;
  readonly actions: string[];
}

export interface TokenRequestRecord {
  readonly method: "GET" | "POST";
  readonly grantType: "basic" | "anonymous" | "password" | "refresh_token";
  readonly username?: string;
  readonly service?: string;
  /** The scopes as asked for, verbatim (`repository:foo:pull,push`). */
  readonly scopes: readonly string[];
  readonly granted: readonly GrantedAccess[];
  /** HTTP status the server answered with. */
  readonly status: number;
  readonly offline: boolean;
}

export interface TokenServerOptions {
  readonly users?: readonly TestUser[];
  /** What requests without credentials get: pull on everything (default) or nothing (401). */
  readonly anonymous?: "pull" | "none";
  /** The `expires_in` announced and the token lifetime (seconds); default 300. */
  readonly expiresInSeconds?: number;
  /**
   * Sets the JWT `exp` so that distribution (which adds a 60 s leeway) refuses the token right
   * when `expires_in` says it expires; for expiry tests. Default false.
   */
  readonly compensateRegistryLeeway?: boolean;
  /** Folder holding (or to receive) `token-key.pem` and `token-cert.pem`. */
  readonly directory: string;
  readonly service: string;
  readonly issuer?: string;
}

export interface TestTokenServer {
  /** `http://127.0.0.1:PORT/token`: the registry's `auth.token.realm`. */
  readonly realm: string;
  readonly service: string;
  readonly issuer: string;
  /** The certificate the registry trusts (`auth.token.rootcertbundle`). */
  readonly certificatePath: string;
  /** Every request so far, in order. */
  readonly requests: readonly TokenRequestRecord[];
  /** Number of requests so far. */
  requestCount(): number;
  /** Forgets recorded requests (between test cases). */
  resetRequests(): void;
  /** Signs a token directly, for tests of expired or foreign tokens. */
  issueToken(subject: string, access: readonly GrantedAccess[], lifetimeSeconds?: number): string;
  stop(): Promise<void>;
}

/** Creates an EC P-256 key and a self-signed certificate with the openssl CLI. */
export async function generateTokenSigningCertificate(
  directory: string,
  commonName = "image-promoter test token issuer",
): Promise<{ keyPath: string; certificatePath: string }> {
  const keyPath = path.join(directory, "token-key.pem");
  const certificatePath = path.join(directory, "token-cert.pem");
  await execFileAsync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      keyPath,
      "-out",
      certificatePath,
      "-days",
      "2",
      "-subj",
      `/CN=${commonName}`,
    ],
    { timeout: 30_000 },
  );
  return { keyPath, certificatePath };
}

export async function startTokenServer(options: TokenServerOptions): Promise<TestTokenServer> {
  const { keyPath, certificatePath } = await generateTokenSigningCertificate(options.directory);
  const privateKey = createPrivateKey(await readFile(keyPath));
  const certificate = new X509Certificate(await readFile(certificatePath));
  const x5c = [certificate.raw.toString("base64")];
  const issuer = options.issuer ?? "image-promoter-test-issuer";
  const expiresIn = options.expiresInSeconds ?? 300;
  const users = new Map((options.users ?? []).map((user) => [user.username, user]));
  const refreshTokens = new Map<string, string>(); // refresh token -> username
  const requests: TokenRequestRecord[] = [];

  const authenticate = (username: string, password: string): TestUser | undefined => {
    const user = users.get(username);
    if (user?.acceptsPassword !== undefined) return user.acceptsPassword(password) ? user : undefined;
    return user?.password === password ? user : undefined;
  };

  const signer: Signer = { privateKey, x5c, issuer, service: options.service };
  const lifetimeForRegistry = (seconds: number): number =>
    options.compensateRegistryLeeway ? seconds - REGISTRY_TOKEN_LEEWAY_SECONDS : seconds;

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) answer(response, 500, { error: String(error) });
      else response.destroy();
    });
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://127.0.0.1");
    if (url.pathname !== "/token") {
      answer(response, 404, { error: "not found" });
      return;
    }
    if (request.method === "GET") {
      const scopes = url.searchParams.getAll("scope").flatMap((scope) => scope.split(" ").filter(Boolean));
      const service = url.searchParams.get("service") ?? undefined;
      const credentials = parseBasic(request.headers.authorization);
      const offline = url.searchParams.get("offline_token") === "true";
      const record = (status: number, granted: GrantedAccess[], username?: string): void => {
        requests.push({
          method: "GET",
          grantType: credentials ? "basic" : "anonymous",
          ...(username !== undefined ? { username } : {}),
          ...(service !== undefined ? { service } : {}),
          scopes,
          granted,
          status,
          offline,
        });
      };
      if (credentials) {
        const user = authenticate(credentials.username, credentials.password);
        if (!user) {
          record(401, [], credentials.username);
          answer(response, 401, { errors: [{ code: "UNAUTHORIZED", message: "bad credentials" }] });
          return;
        }
        const granted = grant(user.access ?? "all", scopes);
        record(200, granted, user.username);
        const token = signToken(signer, user.username, granted, lifetimeForRegistry(expiresIn));
        const body: Record<string, unknown> = {
          token,
          access_token: token,
          expires_in: expiresIn,
          issued_at: new Date().toISOString(),
        };
        if (offline) body.refresh_token = newRefreshToken(refreshTokens, user.username);
        answer(response, 200, body);
        return;
      }
      if (options.anonymous === "none") {
        record(401, []);
        response.setHeader("WWW-Authenticate", 'Basic realm="test token server"');
        answer(response, 401, { errors: [{ code: "UNAUTHORIZED", message: "credentials required" }] });
        return;
      }
      const granted = grant("pull", scopes);
      record(200, granted);
      const token = signToken(signer, "", granted, lifetimeForRegistry(expiresIn));
      answer(response, 200, {
        token,
        access_token: token,
        expires_in: expiresIn,
        issued_at: new Date().toISOString(),
      });
      return;
    }
    if (request.method === "POST") {
      const form = new URLSearchParams(await readBody(request));
      const grantType = form.get("grant_type");
      if (grantType !== "password" && grantType !== "refresh_token") {
        answer(response, 400, { error: "unsupported_grant_type" });
        return;
      }
      const scopes = (form.get("scope") ?? "").split(" ").filter(Boolean);
      const service = form.get("service") ?? undefined;
      const offline = form.get("access_type") === "offline";
      let username: string | undefined;
      if (grantType === "password") {
        username = authenticate(form.get("username") ?? "", form.get("password") ?? "")?.username;
      } else {
        username = refreshTokens.get(form.get("refresh_token") ?? "");
      }
      const baseRecord: Omit<TokenRequestRecord, "granted" | "status" | "username"> = {
        method: "POST",
        grantType,
        ...(service !== undefined ? { service } : {}),
        scopes,
        offline,
      };
      const user = username === undefined ? undefined : users.get(username);
      if (!user) {
        requests.push({ ...baseRecord, granted: [], status: 401 });
        answer(response, 401, { error: "invalid_grant" });
        return;
      }
      const granted = grant(user.access ?? "all", scopes);
      requests.push({ ...baseRecord, username: user.username, granted, status: 200 });
      const token = signToken(signer, user.username, granted, lifetimeForRegistry(expiresIn));
      const body: Record<string, unknown> = {
        access_token: token,
        expires_in: expiresIn,
        scope: granted.map((entry) => `${entry.type}:${entry.name}:${entry.actions.join(",")}`).join(" "),
        issued_at: new Date().toISOString(),
      };
      // A refresh-token grant returns the same refresh token; a password grant only when offline.
      if (grantType === "refresh_token") body.refresh_token = form.get("refresh_token");
      else if (offline) body.refresh_token = newRefreshToken(refreshTokens, user.username);
      answer(response, 200, body);
      return;
    }
    answer(response, 405, { error: "method not allowed" });
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;

  return {
    realm: `http://127.0.0.1:${port}/token`,
    service: options.service,
    issuer,
    certificatePath,
    requests,
    requestCount: () => requests.length,
    resetRequests: () => {
      requests.length = 0;
    },
    issueToken: (subject, access, lifetimeSeconds = expiresIn) =>
      signToken(signer, subject, [...access], lifetimeSeconds),
    stop: () => closeServer(server),
  };
}

interface Signer {
  readonly privateKey: KeyObject;
  readonly x5c: readonly string[];
  readonly issuer: string;
  readonly service: string;
}

function base64url(data: Buffer | string): string {
  return Buffer.from(data).toString("base64url");
}

/** A compact JWS (ES256) with the claims distribution checks. */
function signToken(
  signer: Signer,
  subject: string,
  access: readonly GrantedAccess[],
  lifetimeSeconds: number,
): string {
  const now = Math.floor(Date.now() / 1000);
  const header = { typ: "JWT", alg: "ES256", x5c: signer.x5c };
  const claims = {
    iss: signer.issuer,
    sub: subject,
    aud: signer.service,
    exp: now + lifetimeSeconds,
    nbf: now - 10,
    iat: now,
    jti: randomBytes(12).toString("hex"),
    access,
  };
  const signingInput = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(claims))}`;
  // JWS ES256 wants the raw r||s signature, not DER.
  const signature = sign("sha256", Buffer.from(signingInput), {
    key: signer.privateKey,
    dsaEncoding: "ieee-p1363",
  });
  return `${signingInput}.${base64url(signature)}`;
}

function newRefreshToken(store: Map<string, string>, username: string): string {
  const token = randomBytes(24).toString("hex");
  store.set(token, username);
  return token;
}

function rulesFor(access: UserAccess): readonly AccessRule[] {
  switch (access) {
    case "pull":
      return [{ name: "*", actions: ["pull"] }];
    case "push":
      return [{ name: "*", actions: ["pull", "push"] }];
    case "all":
      return [
        { name: "*", actions: ["pull", "push", "delete"] },
        { type: "registry", name: "catalog", actions: ["*"] },
      ];
    default:
      return access;
  }
}

function nameMatches(pattern: string, name: string): boolean {
  return pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : pattern === name;
}

/** Parses `type:name:actions`; the name may itself contain a colon (`host:port/...` never does). */
function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const first = scope.indexOf(":");
  const last = scope.lastIndexOf(":");
  if (first < 0 || last === first) return undefined;
  return {
    type: scope.slice(0, first),
    name: scope.slice(first + 1, last),
    actions: scope
      .slice(last + 1)
      .split(",")
      .filter(Boolean),
  };
}

/** Grants, per requested scope, the requested actions the user's rules allow (the spec's subset). */
function grant(access: UserAccess, scopes: readonly string[]): GrantedAccess[] {
  const rules = rulesFor(access);
  const granted: GrantedAccess[] = [];
  for (const scope of scopes) {
    const parsed = parseScope(scope);
    if (!parsed) continue;
    const allowed = new Set<string>();
    for (const rule of rules) {
      if ((rule.type ?? "repository") !== parsed.type || !nameMatches(rule.name, parsed.name)) continue;
      for (const action of parsed.actions) {
        if (rule.actions.includes("*") || rule.actions.includes(action as TokenAction)) allowed.add(action);
      }
    }
    if (allowed.size > 0) {
      const existing = granted.find((entry) => entry.type === parsed.type && entry.name === parsed.name);
      if (existing) {
        for (const action of allowed) if (!existing.actions.includes(action)) existing.actions.push(action);
      } else {
        granted.push({ type: parsed.type, name: parsed.name, actions: [...allowed] });
      }
    }
  }
  return granted;
}

function parseBasic(header: string | undefined): { username: string; password: string } | undefined {
  if (!header?.toLowerCase().startsWith("basic ")) return undefined;
  const decoded = Buffer.from(header.slice(6).trim(), "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  if (colon < 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_TOKEN_REQUEST_BYTES) throw new Error("token request body too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function answer(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
  });
  response.end(text);
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => {
      resolve();
    });
    server.closeAllConnections();
  });
}
