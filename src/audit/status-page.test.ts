import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { appDesiredState } from "../../test/support/audit-state.js";
import { MemoryLogger } from "../log.js";
import type { Digest } from "../reference/index.js";
import { Auditor } from "./auditor.js";
import { parseHostMapping } from "./event.js";
import { FindingStore } from "./finding-store.js";
import { AuditMetrics } from "./metrics.js";
import { startAuditServer, type AuditServer } from "./server.js";
import { SESSION_COOKIE, STATUS_CSP, verifiedJson } from "./status-page.js";

/**
 * The status page's HTTP rules (docs/auditor.md, "Status page"): which token may do what, how a
 * browser session is made, what a state change needs, and the headers of every answer. The
 * browser itself is driven in test/e2e/status-page.test.ts.
 */

const TOKEN = "ingest-0123456789abcdef-token";
const VIEWER_TOKEN = "viewer-0123456789abcdef-token";
const ALICE_TOKEN = "alice-0123456789abcdef-token";
const PROMOTED = `sha256:${"1".repeat(64)}` as Digest;
const ROGUE = `sha256:${"3".repeat(64)}` as Digest;

function envelope(id: string, digest: string, tag: string) {
  return {
    events: [
      {
        id,
        timestamp: "2026-01-31T12:00:00Z",
        action: "push",
        target: {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          repository: "prod/app",
          digest,
          tag,
          url: `http://reg.example/v2/prod/app/manifests/${digest}`,
        },
        request: { host: "reg.example" },
      },
    ],
  };
}

function report(edges: Record<string, unknown>[]) {
  return {
    schema: "image-promoter/promotion",
    version: 1,
    kind: "report",
    createdAt: "2026-02-01T10:00:00.000Z",
    edges,
  };
}

describe("status page HTTP rules", () => {
  let directory: string;
  let store: FindingStore;
  let auditor: Auditor;
  let server: AuditServer;

  beforeAll(async () => {
    directory = mkdtempSync(path.join(os.tmpdir(), "promoter-status-test-"));
    store = FindingStore.open(path.join(directory, "audit.db"));
    const metrics = new AuditMetrics();
    const logger = new MemoryLogger();
    auditor = new Auditor(appDesiredState({ [PROMOTED]: ["1.0"] }, { mirrors: ["eu/prod"] }), {
      store,
      logger,
      metrics,
      lookup: { manifest: () => Promise.resolve(undefined), verifiedTagFor: () => undefined },
    });
    auditor.start();
    server = await startAuditServer(
      {
        auditor,
        store,
        metrics,
        token: TOKEN,
        viewerToken: VIEWER_TOKEN,
        acknowledgers: new Map([["alice", ALICE_TOKEN]]),
        hostMapping: parseHostMapping([]),
        logger,
      },
      { host: "127.0.0.1", port: 0 },
    );
    for (const [id, digest, tag] of [
      ["e1", PROMOTED, "1.0"],
      ["e2", ROGUE, "rogue"],
    ] as const) {
      const response = await fetch(`${server.url}/events/reg.example`, {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify(envelope(id, digest, tag)),
      });
      expect(response.status).toBe(200);
    }
    await auditor.idle();
  });

  afterAll(async () => {
    await server.close();
    await auditor.close();
    store.close();
    rmSync(directory, { recursive: true, force: true });
  });

  function get(route: string, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${server.url}${route}`, { headers });
  }

  function postJson(route: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
    return fetch(`${server.url}${route}`, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
  }

  async function signIn(token: string): Promise<{ cookie: string; csrf: string; setCookie: string }> {
    const response = await postJson("/status/session", { token });
    expect(response.status).toBe(200);
    const setCookie = response.headers.get("set-cookie") ?? "";
    const body = (await response.json()) as { csrf: string };
    return { cookie: setCookie.split(";")[0] ?? "", csrf: body.csrf, setCookie };
  }

  it("serves the page's assets with a strict CSP and no data; the API answers 401 without a token", async () => {
    for (const route of ["/status", "/status/status.js", "/status/status.css"]) {
      const response = await get(route);
      expect(response.status, route).toBe(200);
      expect(response.headers.get("content-security-policy")).toBe(STATUS_CSP);
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    }
    const html = await (await get("/status")).text();
    // No inline script or style: the CSP would refuse it.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|\bstyle=/);
    for (const route of [
      "/status/api/findings",
      "/status/api/search?q=app",
      "/status/api/promotions",
      "/status/api/matrix",
    ]) {
      expect((await get(route)).status, route).toBe(401);
    }
  });

  it("takes the viewer token as a bearer token, never from the URL, and refuses the ingest token", async () => {
    expect((await get("/status/api/findings", { authorization: `Bearer ${VIEWER_TOKEN}` })).status).toBe(200);
    expect((await get(`/status/api/findings?token=${VIEWER_TOKEN}`)).status).toBe(401);
    expect((await get("/status/api/findings", { authorization: `Bearer ${TOKEN}` })).status).toBe(401);
    // The viewer token reads no raw findings and sends no events.
    expect((await get("/findings", { authorization: `Bearer ${VIEWER_TOKEN}` })).status).toBe(401);
    const events = await postJson("/events/reg.example", envelope("e3", PROMOTED, "1.0"), {
      authorization: `Bearer ${VIEWER_TOKEN}`,
    });
    expect(events.status).toBe(401);
  });

  it("signs a browser in with an HttpOnly, SameSite=Strict cookie holding a session id, not the token", async () => {
    expect((await postJson("/status/session", { token: "wrong-token-0123456789" })).status).toBe(401);
    expect((await postJson("/status/session", { token: TOKEN })).status).toBe(401);
    const { cookie, setCookie } = await signIn(VIEWER_TOKEN);
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).toMatch(/Path=\/status/);
    expect(setCookie).not.toContain(VIEWER_TOKEN);
    expect(setCookie).not.toMatch(/Secure/);
    // Behind a proxy that terminates TLS the cookie is sent over https only.
    const proxied = await postJson(
      "/status/session",
      { token: VIEWER_TOKEN },
      { "x-forwarded-proto": "https" },
    );
    expect(proxied.headers.get("set-cookie")).toMatch(/HttpOnly; SameSite=Strict; Secure/);
    expect(cookie.startsWith(`${SESSION_COOKIE}=`)).toBe(true);
    const who = await get("/status/session", { cookie });
    expect(await who.json()).toMatchObject({ role: "viewer" });
    const findings = await get("/status/api/findings", { cookie });
    expect(findings.status).toBe(200);
    const body = (await findings.json()) as { findings: { tag: string; verdict: string }[] };
    expect(body.findings.map((finding) => [finding.verdict, finding.tag])).toEqual([["violation", "rogue"]]);
    // Signing out ends the session on the server, whatever the browser keeps.
    expect((await postJson("/status/session", { signOut: true }, { cookie })).status).toBe(200);
    expect((await get("/status/api/findings", { cookie })).status).toBe(401);
  });

  it("acknowledging is POST only, needs an acknowledger, the session's CSRF value and a same-origin request; it records who and why", async () => {
    const rogue = store.query({ verdict: "violation" })[0];
    expect(rogue?.tag).toBe("rogue");
    const route = `/status/api/findings/${rogue?.seq}/acknowledge`;
    expect((await get(route, { authorization: `Bearer ${ALICE_TOKEN}` })).status).toBe(405);
    // A viewer may not.
    expect(
      (await postJson(route, { reason: "test" }, { authorization: `Bearer ${VIEWER_TOKEN}` })).status,
    ).toBe(403);
    const viewer = await signIn(VIEWER_TOKEN);
    expect(
      (await postJson(route, { reason: "x" }, { cookie: viewer.cookie, "x-status-csrf": viewer.csrf }))
        .status,
    ).toBe(403);
    // An acknowledger's cookie alone (what a cross-site form would carry) is not enough.
    const alice = await signIn(ALICE_TOKEN);
    expect((await postJson(route, { reason: "x" }, { cookie: alice.cookie })).status).toBe(403);
    expect(
      (
        await postJson(
          route,
          { reason: "x" },
          { cookie: alice.cookie, "x-status-csrf": alice.csrf, origin: "https://evil.example" },
        )
      ).status,
    ).toBe(403);
    const form = await fetch(`${server.url}${route}`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        cookie: alice.cookie,
        "x-status-csrf": alice.csrf,
      },
      body: "reason=x",
    });
    expect(form.status).toBe(415);
    expect(
      (await postJson(route, { reason: " " }, { cookie: alice.cookie, "x-status-csrf": alice.csrf })).status,
    ).toBe(400);
    const before = (await (
      await get("/status/api/matrix?project=prod", { cookie: viewer.cookie })
    ).json()) as {
      images: { cells: { mirror: string; state: string }[] }[];
    };
    expect(before.images[0]?.cells).toContainEqual(
      expect.objectContaining({ mirror: "reg.example/prod", state: "violation" }),
    );
    const done = await postJson(
      route,
      { reason: "a test push, removed" },
      { cookie: alice.cookie, "x-status-csrf": alice.csrf },
    );
    expect(done.status).toBe(200);
    expect(
      (await postJson(route, { reason: "again" }, { cookie: alice.cookie, "x-status-csrf": alice.csrf }))
        .status,
    ).toBe(409);
    const page = (await (await get("/status/api/findings", { cookie: viewer.cookie })).json()) as {
      findings: { acknowledged: { by: string; reason: string } | null }[];
    };
    expect(page.findings[0]?.acknowledged).toMatchObject({ by: "alice", reason: "a test push, removed" });
  });

  it("takes promotion reports with the ingest token only, and the search and matrix use them", async () => {
    const upload = {
      report: report([
        { destination: "reg.example/prod/app", digest: PROMOTED, tag: "1.0", outcome: "copied" },
        {
          destination: "reg.example/eu/prod/app",
          digest: PROMOTED,
          tag: "1.0",
          outcome: "failed",
          error: "HTTP 500 from destination",
        },
      ]),
      change: "https://git.example/manifests/pull/7",
      approvedBy: ["bob"],
    };
    expect(
      (await postJson("/status/api/reports", upload, { authorization: `Bearer ${VIEWER_TOKEN}` })).status,
    ).toBe(401);
    expect(
      (await postJson("/status/api/reports", { nope: 1 }, { authorization: `Bearer ${TOKEN}` })).status,
    ).toBe(400);
    expect((await postJson("/status/api/reports", upload, { authorization: `Bearer ${TOKEN}` })).status).toBe(
      200,
    );
    const viewer = { authorization: `Bearer ${VIEWER_TOKEN}` };
    const search = (await (await get("/status/api/search?q=app%3A1.0", viewer)).json()) as {
      hits: {
        digest: string;
        mirrors: {
          mirror: string;
          present: boolean;
          change: string | null;
          problem: string | null;
          verified: unknown;
        }[];
      }[];
    };
    expect(search.hits.map((hit) => hit.digest)).toEqual([PROMOTED]);
    expect(search.hits[0]?.mirrors).toEqual([
      expect.objectContaining({
        mirror: "reg.example/eu/prod",
        present: false,
        problem: "failed: HTTP 500 from destination",
        verified: { state: "not-checked" },
      }),
      expect.objectContaining({
        mirror: "reg.example/prod",
        present: true,
        change: "https://git.example/manifests/pull/7",
        verified: { state: "not-checked" },
      }),
    ]);
    // No trust settings: the answer says nothing is verified.
    expect(search).toMatchObject({ verification: "off" });
    const promotions = (await (await get("/status/api/promotions", viewer)).json()) as {
      reports: { approvedBy: string[]; edges: { outcome: string }[] }[];
    };
    expect(promotions.reports[0]).toMatchObject({
      approvedBy: ["bob"],
      edges: [{ outcome: "copied" }, { outcome: "failed" }],
    });
    const matrix = (await (await get("/status/api/matrix?project=prod", viewer)).json()) as {
      projects: string[];
      images: { image: string; cells: { state: string }[] }[];
    };
    expect(matrix.projects).toEqual(["prod"]);
    // The acknowledged rogue push does not colour the cell; the copied digest makes it complete.
    expect(matrix.images).toEqual([
      {
        image: "app",
        cells: [
          { mirror: "reg.example/eu/prod", state: "missing", digests: 1 },
          { mirror: "reg.example/prod", state: "complete", digests: 1 },
        ],
      },
    ]);
  });
});

/** WCAG 2 relative luminance of `#rrggbb`. */
function luminance(hex: string): number {
  const channels = [1, 3, 5].map((start) => Number.parseInt(hex.slice(start, start + 2), 16) / 255);
  const [r, g, b] = channels.map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4)) as [
    number,
    number,
    number,
  ];
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

function contrast(a: string, b: string): number {
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x) as [number, number];
  return (light + 0.05) / (dark + 0.05);
}

describe("status page colours", () => {
  it("every text colour on its background has a WCAG AA contrast (4.5:1) in the light and dark themes", () => {
    const css = readFileSync(path.join(import.meta.dirname, "status-page", "status.css"), "utf8");
    const themes = [...css.matchAll(/:root \{([^}]*)\}/g)].map((match) => {
      const variables = new Map<string, string>();
      for (const [, name, value] of (match[1] ?? "").matchAll(/--([a-z-]+):\s*(#[0-9a-f]{6});/g)) {
        variables.set(name ?? "", value ?? "");
      }
      return variables;
    });
    expect(themes).toHaveLength(2);
    const pairs = [
      ["fg", "bg"],
      ["muted", "bg"],
      ["accent", "bg"],
      ["bg", "accent"],
      ["fg", "none-bg"],
      ["ok-fg", "ok-bg"],
      ["warn-fg", "warn-bg"],
      ["bad-fg", "bad-bg"],
      ["none-fg", "none-bg"],
    ] as const;
    for (const [index, theme] of themes.entries()) {
      for (const [text, background] of pairs) {
        const ratio = contrast(theme.get(text) ?? "", theme.get(background) ?? "");
        expect(ratio, `theme ${index}: --${text} on --${background}`).toBeGreaterThanOrEqual(4.5);
      }
    }
  });
});

describe("a mirror's verified state in the search answer", () => {
  const checkedAt = "2026-12-06T07:00:00.000Z";

  it("is not-checked without trust settings, whatever is cached, and checking until known", () => {
    expect(verifiedJson(undefined, false)).toEqual({ state: "not-checked" });
    expect(verifiedJson({ state: "checking" }, false)).toEqual({ state: "not-checked" });
    expect(verifiedJson({ state: "checking" }, true)).toEqual({ state: "checking" });
  });

  it("takes approvers, changes and manifest lines only from verified promotion records, reasons cut", () => {
    const long = "x".repeat(400);
    const shown = verifiedJson(
      {
        state: "known",
        checkedAt,
        result: {
          signature: { status: "invalid", signers: [], reasons: ["a", "b", "c", "d", long] },
          attestation: {
            status: "valid",
            signers: ["sha256:k"],
            reasons: [long],
            reviews: [
              {
                approvers: ["carol", "erin"],
                change: "https://git.example/pull/1",
                manifest: { path: "m.yaml", line: 3 },
              },
              {
                approvers: ["carol"],
                manifest: { path: "m.yaml", line: 3, uri: "git+https://git.example@abc#m.yaml" },
              },
            ],
          },
        },
      },
      true,
    );
    expect(shown).toEqual({
      state: "known",
      checkedAt,
      signature: { status: "invalid", signers: [], reasons: ["a", "b", "c"] },
      attestation: {
        status: "valid",
        signers: ["sha256:k"],
        reasons: [`${"x".repeat(300)}…`],
        approvers: ["carol", "erin"],
        changes: ["https://git.example/pull/1"],
        manifests: ["m.yaml:3", "git+https://git.example@abc#m.yaml:3"],
      },
    });
  });
});
