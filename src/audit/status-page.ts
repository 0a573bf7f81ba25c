import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import * as path from "node:path";
import { findingJson } from "./finding-json.js";
import { tokenMatches } from "./token-check.js";
import type { FindingQueries } from "./finding-reader.js";
import type { AuditFinding } from "./finding-store.js";
import type { DesiredState } from "./desired-state.js";
import {
  buildStatusIndex,
  cellState,
  NO_EVIDENCE,
  searchStatus,
  type MirrorPlace,
  type StatusIndex,
  wantedDigests,
} from "./status-model.js";
import { parseReportUpload, ReportUploadError, type StatusStore } from "./status-store.js";
import type { TrustCache, TrustVerdict } from "./trust-cache.js";

/**
 * The status page (docs/auditor.md, "Status page"): static assets shipped in the package
 * (status-page/, copied to dist/ by the build) and a JSON API under /status/api/, on the
 * auditor's listener.
 *
 * Who may do what:
 *   - viewers present `--viewer-token-file`'s token; acknowledgers a named token of
 *     `--acknowledger-tokens-file` (viewing included). Scripts send it as a bearer token; a
 *     browser posts it once to /status/session (JSON body, never a URL) and gets a random
 *     session id in an HttpOnly, SameSite=Strict cookie: the token itself never reaches the
 *     browser's storage, a URL or a log.
 *   - state changes are POST only; with a cookie they also need the session's CSRF value in the
 *     `x-status-csrf` header and a JSON content type (a cross-site form can send neither), and
 *     an `Origin`, when sent, of this host.
 *   - `POST /status/api/reports` (CI uploads promotion reports) takes the notification token.
 * Every response carries a strict Content-Security-Policy: scripts and styles from this origin
 * only, nothing inline, no frames.
 */

export const STATUS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export const SESSION_COOKIE = "promoter_status";
/** A browser session lasts this long, then the token is asked again. */
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;
/**
 * Sessions one identity (the shared viewer token, or one acknowledger) holds at once; a new one
 * drops that identity's oldest. Per identity, so signing in over and over with the viewer token
 * never signs an acknowledger out; in all at most (acknowledgers + 1) × this many.
 */
export const MAX_SESSIONS_PER_IDENTITY = 1000;
/** Largest report upload (the registry.k8s.io tree's report is ~200 MB; upload a shard's). */
export const MAX_REPORT_BYTES = 64 * 1024 * 1024;
/** Longest acknowledgement reason. */
export const MAX_ACK_REASON = 1000;

export type StatusRole = "viewer" | "acknowledger";

export interface StatusPageOptions {
  /** The read-only token of `--viewer-token-file`. */
  readonly viewerToken?: string;
  /** Name → token of `--acknowledger-tokens-file`: who acknowledged is the token's name. */
  readonly acknowledgers?: ReadonlyMap<string, string>;
}

interface Session {
  readonly role: StatusRole;
  readonly name: string;
  readonly csrf: string;
  readonly expires: number;
}

/** A refusal the server answers with `status` and `{ error }`. */
export class StatusProblem extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

const ASSETS: Record<string, string> = {
  "/status": "index.html",
  "/status/": "index.html",
  "/status/status.js": "status.js",
  "/status/status.css": "status.css",
};

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

/** The shipped assets: beside this module in src/ (tests) and in dist/ (the package). */
function loadAssets(): Map<string, Buffer> {
  const folder = path.join(import.meta.dirname, "status-page");
  const loaded = new Map<string, Buffer>();
  for (const file of new Set(Object.values(ASSETS))) loaded.set(file, readFileSync(path.join(folder, file)));
  return loaded;
}

export interface StatusContext {
  readonly desiredState: () => DesiredState;
  readonly findings: FindingQueries;
  readonly store: StatusStore;
  /** The notification senders' token, for report uploads. */
  readonly ingestToken: string;
  readonly redact: (text: string) => string;
  readonly now: () => number;
  readonly readBody: (request: IncomingMessage, limit: number) => Promise<Buffer>;
  /**
   * Verified signatures and attestations (`audit serve --public-key/--policy`); without it the
   * page says they are not verified.
   */
  readonly trust?: TrustCache;
}

/** Reasons shown per verdict: the first few, each cut (the full ones are `promoter verify`'s). */
const MAX_SHOWN_REASONS = 3;
const MAX_REASON_CHARS = 300;

function shownReasons(reasons: readonly string[]): string[] {
  return reasons
    .slice(0, MAX_SHOWN_REASONS)
    .map((reason) => (reason.length > MAX_REASON_CHARS ? `${reason.slice(0, MAX_REASON_CHARS)}…` : reason));
}

/**
 * A mirror's verified state as the page's JSON gives it: `not-checked` (no trust settings, or
 * not a digest the manifests promote there), `checking`, or what the check found. Approvers and
 * changes come only from promotion records whose signature verified.
 */
export function verifiedJson(verdict: TrustVerdict | undefined, enabled: boolean): Record<string, unknown> {
  if (!enabled || !verdict) return { state: "not-checked" };
  if (verdict.state === "checking") return { state: "checking" };
  const { signature, attestation } = verdict.result;
  const unique = (values: readonly string[]) => [...new Set(values)];
  return {
    state: "known",
    checkedAt: verdict.checkedAt,
    signature: {
      status: signature.status,
      signers: signature.signers,
      reasons: shownReasons(signature.reasons),
    },
    attestation: {
      status: attestation.status,
      signers: attestation.signers,
      reasons: shownReasons(attestation.reasons),
      approvers: unique(attestation.reviews.flatMap((review) => review.approvers)),
      changes: unique(
        attestation.reviews.flatMap((review) => (review.change === undefined ? [] : [review.change])),
      ),
      manifests: unique(
        attestation.reviews.flatMap((review) =>
          review.manifest === undefined
            ? []
            : [`${review.manifest.uri ?? review.manifest.path}:${review.manifest.line}`],
        ),
      ),
    },
  };
}

function cookieValue(request: IncomingMessage, name: string): string | undefined {
  const header = request.headers.cookie;
  if (header === undefined) return undefined;
  for (const part of header.split(";")) {
    const [key, ...value] = part.trim().split("=");
    if (key === name) return value.join("=");
  }
  return undefined;
}

function bearer(request: IncomingMessage): string | undefined {
  return /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(request.headers.authorization ?? "")?.[1];
}

/**
 * The session cookie's attributes. `Secure` when a TLS-terminating proxy says the browser used
 * https (`X-Forwarded-Proto: https`): the server itself speaks plain HTTP. A forged header can
 * only make the browser refuse the cookie on plain HTTP, never expose it.
 */
function cookieAttributes(request: IncomingMessage): string {
  const forwarded = request.headers["x-forwarded-proto"];
  const https = typeof forwarded === "string" && forwarded.split(",")[0]?.trim().toLowerCase() === "https";
  return `Path=/status; HttpOnly; SameSite=Strict${https ? "; Secure" : ""}`;
}

/**
 * The headers every answer of the auditor's listener carries (server.ts sets them before any
 * handler runs, so refusals and errors have them too): a JSON error that echoes a path is never
 * rendered or framed, https://www.w3.org/TR/CSP3/ and https://fetch.spec.whatwg.org/#x-content-type-options-header.
 */
export function securityHeaders(): Record<string, string> {
  return {
    "content-security-policy": STATUS_CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-store",
  };
}

export class StatusPage {
  private readonly assets = loadAssets();
  private readonly sessions = new Map<string, Session>();
  private index: { state: DesiredState; index: StatusIndex } | undefined;
  private readonly options: StatusPageOptions;
  private readonly context: StatusContext;

  constructor(options: StatusPageOptions, context: StatusContext) {
    this.options = options;
    this.context = context;
  }

  /** Whether the page is on: a viewer or acknowledger token is configured. */
  get enabled(): boolean {
    return this.options.viewerToken !== undefined || (this.options.acknowledgers?.size ?? 0) > 0;
  }

  /** Answers `/status...` routes; false for other routes. */
  async handle(request: IncomingMessage, response: ServerResponse, url: URL): Promise<boolean> {
    const route = url.pathname;
    if (route !== "/status" && !route.startsWith("/status/")) return false;
    if (!this.enabled) throw new StatusProblem(404, "the status page is off (no --viewer-token-file)");
    const method = request.method ?? "GET";
    const asset = ASSETS[route];
    if (asset !== undefined) {
      if (method !== "GET" && method !== "HEAD") throw new StatusProblem(405, "use GET");
      const body = this.assets.get(asset) ?? Buffer.alloc(0);
      response.writeHead(200, {
        ...securityHeaders(),
        "content-type": CONTENT_TYPES[path.extname(asset)] ?? "application/octet-stream",
        "content-length": body.length,
      });
      response.end(method === "HEAD" ? undefined : body);
      return true;
    }
    if (route === "/status/session") {
      await this.session(request, response, method);
      return true;
    }
    if (route === "/status/api/reports") {
      if (method !== "POST") throw new StatusProblem(405, "use POST");
      if (!tokenMatches(bearer(request), this.context.ingestToken)) {
        throw new StatusProblem(401, "missing or wrong bearer token (the notification token)");
      }
      const body = await this.context.readBody(request, MAX_REPORT_BYTES);
      let upload;
      try {
        upload = parseReportUpload(JSON.parse(body.toString("utf8")));
      } catch (error) {
        if (error instanceof SyntaxError || error instanceof ReportUploadError) {
          throw new StatusProblem(400, error.message);
        }
        throw error;
      }
      const id = this.context.store.addReport(upload, new Date(this.context.now()).toISOString());
      this.json(response, 200, { id, edges: upload.edges.length });
      return true;
    }
    const acknowledge = /^\/status\/api\/findings\/(\d{1,15})\/acknowledge$/.exec(route);
    if (acknowledge) {
      if (method !== "POST") throw new StatusProblem(405, "use POST");
      const who = this.authorise(request, true);
      if (who.role !== "acknowledger") {
        throw new StatusProblem(
          403,
          "acknowledging needs an acknowledger token (--acknowledger-tokens-file)",
        );
      }
      const body = await this.jsonBody(request);
      const reason = typeof body.reason === "string" ? body.reason.trim() : "";
      if (reason.length === 0 || reason.length > MAX_ACK_REASON) {
        throw new StatusProblem(400, `say why (a reason of 1 to ${MAX_ACK_REASON} characters)`);
      }
      const ack = {
        seq: Number(acknowledge[1]),
        by: who.name,
        reason,
        at: new Date(this.context.now()).toISOString(),
      };
      if (!this.context.store.acknowledge(ack)) {
        throw new StatusProblem(409, "no such finding, or it is already acknowledged");
      }
      this.json(response, 200, { acknowledged: ack });
      return true;
    }
    if (!route.startsWith("/status/api/")) throw new StatusProblem(404, `no route ${route}`);
    if (method !== "GET" && method !== "HEAD") throw new StatusProblem(405, "use GET");
    this.authorise(request, false);
    const params = url.searchParams;
    switch (route) {
      case "/status/api/findings":
        this.json(response, 200, await this.findingsPage(params));
        return true;
      case "/status/api/search":
        this.json(response, 200, this.search(params.get("q") ?? ""));
        return true;
      case "/status/api/promotions":
        this.json(response, 200, { reports: this.context.store.recentReports(20) });
        return true;
      case "/status/api/matrix":
        this.json(response, 200, this.matrix(params.get("project")));
        return true;
      default:
        throw new StatusProblem(404, `no route ${route}`);
    }
  }

  private json(
    response: ServerResponse,
    status: number,
    body: unknown,
    extra: Record<string, string> = {},
  ): void {
    const text = `${this.context.redact(JSON.stringify(body))}\n`;
    response.writeHead(status, {
      ...securityHeaders(),
      ...extra,
      "content-type": "application/json; charset=utf-8",
      "content-length": Buffer.byteLength(text),
    });
    response.end(text);
  }

  private async jsonBody(request: IncomingMessage): Promise<Record<string, unknown>> {
    if (!/^application\/json\b/i.test(request.headers["content-type"] ?? "")) {
      throw new StatusProblem(415, "send a JSON body (content-type: application/json)");
    }
    const body = await this.context.readBody(request, 64 * 1024);
    try {
      const parsed: unknown = JSON.parse(body.toString("utf8"));
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) {
        return parsed as Record<string, unknown>;
      }
    } catch {
      // answered below
    }
    throw new StatusProblem(400, "expected a JSON object");
  }

  /** Who asks: a bearer token, or a session cookie (with its CSRF value for a state change). */
  private authorise(request: IncomingMessage, changesState: boolean): { role: StatusRole; name: string } {
    const presented = bearer(request);
    if (presented !== undefined) {
      const who = this.tokenRole(presented);
      if (!who) throw new StatusProblem(401, "missing or wrong viewer token");
      return who;
    }
    const session = this.liveSession(request);
    if (!session) throw new StatusProblem(401, "sign in with the viewer token");
    if (changesState) {
      const origin = request.headers.origin;
      if (
        origin !== undefined &&
        origin !== `http://${request.headers.host ?? ""}` &&
        origin !== `https://${request.headers.host ?? ""}`
      ) {
        throw new StatusProblem(403, "cross-origin request refused");
      }
      if (!tokenMatches(request.headers["x-status-csrf"] as string | undefined, session.csrf)) {
        throw new StatusProblem(403, "missing or wrong x-status-csrf header");
      }
    }
    return session;
  }

  private tokenRole(presented: string): { role: StatusRole; name: string } | undefined {
    // Every comparison runs, whichever matches: the time taken does not tell which token it was.
    let found: { role: StatusRole; name: string } | undefined;
    for (const [name, token] of this.options.acknowledgers ?? []) {
      if (tokenMatches(presented, token) && !found) found = { role: "acknowledger", name };
    }
    if (
      this.options.viewerToken !== undefined &&
      tokenMatches(presented, this.options.viewerToken) &&
      !found
    ) {
      found = { role: "viewer", name: "viewer" };
    }
    return found;
  }

  private liveSession(request: IncomingMessage): Session | undefined {
    const id = cookieValue(request, SESSION_COOKIE);
    if (id === undefined) return undefined;
    const session = this.sessions.get(id);
    if (!session) return undefined;
    if (session.expires <= this.context.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return session;
  }

  /**
   * GET: who the session is (and its CSRF value, readable only by this origin's scripts).
   * POST {"token"}: signs in. POST {"signOut": true}: signs out.
   */
  private async session(request: IncomingMessage, response: ServerResponse, method: string): Promise<void> {
    if (method === "GET") {
      const session = this.liveSession(request);
      if (!session) throw new StatusProblem(401, "sign in with the viewer token");
      this.json(response, 200, { role: session.role, name: session.name, csrf: session.csrf });
      return;
    }
    if (method !== "POST") throw new StatusProblem(405, "use GET or POST");
    const body = await this.jsonBody(request);
    if (body.signOut === true) {
      const id = cookieValue(request, SESSION_COOKIE);
      if (id !== undefined) this.sessions.delete(id);
      this.json(
        response,
        200,
        { signedOut: true },
        { "set-cookie": `${SESSION_COOKIE}=; ${cookieAttributes(request)}; Max-Age=0` },
      );
      return;
    }
    const who = typeof body.token === "string" ? this.tokenRole(body.token) : undefined;
    if (!who) throw new StatusProblem(401, "wrong token");
    const id = randomBytes(32).toString("base64url");
    const session: Session = {
      ...who,
      csrf: randomBytes(32).toString("base64url"),
      expires: this.context.now() + SESSION_TTL_MS,
    };
    let held = 0;
    let oldest: string | undefined;
    for (const [key, old] of this.sessions) {
      if (old.expires <= this.context.now()) {
        this.sessions.delete(key);
      } else if (old.role === who.role && old.name === who.name) {
        held += 1;
        oldest ??= key;
      }
    }
    if (held >= MAX_SESSIONS_PER_IDENTITY && oldest !== undefined) this.sessions.delete(oldest);
    this.sessions.set(id, session);
    this.json(
      response,
      200,
      { role: session.role, name: session.name, csrf: session.csrf },
      {
        "set-cookie": `${SESSION_COOKIE}=${id}; ${cookieAttributes(request)}; Max-Age=${SESSION_TTL_MS / 1000}`,
      },
    );
  }

  private statusIndex(): StatusIndex {
    const state = this.context.desiredState();
    if (this.index?.state !== state) this.index = { state, index: buildStatusIndex(state) };
    return this.index.index;
  }

  /** Violations first (newest first), then the other findings; each with its acknowledgement. */
  private async findingsPage(params: URLSearchParams): Promise<unknown> {
    const before = params.get("before");
    const limit = 100;
    const cursor = before !== null && /^\d{1,15}$/.test(before) ? Number(before) : undefined;
    const verdict = params.get("verdict") === "verified" ? "verified" : "violation";
    const rows: AuditFinding[] = await this.context.findings.query({
      verdict,
      limit: limit + 1,
      ...(cursor === undefined ? {} : { before: cursor }),
    });
    const page = rows.slice(0, limit);
    const acks = this.context.store.acknowledgements(page.map((finding) => finding.seq));
    return {
      verdict,
      findings: page.map((finding) => ({
        ...findingJson(finding),
        acknowledged: acks.get(finding.seq) ?? null,
      })),
      next: rows.length > limit ? (page.at(-1)?.seq ?? null) : null,
    };
  }

  private search(query: string): unknown {
    const result = searchStatus(this.statusIndex(), query.slice(0, 300));
    const repositories = [
      ...new Set(result.hits.flatMap((hit) => hit.mirrors.map((place) => place.repository))),
    ];
    const evidence = this.context.store.evidence(repositories).byDigest;
    const trust = this.context.trust;
    return {
      query,
      truncated: result.truncated,
      verification: trust ? "on" : "off",
      hits: result.hits.map((hit) => ({
        project: hit.project,
        image: hit.image,
        digest: hit.digest,
        tags: hit.tags,
        mirrors: hit.mirrors.map((place) => ({
          mirror: place.mirror,
          repository: place.repository,
          wantedTags: [...(wantedDigests(place.desired).get(hit.digest)?.tags ?? [])].sort(),
          ...(evidence.get(`${place.repository} ${hit.digest}`) ?? NO_EVIDENCE),
          verified: verifiedJson(trust?.lookup(place.repository, hit.digest), trust !== undefined),
        })),
      })),
    };
  }

  private matrix(project: string | null): unknown {
    const index = this.statusIndex();
    const projects = [...index.projects.keys()].sort();
    const chosen = project !== null && index.projects.has(project) ? project : undefined;
    if (chosen === undefined) return { projects, project: null, mirrors: [], images: [] };
    const images = index.projects.get(chosen) ?? new Map<string, readonly MirrorPlace[]>();
    const mirrors = index.projectMirrors.get(chosen) ?? [];
    const places = [...images.values()].flat();
    const { byDigest: evidence, violated } = this.context.store.evidence(
      places.map((place) => place.repository),
    );
    return {
      projects,
      project: chosen,
      mirrors,
      images: [...images.entries()]
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([image, held]) => ({
          image,
          cells: mirrors.map((mirror) => {
            const place = held.find((candidate) => candidate.mirror === mirror);
            if (!place) return { mirror, state: "not-promoted", digests: 0 };
            return {
              mirror,
              state: cellState(
                place,
                (digest) => evidence.get(`${place.repository} ${digest}`) ?? NO_EVIDENCE,
                violated.has(place.repository),
              ),
              digests: place.desired.digests.size,
            };
          }),
        })),
    };
  }
}
