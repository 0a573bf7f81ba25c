import { describe, expect, it } from "vitest";
import { silentLogger } from "../../log.js";
import type { RegistryHost } from "../../reference/index.js";
import { Redactor } from "../redact.js";
import type { Transport } from "../transport/types.js";
import { DOCKER_HUB_API_HOST, RegistryEndpoint } from "./endpoint.js";

const transport: Transport = { send: () => Promise.reject(new Error("no network in this test")) };

function endpoint(host: string, scheme: "http" | "https" = "https") {
  return new RegistryEndpoint(host as RegistryHost, scheme, transport, new Redactor(), silentLogger, {
    commitTimeoutMs: 1000,
  });
}

describe("RegistryEndpoint", () => {
  it("serves docker.io at registry-1.docker.io", () => {
    const hub = endpoint("docker.io");
    expect(hub.origin).toBe(`https://${DOCKER_HUB_API_HOST}`);
    expect(hub.url("/v2/library/ubuntu/tags/list", { n: "10", last: undefined }).href).toBe(
      "https://registry-1.docker.io/v2/library/ubuntu/tags/list?n=10",
    );
    expect(endpoint("127.0.0.1:5000", "http").origin).toBe("http://127.0.0.1:5000");
  });

  it("builds URLs on its own origin only", () => {
    const registry = endpoint("r.example:5000");
    expect(registry.url("/v2/a/b/manifests/v1").href).toBe("https://r.example:5000/v2/a/b/manifests/v1");
    // A path must be absolute: joined to the origin, `@host/` or `.host/` would change the host.
    for (const path of ["@other.example/v2/", ".other.example/v2/", "v2/a", ""]) {
      expect(() => registry.url(path)).toThrow(/not an absolute API path/);
    }
    expect(registry.url("//other.example/v2/").host).toBe("r.example:5000");
  });

  it("runs updates of one key one after another", async () => {
    const registry = endpoint("r.example");
    const order: string[] = [];
    // The first update holds its key until the test lets it go, after the others were queued.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const slow = registry.exclusive("tag", async () => {
      order.push("a-start");
      await held;
      order.push("a-end");
    });
    const fast = registry.exclusive("tag", () => {
      order.push("b");
      return Promise.resolve();
    });
    const other = registry.exclusive("other", () => {
      order.push("c");
      return Promise.resolve();
    });
    // Another key is not held up; the same key waits.
    await other;
    expect(order).toContain("c");
    expect(order).not.toContain("b");
    release();
    await Promise.all([slow, fast, other]);
    expect(order.indexOf("b")).toBeGreaterThan(order.indexOf("a-end"));
    expect(order.indexOf("c")).toBeLessThan(order.indexOf("a-end"));
  });
});
