import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STATUS_CSP } from "../../src/audit/status-page.js";
import { PromoterProcess, requireBuiltCli } from "../support/promoter-process.js";

/**
 * Attacks on the auditor's status page (issue 14), against `promoter audit serve` as a child
 * process: what someone on the network without a token, a viewer holding only the viewer token,
 * and the holder of the notification token can do to the page, its JSON API and its sessions.
 * The browser side (text from outside shown as text, javascript: changes not linked) is driven in
 * test/e2e/status-page.test.ts.
 */

const INGEST_TOKEN = "attack-ingest-token-5e1f0a9b7c3d4e2f";
const VIEWER_TOKEN = "attack-viewer-token-8b2c6d0e4f1a3b5c";
const ALICE_TOKEN = "attack-alice-token-0c9d8e7f6a5b4c3d";

let work: string;
let server: PromoterProcess;
let url: string;

beforeAll(async () => {
  requireBuiltCli();
  work = await mkdtemp(path.join(tmpdir(), "hostile-status-page-"));
  await writeFile(
    path.join(work, "manifest.yaml"),
    [
      "registries:",
      "- name: 127.0.0.1:1/staging",
      "  src: true",
      "- name: 127.0.0.1:1/prod",
      "images:",
      "- name: app",
      "  dmap:",
      `    "sha256:${"1".repeat(64)}": ["1.0"]`,
      "",
    ].join("\n"),
  );
  await writeFile(path.join(work, "ingest-token"), `${INGEST_TOKEN}\n`, { mode: 0o600 });
  await writeFile(path.join(work, "viewer-token"), `${VIEWER_TOKEN}\n`, { mode: 0o600 });
  await writeFile(path.join(work, "acknowledgers"), `alice ${ALICE_TOKEN}\n`, { mode: 0o600 });
  server = PromoterProcess.start(
    [
      "audit",
      "serve",
      "--manifest",
      "manifest.yaml",
      "--listen",
      "127.0.0.1:0",
      "--token-file",
      "ingest-token",
      "--viewer-token-file",
      "viewer-token",
      "--acknowledger-tokens-file",
      "acknowledgers",
      "--db",
      "audit.db",
    ],
    { cwd: work },
  );
  url = await server.waitFor((stdout) => {
    for (const line of stdout.split("\n")) {
      if (line.includes('"audit server listening"')) return (JSON.parse(line) as { url: string }).url;
    }
    return undefined;
  }, 60_000);
}, 120_000);

afterAll(async () => {
  await (server as PromoterProcess | undefined)?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

/** Signs in as a browser does; returns the session cookie (`name=value`). */
async function signIn(token: string): Promise<string> {
  const response = await fetch(`${url}/status/session`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
  expect(response.status).toBe(200);
  await response.arrayBuffer();
  const cookie = response.headers.get("set-cookie") ?? "";
  return cookie.split(";")[0] ?? "";
}

async function sessionStatus(cookie: string): Promise<number> {
  const response = await fetch(`${url}/status/session`, { headers: { cookie } });
  await response.arrayBuffer();
  return response.status;
}

describe("the status page's responses", () => {
  it("carry the strict CSP and nosniff on every answer, refusals and errors included", async () => {
    const requests: [string, RequestInit?][] = [
      ["/status"],
      ["/status/status.js"],
      ["/status/api/search?q=app", { headers: { authorization: `Bearer ${VIEWER_TOKEN}` } }],
      // Refusals and errors: no token, a wrong route, a wrong method, a wrong content type,
      // an unparsable upload, a finding that does not exist.
      ["/status/api/search?q=%3Cscript%3E"],
      ["/status/api/findings", { headers: { authorization: `Bearer ${INGEST_TOKEN}` } }],
      ["/status/%3Cscript%3Ealert(1)%3C%2Fscript%3E"],
      ["/status/status.js", { method: "POST" }],
      ["/status/session", { method: "POST", headers: { "content-type": "text/html" }, body: "<b>" }],
      [
        "/status/api/reports",
        {
          method: "POST",
          headers: { authorization: `Bearer ${INGEST_TOKEN}`, "content-type": "application/json" },
          body: "<html><script>alert(1)</script>",
        },
      ],
      [
        "/status/api/findings/999999/acknowledge",
        {
          method: "POST",
          headers: { authorization: `Bearer ${ALICE_TOKEN}`, "content-type": "application/json" },
          body: JSON.stringify({ reason: "<script>alert(1)</script>" }),
        },
      ],
    ];
    const missing: string[] = [];
    for (const [route, init] of requests) {
      const response = await fetch(`${url}${route}`, init);
      await response.arrayBuffer();
      const what = `${init?.method ?? "GET"} ${route} (${response.status})`;
      // The page's whole policy, word for word (default-src 'none', frame-ancestors 'none', ...).
      if (response.headers.get("content-security-policy") !== STATUS_CSP) missing.push(`${what}: CSP`);
      if (response.headers.get("x-content-type-options") !== "nosniff") missing.push(`${what}: nosniff`);
    }
    expect(missing).toEqual([]);
  });
});

describe("sessions", () => {
  it("a viewer signing in over and over does not sign an acknowledger out", async () => {
    const alice = await signIn(ALICE_TOKEN);
    const firstViewer = await signIn(VIEWER_TOKEN);
    expect(await sessionStatus(alice)).toBe(200);
    // The viewer token is shared by everyone who may look: its holder can sign in as often as
    // they like, but only ever replaces viewer sessions (which stay bounded in number).
    for (let attempt = 0; attempt < 1100; attempt += 1) await signIn(VIEWER_TOKEN);
    expect(await sessionStatus(alice)).toBe(200);
    expect(await sessionStatus(firstViewer)).toBe(401);
  });
});
