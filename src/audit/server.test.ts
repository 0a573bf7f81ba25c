import { mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
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
import { MAX_FINDINGS_PAGE, startAuditServer, tokenMatches, type AuditServer } from "./server.js";

const TOKEN = "0123456789abcdef-test-token";
const READER_TOKEN = "reader-0123456789abcdef-token";
const PROMOTED = `sha256:${"1".repeat(64)}` as Digest;
const OTHER = `sha256:${"2".repeat(64)}` as Digest;
const MAX_BODY = 4096;

function envelope(id: string, target: Record<string, unknown>, action = "push") {
  return {
    events: [
      {
        id,
        timestamp: "2026-01-31T12:00:00Z",
        action,
        target: {
          mediaType: "application/vnd.oci.image.manifest.v1+json",
          repository: "prod/app",
          url: `http://reg.example/v2/prod/app/manifests/${String(target.digest)}`,
          ...target,
        },
        request: { host: "internal:5000" },
      },
    ],
  };
}

describe("audit HTTP server", () => {
  let directory: string;
  let store: FindingStore;
  let auditor: Auditor;
  let server: AuditServer;
  let metrics: AuditMetrics;

  beforeAll(async () => {
    directory = mkdtempSync(path.join(os.tmpdir(), "promoter-audit-server-test-"));
    store = FindingStore.open(path.join(directory, "audit.db"));
    metrics = new AuditMetrics();
    metrics.lastManifestLoad = Date.now();
    const logger = new MemoryLogger();
    auditor = new Auditor(appDesiredState({ [PROMOTED]: ["1.0"] }), {
      store,
      logger,
      metrics,
      lookup: {
        manifest: () => Promise.resolve(undefined),
        verifiedTagFor: () => undefined,
      },
    });
    auditor.start();
    server = await startAuditServer(
      {
        auditor,
        store,
        metrics,
        token: TOKEN,
        readerToken: READER_TOKEN,
        hostMapping: parseHostMapping(["internal:5000=reg.example"]),
        logger,
        maxBodyBytes: MAX_BODY,
      },
      { host: "127.0.0.1", port: 0 },
    );
  });

  afterAll(async () => {
    await server.close();
    await auditor.close();
    store.close();
    rmSync(directory, { recursive: true, force: true });
  });

  async function post(
    route: string,
    body: unknown,
    headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` },
  ) {
    const response = await fetch(`${server.url}${route}`, {
      method: "POST",
      headers: { "content-type": "application/vnd.docker.distribution.events.v1+json", ...headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  function read(query: string, token = READER_TOKEN): Promise<Response> {
    return fetch(`${server.url}/findings${query}`, { headers: { authorization: `Bearer ${token}` } });
  }

  async function findings(query = ""): Promise<Record<string, unknown>[]> {
    await auditor.idle();
    const response = await read(query);
    expect(response.status).toBe(200);
    return ((await response.json()) as { findings: Record<string, unknown>[] }).findings;
  }

  async function alive(): Promise<void> {
    const response = await fetch(`${server.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: "ok", desiredRepositories: 1 });
  }

  it("compares tokens in constant time and exactly", () => {
    expect(tokenMatches(TOKEN, TOKEN)).toBe(true);
    expect(tokenMatches(`${TOKEN}x`, TOKEN)).toBe(false);
    expect(tokenMatches(undefined, TOKEN)).toBe(false);
    expect(tokenMatches("", TOKEN)).toBe(false);
  });

  it("refuses requests without the right token and records nothing", async () => {
    const body = envelope("unauthorized-1", { digest: OTHER, tag: "evil" });
    expect((await post("/events", body, {})).status).toBe(401);
    expect(
      (await post("/events", body, { authorization: "Bearer wrong-token-of-enough-length" })).status,
    ).toBe(401);
    expect((await post("/events", body, { authorization: `Basic ${TOKEN}` })).status).toBe(401);
    expect((await post(`/pubsub?token=wrong`, {}, {})).status).toBe(401);
    expect(await findings()).toEqual([]);
    expect(metrics.rejected.get("unauthorized")).toBe(4);
    await alive();
  });

  it("refuses oversized bodies, declared or streamed, and stays up", async () => {
    const big = envelope("big", { digest: OTHER, tag: "x".repeat(100), padding: "y".repeat(MAX_BODY) });
    expect((await post("/events", big)).status).toBe(413);
    // No Content-Length: the body is counted while it streams.
    const status = await new Promise<number>((resolve, reject) => {
      const request = httpRequest(
        `${server.url}/events`,
        { method: "POST", headers: { authorization: `Bearer ${TOKEN}`, "transfer-encoding": "chunked" } },
        (response) => {
          response.resume();
          resolve(response.statusCode ?? 0);
        },
      );
      request.on("error", reject);
      for (let i = 0; i < 8; i++) request.write("x".repeat(1024));
      request.end();
    });
    expect(status).toBe(413);
    expect(await findings()).toEqual([]);
    await alive();
  });

  it("refuses malformed bodies with a reason and stays up", async () => {
    const notJson = await post("/events", "{not json");
    expect(notJson.status).toBe(400);
    expect(notJson.body.error).toMatch(/not valid JSON/);
    expect((await post("/events", { nope: true })).status).toBe(400);
    const badEvent = await post("/events", { events: [{ id: "x", action: "push", target: {} }] });
    expect(badEvent.status).toBe(400);
    expect(badEvent.body.error).toMatch(/repository/);
    expect((await post("/pubsub", { message: { messageId: "1", data: "!!" } })).status).toBe(400);
    expect(
      (
        await fetch(`${server.url}/events`, {
          method: "POST",
          headers: { authorization: `Bearer ${TOKEN}`, "content-type": "text/plain" },
          body: "{}",
        })
      ).status,
    ).toBe(415);
    expect(await findings()).toEqual([]);
    await alive();
  });

  it("records events once, attributes them by their endpoint, and serves findings with filters", async () => {
    const verified = envelope("ok-1", { digest: PROMOTED, tag: "1.0" });
    const violation = envelope("bad-1", { digest: OTHER, tag: "evil" });
    const first = await post("/events/Reg.Example", verified);
    expect(first).toEqual({ status: 200, body: { accepted: 1, duplicates: 0, ignored: 0, rejected: [] } });
    expect((await post("/events/reg.example", violation)).body.accepted).toBe(1);
    expect((await post("/events/reg.example", violation)).body.duplicates).toBe(1);
    const pull = envelope("pull-1", { digest: PROMOTED }, "pull");
    expect((await post("/events/reg.example", pull)).body.ignored).toBe(1);
    // Not a registry host: refused with the reason (the registry retries, the log says why).
    const badEndpoint = await post("/events/not%20a%20host", violation);
    expect(badEndpoint.status).toBe(400);
    expect(badEndpoint.body.error).toMatch(/\/events\/<registry> names a registry host/);
    expect((await post("/events/reg.example/prod", violation)).status).toBe(400);
    expect((await post("/events/%E0%A4%A", violation)).status).toBe(400);
    expect((await post("/events/not%20a%20host", violation, {})).status).toBe(401);

    const all = await findings();
    expect(all.map((finding) => [finding.verdict, finding.tag])).toEqual([
      ["violation", "evil"],
      ["verified", "1.0"],
    ]);
    expect(all[0]).toMatchObject({
      action: "push",
      repository: "reg.example/prod/app",
      digest: OTHER,
      rule: "unexpected-tag",
    });
    expect(all[0]?.eventId).toMatch(/^distribution:bad-1#[0-9a-f]{32}$/);
    // The Host header (internal:5000) is the pusher's: shown, and `SEEN=NAME` does not apply to it.
    expect(all[0]?.reason).toMatch(/\(the pusher called the registry "internal:5000"\)$/);
    expect((await findings("?verdict=violation")).map((finding) => finding.tag)).toEqual(["evil"]);
    expect(await findings("?repository=reg.example/prod/")).toHaveLength(2);
    expect(await findings("?repository=reg.example/prod/other")).toHaveLength(0);
    expect(await findings("?limit=1")).toHaveLength(1);
    expect(await findings("?since=2999-01-01T00:00:00Z")).toHaveLength(0);

    // POST /events names no registry, and no --registry-host NAME does: a finding, never ignored.
    expect((await post("/events", envelope("plain-1", { digest: PROMOTED, tag: "1.0" }))).body.accepted).toBe(
      1,
    );
    expect((await findings("?repository=unattributed.invalid/"))[0]).toMatchObject({
      verdict: "violation",
      rule: "unattributed-event",
      tag: "1.0",
    });
    for (const bad of [
      "?verdict=maybe",
      "?limit=0",
      "?limit=x",
      "?since=yesterday",
      `?limit=${MAX_FINDINGS_PAGE + 1}`,
    ]) {
      expect((await read(bad)).status).toBe(400);
    }
  });

  it("serves findings to the reader token only, a page at a time with a cursor", async () => {
    for (const headers of [
      {},
      { authorization: `Bearer ${TOKEN}` },
      { authorization: `Bearer ${READER_TOKEN}x` },
    ]) {
      expect((await fetch(`${server.url}/findings`, { headers })).status).toBe(401);
    }
    await auditor.idle();
    const first = (await (await read("?limit=1&repository=reg.example/")).json()) as {
      findings: { seq: number }[];
      next: number | null;
    };
    expect(first.findings).toHaveLength(1);
    expect(first.next).toBe(first.findings[0]?.seq);
    const second = (await (await read(`?limit=1&repository=reg.example/&before=${first.next}`)).json()) as {
      findings: { seq: number }[];
      next: number | null;
    };
    expect(second.findings[0]?.seq).toBeLessThan(first.findings[0]?.seq ?? 0);
    expect(second.next).toBeNull();
  });

  it("accepts Pub/Sub pushes with the token in the query", async () => {
    const message = {
      message: {
        data: Buffer.from(
          JSON.stringify({ action: "DELETE", digest: `reg.example/prod/app@${PROMOTED}` }),
        ).toString("base64"),
        messageId: "pubsub-1",
      },
      subscription: "projects/p/subscriptions/s",
    };
    const response = await post(`/pubsub?token=${TOKEN}`, message, { "content-type": "application/json" });
    expect(response.body.accepted).toBe(1);
    expect((await findings("?verdict=violation&repository=reg.example/"))[0]).toMatchObject({
      action: "delete",
      rule: "delete",
      source: "pubsub",
    });
  });

  it("exposes Prometheus metrics and answers unknown routes", async () => {
    const response = await fetch(`${server.url}/metrics`);
    expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0.0.4/);
    const text = await response.text();
    expect(text).toMatch(/^promoter_audit_events_total\{verdict="violation"\} 3$/m);
    expect(text).toMatch(/^promoter_audit_events_total\{verdict="duplicate"\} 1$/m);
    expect(text).toMatch(/^promoter_audit_findings\{verdict="verified"\} 1$/m);
    expect(text).toMatch(/^promoter_audit_requests_rejected_total\{reason="unauthorized"\} 8$/m);
    expect(text).toMatch(/^promoter_audit_manifest_reload_age_seconds \d+\.\d+$/m);
    expect(text).toMatch(/^promoter_audit_alert_failures_total 0$/m);
    expect((await fetch(`${server.url}/nothing`)).status).toBe(404);
    expect((await fetch(`${server.url}/events`)).status).toBe(405);
    expect((await fetch(`${server.url}/events/reg.example`)).status).toBe(405);
    expect((await fetch(`${server.url}/findings`, { method: "DELETE" })).status).toBe(405);
  });
});
