import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import * as undici from "undici";
import { describe, expect, it } from "vitest";
import { Agent, dispatchRequest, requestOn } from "./undici-core.js";

describe("undici's parts loaded on their own", () => {
  it("are the very ones undici's index exports (an upgrade that moves them fails here)", () => {
    expect(Agent).toBe(undici.Agent);
    // The index puts its request API on every dispatcher: the same function.
    expect(dispatchRequest).toBe((undici.Dispatcher.prototype as { request?: unknown }).request);
  });

  it("request a URL, its query included, on the dispatcher given", async () => {
    const server = createServer((request, response) => {
      response.writeHead(200, { "x-seen": `${request.method} ${request.url}` }).end("ok");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const agent = new Agent();
    try {
      const { port } = server.address() as AddressInfo;
      const url = new URL(`http://127.0.0.1:${port}/v2/a/tags/list?n=2&last=x`);
      const response = await requestOn(agent, url, { method: "GET" });
      expect(response.statusCode).toBe(200);
      expect(response.headers["x-seen"]).toBe("GET /v2/a/tags/list?n=2&last=x");
      expect(await response.body.text()).toBe("ok");
    } finally {
      await agent.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
