import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { MemoryLogger } from "../log.js";
import { alertWebhookProblem, escapeSlackText, violationAlertText, WebhookAlertSink } from "./alert.js";

/** A local webhook receiver answering with the scripted statuses, then 200. */
async function receiver(
  statuses: number[],
  retryAfter = "0",
): Promise<{ url: string; bodies: unknown[]; server: Server }> {
  const bodies: unknown[] = [];
  const server = createServer((request, response) => {
    let text = "";
    request.on("data", (chunk: Buffer) => (text += chunk.toString()));
    request.on("end", () => {
      bodies.push(JSON.parse(text));
      const status = statuses.shift() ?? 200;
      response.writeHead(status, status === 429 ? { "retry-after": retryAfter } : {});
      response.end(status === 200 ? "ok" : "no");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/services/T000/B000/secret-part`, bodies, server };
}

function deliver(sink: WebhookAlertSink, text: string): Promise<boolean> {
  return new Promise((resolve) => {
    sink.send(text, resolve);
  });
}

describe("webhook alerts", () => {
  const servers: Server[] = [];
  afterEach(() => {
    for (const server of servers.splice(0)) server.close();
  });

  it("posts Slack-compatible JSON and retries 5xx and 429 with backoff", async () => {
    const target = await receiver([503, 429, 200]);
    servers.push(target.server);
    const logger = new MemoryLogger();
    const sink = new WebhookAlertSink({ url: target.url, logger, baseDelayMs: 5 });
    expect(await deliver(sink, "violation <one> & more")).toBe(true);
    // The sink encodes for Slack: callers send plain text.
    expect(target.bodies).toEqual([
      { text: "violation &lt;one&gt; &amp; more" },
      { text: "violation &lt;one&gt; &amp; more" },
      { text: "violation &lt;one&gt; &amp; more" },
    ]);
    const retries = logger.lines.filter((line) => line.message.includes("retrying"));
    expect(retries).toHaveLength(2);
    // The webhook URL is the credential: only its origin is ever logged.
    expect(JSON.stringify(logger.lines)).not.toContain("secret-part");
  });

  it("waits as registry requests do: Retry-After in seconds, an empty one means backoff", async () => {
    const waits: number[] = [];
    const clock = {
      now: () => Date.now(),
      sleep: (ms: number) => {
        waits.push(ms);
        return Promise.resolve();
      },
    };
    const asked = await receiver([429, 200], "7");
    const empty = await receiver([429, 200], "");
    servers.push(asked.server, empty.server);
    const logger = new MemoryLogger();
    expect(await deliver(new WebhookAlertSink({ url: asked.url, logger, clock }), "a")).toBe(true);
    expect(waits).toEqual([7000]);
    waits.length = 0;
    expect(
      await deliver(
        new WebhookAlertSink({ url: empty.url, logger, clock, baseDelayMs: 400, random: () => 0.5 }),
        "b",
      ),
    ).toBe(true);
    // Half of the first backoff ceiling (400 ms), not the 0 ms an empty header once meant.
    expect(waits).toEqual([200]);
  });

  it("gives up after the attempts, and at once on a client error", async () => {
    const failing = await receiver([500, 500, 500]);
    servers.push(failing.server);
    const sink = new WebhookAlertSink({
      url: failing.url,
      logger: new MemoryLogger(),
      attempts: 3,
      baseDelayMs: 5,
    });
    expect(await deliver(sink, "a")).toBe(false);
    expect(failing.bodies).toHaveLength(3);
    const refusing = await receiver([400]);
    servers.push(refusing.server);
    const refused = new WebhookAlertSink({ url: refusing.url, logger: new MemoryLogger(), baseDelayMs: 5 });
    expect(await deliver(refused, "b")).toBe(false);
    expect(refusing.bodies).toHaveLength(1);
  });

  it("keeps order, and reports queued alerts as undelivered when closed", async () => {
    const target = await receiver([]);
    servers.push(target.server);
    const sink = new WebhookAlertSink({ url: target.url, logger: new MemoryLogger() });
    const results = await Promise.all(["1", "2", "3"].map((text) => deliver(sink, text)));
    expect(results).toEqual([true, true, true]);
    expect(target.bodies).toEqual([{ text: "1" }, { text: "2" }, { text: "3" }]);
    sink.close();
    expect(await deliver(sink, "late")).toBe(false);
  });

  it("fails when nothing listens", async () => {
    const sink = new WebhookAlertSink({
      url: "http://127.0.0.1:1/hook",
      logger: new MemoryLogger(),
      attempts: 2,
      baseDelayMs: 1,
    });
    expect(await deliver(sink, "x")).toBe(false);
  });

  it("sends alert text inert and without the run's secrets", async () => {
    const target = await receiver([]);
    servers.push(target.server);
    const sink = new WebhookAlertSink({
      url: target.url,
      logger: new MemoryLogger(),
      redact: (text) => text.replaceAll("tok-123456", "REDACTED"),
    });
    expect(await deliver(sink, "event x\n<!channel> \u001b[31m\u202e ##[error] tok-123456")).toBe(true);
    expect(target.bodies).toEqual([
      { text: "event x\\n&lt;!channel&gt; \\u001b[31m\\u202e \\u0023#[error] REDACTED" },
    ]);
  });

  it("validates URLs and escapes Slack control characters", () => {
    expect(alertWebhookProblem("https://hooks.slack.com/services/x")).toBeUndefined();
    expect(alertWebhookProblem("ftp://x")).toMatch(/http/);
    expect(alertWebhookProblem("not a url")).toMatch(/not a URL/);
    expect(alertWebhookProblem("https://user:pw@x.example/")).toMatch(/credentials/);
    expect(escapeSlackText("<a> & <b>")).toBe("&lt;a&gt; &amp; &lt;b&gt;");
  });
});

describe("violation alert text", () => {
  const base = {
    rule: "unexpected-tag",
    action: "push",
    target: "reg.example/prod/app:rogue@sha256:abc",
    eventId: "e1",
    eventTime: "2026-01-01T00:00:00Z",
  };
  it("says the action and target once when the reason already says them", () => {
    expect(
      violationAlertText({
        ...base,
        reason: "pushed reg.example/prod/app:rogue@sha256:abc: no manifest asks for tag rogue",
      }),
    ).toBe(
      "promoter audit: violation (unexpected-tag) pushed reg.example/prod/app:rogue@sha256:abc: no manifest asks for tag rogue [event e1 at 2026-01-01T00:00:00Z]",
    );
    expect(
      violationAlertText({
        ...base,
        action: "delete",
        rule: "delete",
        reason: "deleted reg.example/prod/app:rogue@sha256:abc: production content is never deleted",
        eventTime: null,
      }),
    ).toBe(
      "promoter audit: violation (delete) deleted reg.example/prod/app:rogue@sha256:abc: production content is never deleted [event e1]",
    );
  });

  it("names the action and target when the reason does not", () => {
    expect(
      violationAlertText({
        ...base,
        rule: "child-of-unexpected-index",
        reason: "sha256:abc is a child manifest of reg.example/prod/app@sha256:def, itself a violation",
      }),
    ).toBe(
      "promoter audit: violation (child-of-unexpected-index) push reg.example/prod/app:rogue@sha256:abc: sha256:abc is a child manifest of reg.example/prod/app@sha256:def, itself a violation [event e1 at 2026-01-01T00:00:00Z]",
    );
  });
});
