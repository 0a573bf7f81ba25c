import { describe, expect, it } from "vitest";
import {
  indexChildrenOf,
  MalformedEventError,
  parseDistributionEnvelope,
  parseHostMapping,
  parseJsonBody,
  parsePubSubPush,
  plainEventsAttribution,
  IDENTITY_HOST_MAPPING,
  UNATTRIBUTED_HOST,
  type EventAttribution,
} from "./event.js";

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const D3 = `sha256:${"3".repeat(64)}`;
/** Events that came to POST /events/registry.example.io. */
const REGISTRY: EventAttribution = { kind: "endpoint", host: "registry.example.io" };
/** An event key: the sender's id, then the content fingerprint. */
const key = (id: string): RegExp =>
  new RegExp(`^${id.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}#[0-9a-f]{32}$`);

/** Shapes as distribution 2.8.2 sent them on loopback (captured, ids shortened). */
function distributionEvent(overrides: Record<string, unknown> = {}, target: Record<string, unknown> = {}) {
  return {
    id: "f06142e4-7664-43cb-9f6e-e3732175f186",
    timestamp: "2026-11-30T01:31:22.089332411Z",
    action: "push",
    target: {
      mediaType: "application/vnd.oci.image.index.v1+json",
      size: 491,
      digest: D1,
      length: 491,
      repository: "prod/foo",
      url: `http://127.0.0.1:18998/v2/prod/foo/manifests/${D1}`,
      tag: "v1",
      ...target,
    },
    request: {
      id: "2245a457",
      addr: "127.0.0.1:40148",
      host: "127.0.0.1:18998",
      method: "PUT",
      useragent: "skopeo/1.9.3",
    },
    actor: {},
    source: { addr: "vm:18998", instanceID: "f36e8e22" },
    ...overrides,
  };
}

function pubsub(payload: unknown, messageId: unknown = "4711") {
  return {
    message: {
      data: Buffer.from(JSON.stringify(payload)).toString("base64"),
      messageId,
      publishTime: "2026-01-31T12:00:00.000Z",
      attributes: {},
    },
    subscription: "projects/p/subscriptions/audit",
  };
}

describe("distribution envelope", () => {
  it("normalises a tagged index push with references", () => {
    const event = distributionEvent(
      {},
      {
        references: [
          { mediaType: "application/vnd.oci.image.manifest.v1+json", size: 400, digest: D2 },
          { mediaType: "application/vnd.oci.image.manifest.v1+json", size: 400, digest: D3 },
        ],
      },
    );
    const { events, problems } = parseDistributionEnvelope({ events: [event] }, REGISTRY);
    expect(problems).toEqual([]);
    expect(events[0]?.id).toMatch(key("distribution:f06142e4-7664-43cb-9f6e-e3732175f186"));
    expect(events).toEqual([
      {
        id: events[0]?.id,
        source: "distribution",
        timestamp: "2026-11-30T01:31:22.089332411Z",
        action: "push",
        targetKind: "manifest",
        attribution: "endpoint",
        host: "registry.example.io",
        requestHost: "127.0.0.1:18998",
        repository: "prod/foo",
        digest: D1,
        tag: "v1",
        mediaType: "application/vnd.oci.image.index.v1+json",
        references: [
          { digest: D2, mediaType: "application/vnd.oci.image.manifest.v1+json" },
          { digest: D3, mediaType: "application/vnd.oci.image.manifest.v1+json" },
        ],
      },
    ]);
    expect(indexChildrenOf(events[0]!)).toEqual([D2, D3]);
  });

  it("tells blobs, mounts and deletes apart", () => {
    const blob = distributionEvent(
      { id: "b" },
      {
        mediaType: "application/octet-stream",
        digest: D2,
        url: `http://127.0.0.1:18998/v2/prod/foo/blobs/${D2}`,
        tag: undefined,
      },
    );
    const mount = distributionEvent(
      { id: "m", action: "mount" },
      { mediaType: "application/octet-stream", url: undefined, tag: undefined, fromRepository: "prod/bar" },
    );
    const deleteDigest = {
      id: "d",
      action: "delete",
      target: { digest: D1, repository: "prod/bar" },
      request: { host: "r.example" },
    };
    const deleteTag = {
      id: "t",
      action: "delete",
      target: { tag: "v1", repository: "prod/bar" },
      request: { host: "r.example" },
    };
    const { events } = parseDistributionEnvelope(
      { events: [blob, mount, deleteDigest, deleteTag] },
      REGISTRY,
    );
    expect(events.map((event) => [event.action, event.targetKind, event.tag, event.digest])).toEqual([
      ["push", "blob", undefined, D2],
      ["mount", "blob", undefined, D1],
      ["delete", "unknown", undefined, D1],
      ["delete", "unknown", "v1", undefined],
    ]);
    expect(events[1]?.fromRepository).toBe("prod/bar");
    expect(events[2]).toMatchObject({ host: "registry.example.io", requestHost: "r.example" });
  });

  it("takes the registry from the endpoint, never from the Host header or the URL", () => {
    const spoofed = [
      distributionEvent({ id: "h", request: { host: "not-production.example" } }),
      distributionEvent({ id: "u", request: {} }, { url: "http://localhost:18998/v2/prod/foo/manifests/v1" }),
    ];
    const attributed = parseDistributionEnvelope({ events: spoofed }, REGISTRY);
    expect(attributed.events.map((event) => [event.host, event.attribution, event.requestHost])).toEqual([
      ["registry.example.io", "endpoint", "not-production.example"],
      ["registry.example.io", "endpoint", undefined],
    ]);
    // POST /events: only --registry-host NAME attributes it; SEEN=NAME never applies to a Host.
    const plain = parseDistributionEnvelope(
      { events: spoofed },
      plainEventsAttribution(parseHostMapping(["not-production.example=registry.example.io"])),
    );
    expect(plain.events.map((event) => [event.host, event.attribution])).toEqual([
      [UNATTRIBUTED_HOST, "none"],
      [UNATTRIBUTED_HOST, "none"],
    ]);
    expect(plain.events[0]?.unattributed).toMatch(/POST \/events\/<registry>/);
    const named = parseDistributionEnvelope(
      { events: spoofed },
      plainEventsAttribution(parseHostMapping(["Registry.Example.io"])),
    );
    expect(named.events.map((event) => event.host)).toEqual(["registry.example.io", "registry.example.io"]);
  });

  it("keys events on their content: a reused id is another event, a redelivery the same", () => {
    const first = distributionEvent({ id: "same" });
    const forged = distributionEvent({ id: "same" }, { tag: "v2" });
    const [a, b, again] = parseDistributionEnvelope({ events: [first, forged, first] }, REGISTRY).events;
    expect(a?.id).toMatch(key("distribution:same"));
    expect(b?.id).toMatch(key("distribution:same"));
    expect(a?.id).not.toBe(b?.id);
    expect(again?.id).toBe(a?.id);
    // The same notification sent for another registry is another event.
    const elsewhere = parseDistributionEnvelope(
      { events: [first] },
      { kind: "endpoint", host: "other.example" },
    );
    expect(elsewhere.events[0]?.id).not.toBe(a?.id);
  });

  it("skips events it cannot use and says why", () => {
    const { events, problems } = parseDistributionEnvelope(
      {
        events: [
          distributionEvent({ id: "ok" }),
          "not an object",
          distributionEvent({ id: undefined }),
          distributionEvent({ id: "a", action: "explode" }),
          distributionEvent({ id: "b" }, { repository: "Bad/Name" }),
          distributionEvent({ id: "c" }, { digest: "sha256:short" }),
          distributionEvent({ id: "d" }, { tag: "bad tag" }),
          distributionEvent({ id: "f" }, { references: [{ digest: "nope" }] }),
        ],
      },
      REGISTRY,
    );
    expect(events).toHaveLength(1);
    expect(events[0]?.id).toMatch(key("distribution:ok"));
    expect(problems.map((problem) => problem.index)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(problems[2]?.reason).toMatch(/unknown action/);
  });

  it.each([
    [{}, /envelope/],
    [{ events: "x" }, /envelope/],
    [[], /envelope/],
    [{ events: new Array(1001).fill({}) }, /too many events/],
  ])("refuses a malformed envelope %#", (body, message) => {
    expect(() => parseDistributionEnvelope(body, REGISTRY)).toThrow(message);
  });

  it("refuses bodies that are not UTF-8 JSON", () => {
    expect(() => parseJsonBody(Buffer.from("{nope"))).toThrow(MalformedEventError);
    expect(() => parseJsonBody(Buffer.from([0xff, 0xfe, 0x00]))).toThrow(/UTF-8/);
  });
});

describe("Pub/Sub push (GCR / Artifact Registry payloads)", () => {
  it("normalises an INSERT with digest and tag", () => {
    const { events, problems } = parsePubSubPush(
      pubsub({
        action: "INSERT",
        digest: `gcr.io/my-project/hello@${D1}`,
        tag: "gcr.io/my-project/hello:1.1",
      }),
      IDENTITY_HOST_MAPPING,
    );
    expect(problems).toEqual([]);
    expect(events[0]?.id).toMatch(key("pubsub:4711"));
    expect(events).toEqual([
      {
        id: events[0]?.id,
        source: "pubsub",
        timestamp: "2026-01-31T12:00:00.000Z",
        action: "push",
        targetKind: "manifest",
        attribution: "payload",
        host: "gcr.io",
        repository: "my-project/hello",
        digest: D1,
        tag: "1.1",
      },
    ]);
  });

  it("normalises a tagless INSERT and a tag DELETE from Artifact Registry", () => {
    const insert = parsePubSubPush(
      pubsub({ action: "INSERT", digest: `us-docker.pkg.dev/p/images/app@${D2}` }, "1"),
      IDENTITY_HOST_MAPPING,
    );
    expect(insert.events[0]).toMatchObject({
      action: "push",
      host: "us-docker.pkg.dev",
      repository: "p/images/app",
      digest: D2,
    });
    expect(insert.events[0]?.tag).toBeUndefined();
    const removal = parsePubSubPush(
      {
        message: {
          ...pubsub({ action: "DELETE", tag: "us-docker.pkg.dev/p/images/app:v2" }).message,
          messageId: undefined,
          message_id: "2",
        },
      },
      IDENTITY_HOST_MAPPING,
    );
    expect(removal.events[0]).toMatchObject({ action: "delete", tag: "v2" });
    expect(removal.events[0]?.id).toMatch(key("pubsub:2"));
  });

  it("keys messages on their content, not on the messageId a sender chose", () => {
    const real = pubsub({ action: "INSERT", digest: `gcr.io/p/a@${D1}`, tag: "gcr.io/p/a:rogue" }, "900001");
    const forged = pubsub({ action: "INSERT", digest: `gcr.io/p/a@${D2}`, tag: "gcr.io/p/a:1.0" }, "900001");
    const [realId, forgedId, redeliveredId] = [real, forged, real].map(
      (body) => parsePubSubPush(body, IDENTITY_HOST_MAPPING).events[0]?.id,
    );
    expect(realId).toMatch(key("pubsub:900001"));
    expect(forgedId).not.toBe(realId);
    expect(redeliveredId).toBe(realId);
  });

  it("maps hosts explicitly, never through the distribution fallback", () => {
    const payload = pubsub({ action: "INSERT", digest: `gcr.io/p/a@${D1}` });
    expect(parsePubSubPush(payload, parseHostMapping(["elsewhere.io"])).events[0]?.host).toBe("gcr.io");
    expect(parsePubSubPush(payload, parseHostMapping(["gcr.io=mirror.example"])).events[0]?.host).toBe(
      "mirror.example",
    );
  });

  it("reports payload problems as skipped events", () => {
    const cases = [
      { action: "UPDATE", digest: `gcr.io/p/a@${D1}` },
      { action: "INSERT" },
      { action: "INSERT", digest: "gcr.io/p/a:latest" },
      { action: "INSERT", digest: `gcr.io/p/a@${D1}`, tag: "gcr.io/p/b:1" },
      { action: "INSERT", tag: "gcr.io/p/a" },
      { action: "INSERT", digest: "not a reference at all" },
    ];
    for (const payload of cases) {
      const result = parsePubSubPush(pubsub(payload), IDENTITY_HOST_MAPPING);
      expect(result.events).toEqual([]);
      expect(result.problems).toHaveLength(1);
    }
  });

  it.each([
    [{}, /Pub\/Sub push/],
    [{ message: { data: "e30=" } }, /messageId/],
    [{ message: { messageId: "1" } }, /no data/],
    [{ message: { messageId: "1", data: "%%%" } }, /base64/],
    [{ message: { messageId: "1", data: Buffer.from("[1]").toString("base64") } }, /JSON object/],
    [{ message: { messageId: "1", data: Buffer.from("{x").toString("base64") } }, /not valid JSON/],
  ])("refuses a malformed push %#", (body, message) => {
    expect(() => parsePubSubPush(body, IDENTITY_HOST_MAPPING)).toThrow(message);
  });
});

describe("--registry-host", () => {
  it("parses mappings and refuses bad ones", () => {
    const mapping = parseHostMapping(["a.example:5000=B.example", "c.example"]);
    expect([...mapping.explicit]).toEqual([["a.example:5000", "b.example"]]);
    expect(mapping.fallback).toBe("c.example");
    expect(() => parseHostMapping(["x.example", "y.example"])).toThrow(/once/);
    expect(() => parseHostMapping(["bad host=x.example"])).toThrow(/--registry-host/);
    expect(() => parseHostMapping(["=x.example"])).toThrow(/empty/);
  });
});
