/**
 * Stand-ins for Google's identity services on 127.0.0.1, one server answering as each:
 * - the metadata server (`GCE_METADATA_HOST`): `/computeMetadata/v1/...` with the
 *   `Metadata-Flavor: Google` header both ways; the default service account's email and tokens;
 *   https://cloud.google.com/compute/docs/access/authenticate-workloads#applications
 * - the OAuth token endpoint (a key file's `token_uri`): the JWT-bearer grant, whose assertion
 *   is verified with the key's public half (RS256, iss/aud/scope/exp as Google checks them);
 *   https://developers.google.com/identity/protocols/oauth2/service-account#httprest
 * - the Security Token Service (an external-account file's `token_url`): RFC 8693 token exchange;
 *   https://cloud.google.com/iam/docs/reference/sts/rest/v1/TopLevel/token
 * - IAM Credentials (`generateAccessToken`, `generateIdToken`) with a table of who may
 *   impersonate whom; others get Google's 403 with the missing permission.
 *   https://cloud.google.com/iam/docs/reference/credentials/rest
 * Every access token is random and belongs to one principal, and is good (`isValid`) until the
 * test expires it (`expireIssued`: a token revoked or run out before the promoter expected).
 */
import { generateKeyPairSync, randomBytes, verify, type KeyObject } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export const METADATA_ACCOUNT = "prow-build@k8s-infra-prow-build.iam.gserviceaccount.com";
const GOOGLE_ISSUER = "https://accounts.google.com";
const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";

export interface GoogleStandInRequest {
  readonly service: "metadata" | "oauth" | "sts" | "iam";
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** The principal the caller authenticated as (from its bearer token or assertion). */
  readonly caller?: string;
  /** The parsed JSON or form body. */
  readonly body?: Record<string, unknown>;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}

export interface GoogleStandInOptions {
  /** `expires_in` of every access token, in seconds (default 3600). */
  readonly accessTokenSeconds?: number;
  /** Who may impersonate whom: caller principal -> service accounts. */
  readonly impersonation?: Readonly<Record<string, readonly string[]>>;
  /** Federated subjects the STS accepts (the subject token's `sub`), as `principal://...` names. */
  readonly stsAudience?: string;
}

export interface GoogleStandIns {
  /** `127.0.0.1:PORT`, the value for GCE_METADATA_HOST. */
  readonly metadataHost: string;
  /** `http://127.0.0.1:PORT`. */
  readonly url: string;
  readonly tokenUri: string;
  readonly stsUrl: string;
  readonly iamCredentialsUrl: string;
  readonly requests: GoogleStandInRequest[];
  /** A service-account key file document for `email`, whose `token_uri` is this stand-in. */
  serviceAccountKey(email: string): Record<string, unknown>;
  /** Whether an access token was issued here and has not been expired. */
  isValid(token: string): boolean;
  /** Expires every access token issued so far. */
  expireIssued(): void;
  principalOf(token: string): string | undefined;
  /** Access tokens issued so far, in order. */
  readonly issued: readonly { readonly token: string; readonly principal: string }[];
  /** Let `caller` impersonate `target` from now on. */
  allowImpersonation(caller: string, target: string): void;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 64 * 1024;

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_BODY_BYTES) throw new Error("body too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function decodeJwtPart(part: string | undefined): Record<string, unknown> {
  return JSON.parse(Buffer.from(part ?? "", "base64url").toString("utf8")) as Record<string, unknown>;
}

/** An unsigned OIDC-shaped identity token as Google's would read (email, aud, exp). */
export function googleIdToken(email: string, audience: string, lifetimeSeconds = 3600): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  return `${encode({ alg: "none", typ: "JWT" })}.${encode({
    iss: GOOGLE_ISSUER,
    sub: email,
    email,
    email_verified: true,
    aud: audience,
    azp: email,
    iat: now,
    exp: now + lifetimeSeconds,
  })}.`;
}

export async function startGoogleStandIns(options: GoogleStandInOptions = {}): Promise<GoogleStandIns> {
  const requests: GoogleStandInRequest[] = [];
  const issued: { token: string; principal: string }[] = [];
  const expired = new Set<string>();
  const owners = new Map<string, string>(); // token -> principal
  const keys = new Map<string, KeyObject>(); // service account -> public key
  const impersonation = new Map<string, Set<string>>(
    Object.entries(options.impersonation ?? {}).map(([caller, targets]) => [caller, new Set(targets)]),
  );
  const lifetime = options.accessTokenSeconds ?? 3600;
  let url = "";

  const issue = (principal: string): string => {
    const token = `ya29.stand-in-${randomBytes(12).toString("hex")}`;
    issued.push({ token, principal });
    owners.set(token, principal);
    return token;
  };
  const bearerPrincipal = (request: IncomingMessage): string | undefined => {
    const header = request.headers.authorization ?? "";
    const token = header.startsWith("Bearer ") ? header.slice("Bearer ".length) : undefined;
    return token !== undefined && !expired.has(token) ? owners.get(token) : undefined;
  };

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? "/", "http://127.0.0.1").pathname;
    const method = request.method ?? "GET";
    const text = method === "POST" ? await readBody(request) : "";
    const isForm = (request.headers["content-type"] ?? "").includes("application/x-www-form-urlencoded");
    let body: Record<string, unknown> | undefined;
    if (text !== "") {
      body = isForm
        ? Object.fromEntries(new URLSearchParams(text))
        : (JSON.parse(text) as Record<string, unknown>);
    }
    const record = (service: GoogleStandInRequest["service"], status: number, caller?: string) =>
      requests.push({
        service,
        method,
        path,
        status,
        headers: request.headers,
        ...(caller === undefined ? {} : { caller }),
        ...(body === undefined ? {} : { body }),
      });
    const reply = (status: number, answer: unknown, headers: Record<string, string> = {}) => {
      response.writeHead(status, { "content-type": "application/json", ...headers });
      response.end(typeof answer === "string" ? answer : JSON.stringify(answer));
    };

    if (path.startsWith("/computeMetadata/v1")) {
      const flavor = { "metadata-flavor": "Google" };
      if (request.headers["metadata-flavor"] !== "Google") {
        record("metadata", 403);
        reply(403, "Missing Metadata-Flavor:Google header.", flavor);
        return;
      }
      const rest = path.slice("/computeMetadata/v1".length);
      if (rest === "/instance/service-accounts/default/token") {
        const token = issue(METADATA_ACCOUNT);
        record("metadata", 200, METADATA_ACCOUNT);
        reply(200, { access_token: token, expires_in: lifetime, token_type: "Bearer" }, flavor);
        return;
      }
      if (rest === "/instance/service-accounts/default/email") {
        record("metadata", 200);
        reply(200, METADATA_ACCOUNT, { ...flavor, "content-type": "application/text" });
        return;
      }
      if (rest === "/project/project-id") {
        record("metadata", 200);
        reply(200, "k8s-infra-prow-build", { ...flavor, "content-type": "application/text" });
        return;
      }
      if (rest === "/instance" || rest === "/instance/" || rest === "" || rest === "/") {
        record("metadata", 200);
        reply(200, {}, flavor);
        return;
      }
      record("metadata", 404);
      reply(404, "not found", flavor);
      return;
    }

    if (path === "/token" && method === "POST") {
      if (body?.grant_type !== JWT_BEARER || typeof body.assertion !== "string") {
        record("oauth", 400);
        reply(400, {
          error: "unsupported_grant_type",
          error_description: "stand-in takes the JWT bearer grant",
        });
        return;
      }
      const [header, payload, signature] = body.assertion.split(".");
      const claims = decodeJwtPart(payload);
      const email = typeof claims.iss === "string" ? claims.iss : "";
      const key = keys.get(email);
      const signed = `${header ?? ""}.${payload ?? ""}`;
      const now = Math.floor(Date.now() / 1000);
      const valid =
        key !== undefined &&
        decodeJwtPart(header).alg === "RS256" &&
        verify("RSA-SHA256", Buffer.from(signed), key, Buffer.from(signature ?? "", "base64url")) &&
        // Google checks the audience is its token endpoint, whatever URL the request went to.
        claims.aud === "https://oauth2.googleapis.com/token" &&
        typeof claims.scope === "string" &&
        claims.scope.split(" ").includes("https://www.googleapis.com/auth/cloud-platform") &&
        typeof claims.exp === "number" &&
        claims.exp > now;
      if (!valid) {
        record("oauth", 400, email);
        reply(400, { error: "invalid_grant", error_description: "Invalid JWT Signature." });
        return;
      }
      const token = issue(email);
      record("oauth", 200, email);
      reply(200, { access_token: token, expires_in: lifetime, token_type: "Bearer" });
      return;
    }

    if (path === "/v1/token" && method === "POST") {
      const subjectToken = typeof body?.subject_token === "string" ? body.subject_token : "";
      let subject = "";
      try {
        const claims = decodeJwtPart(subjectToken.split(".")[1]);
        subject = typeof claims.sub === "string" ? claims.sub : "";
      } catch {
        subject = "";
      }
      if (
        body?.grant_type !== TOKEN_EXCHANGE ||
        body.subject_token_type !== "urn:ietf:params:oauth:token-type:jwt" ||
        body.requested_token_type !== "urn:ietf:params:oauth:token-type:access_token" ||
        (options.stsAudience !== undefined && body.audience !== options.stsAudience) ||
        subject === ""
      ) {
        record("sts", 400);
        reply(400, { error: "invalid_request", error_description: "stand-in STS refused the exchange" });
        return;
      }
      const principal = `principal://${String(body.audience)}/subject/${subject}`;
      const token = issue(principal);
      record("sts", 200, principal);
      reply(200, {
        access_token: token,
        issued_token_type: "urn:ietf:params:oauth:token-type:access_token",
        token_type: "Bearer",
        expires_in: lifetime,
      });
      return;
    }

    const iam = /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):(generateAccessToken|generateIdToken)$/.exec(
      path,
    );
    if (iam && method === "POST") {
      const target = decodeURIComponent(iam[1] ?? "");
      const caller = bearerPrincipal(request);
      if (caller === undefined) {
        record("iam", 401);
        reply(401, {
          error: {
            code: 401,
            message: "Request had invalid authentication credentials.",
            status: "UNAUTHENTICATED",
          },
        });
        return;
      }
      const permission =
        iam[2] === "generateAccessToken"
          ? "iam.serviceAccounts.getAccessToken"
          : "iam.serviceAccounts.getOpenIdToken";
      if (!impersonation.get(caller)?.has(target)) {
        record("iam", 403, caller);
        reply(403, {
          error: {
            code: 403,
            message: `Permission '${permission}' denied on resource (or it may not exist).`,
            status: "PERMISSION_DENIED",
            details: [
              {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                reason: "IAM_PERMISSION_DENIED",
                domain: "iam.googleapis.com",
                metadata: { permission },
              },
            ],
          },
        });
        return;
      }
      if (iam[2] === "generateAccessToken") {
        const scope = body?.scope;
        if (!Array.isArray(scope) || scope.length === 0) {
          record("iam", 400, caller);
          reply(400, { error: { code: 400, message: "scope is required", status: "INVALID_ARGUMENT" } });
          return;
        }
        const token = issue(target);
        record("iam", 200, caller);
        reply(200, { accessToken: token, expireTime: new Date(Date.now() + lifetime * 1000).toISOString() });
        return;
      }
      if (typeof body?.audience !== "string" || body.audience === "") {
        record("iam", 400, caller);
        reply(400, { error: { code: 400, message: "audience is required", status: "INVALID_ARGUMENT" } });
        return;
      }
      record("iam", 200, caller);
      reply(200, { token: googleIdToken(target, body.audience) });
      return;
    }

    requests.push({ service: "iam", method, path, status: 404, headers: request.headers });
    reply(404, { error: { code: 404, message: "not found", status: "NOT_FOUND" } });
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (!response.headersSent) {
        response.writeHead(500, { "content-type": "application/json" });
        response.end(JSON.stringify({ error: String(error) }));
      } else response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  url = `http://127.0.0.1:${port}`;

  return {
    metadataHost: `127.0.0.1:${port}`,
    url,
    tokenUri: `${url}/token`,
    stsUrl: `${url}/v1/token`,
    iamCredentialsUrl: url,
    requests,
    issued,
    serviceAccountKey(email: string) {
      const pair = generateKeyPairSync("rsa", { modulusLength: 2048 });
      keys.set(email, pair.publicKey);
      return {
        type: "service_account",
        project_id: "stand-in-project",
        private_key_id: randomBytes(20).toString("hex"),
        private_key: pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
        client_email: email,
        client_id: "100000000000000000000",
        token_uri: `${url}/token`,
      };
    },
    isValid: (token) => owners.has(token) && !expired.has(token),
    expireIssued() {
      for (const { token } of issued) expired.add(token);
    },
    principalOf: (token) => owners.get(token),
    allowImpersonation(caller, target) {
      let targets = impersonation.get(caller);
      if (!targets) impersonation.set(caller, (targets = new Set()));
      targets.add(target);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
