import { afterEach, describe, expect, it } from "vitest";
import { findFreePort } from "../../../test/support/registry-harness.js";
import { ScriptedRegistry, sendJson } from "../../../test/support/scripted-registry.js";
import type { Logger, LogLevel } from "../../log.js";
import type { RegistryError } from "../errors.js";
import { CircuitBreakerTransport } from "./circuit-breaker.js";
import { SecurityPolicy } from "./security-policy.js";
import type { HttpRequest } from "./types.js";
import { UndiciTransport } from "./undici-transport.js";

const context = { operation: "test", registry: "scripted", repository: "app" };

describe("CircuitBreakerTransport", () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(cleanups.splice(0).map((cleanup) => cleanup()));
  });

  function breaker(headersTimeoutMs = 60_000) {
    const network = new UndiciTransport({ policy: new SecurityPolicy(), headersTimeoutMs });
    const lines: string[] = [];
    const logger: Logger = {
      log: (level: LogLevel, message: string) => {
        lines.push(`${level}: ${message}`);
      },
    };
    cleanups.push(() => network.close());
    return { transport: new CircuitBreakerTransport(network, { logger }), lines };
  }

  async function registry(): Promise<ScriptedRegistry> {
    const server = await ScriptedRegistry.start();
    cleanups.push(() => server.stop());
    return server;
  }

  const get = (url: string): HttpRequest => ({ method: "GET", url: new URL(url), context });

  it("opens on a refused connection: later requests fail at once with the first cause, said once", async () => {
    const { transport, lines } = breaker();
    const host = `127.0.0.1:${await findFreePort()}`;
    const errors: RegistryError[] = [];
    for (const path of ["/v2/a", "/v2/b", "/v2/c"]) {
      errors.push(
        (await transport
          .send(get(`http://${host}${path}`))
          .catch((caught: unknown) => caught)) as RegistryError,
      );
    }
    expect(errors.map((error) => error.code)).toEqual([
      "registry-unreachable",
      "registry-unreachable",
      "registry-unreachable",
    ]);
    // Each error names its own request and the host's first cause.
    expect(errors[2]?.message).toMatch(
      /network error: ECONNREFUSED .*is unreachable.*\(GET http:\/\/127\.0\.0\.1:\d+\/v2\/c\)/,
    );
    expect(lines.filter((line) => line.includes("is unreachable"))).toHaveLength(1);
    expect(transport.report()).toEqual([
      expect.objectContaining({ host, code: "registry-network", requestsNotSent: 2 }),
    ]);
  });

  it("keeps other hosts, and HTTP errors, out of it", async () => {
    const { transport } = breaker();
    const server = await registry();
    server.on("GET", "/v2/busy", (_request, response) => {
      sendJson(response, 503, {});
    });
    server.on("GET", "/v2/", (_request, response) => {
      sendJson(response, 200, {});
    });
    await transport.send(get(`http://127.0.0.1:${await findFreePort()}/v2/`)).catch(() => undefined);
    for (let attempt = 0; attempt < 3; attempt++) {
      expect((await transport.send(get(`${server.url}/v2/busy`))).status).toBe(503);
    }
    expect((await transport.send(get(`${server.url}/v2/`))).status).toBe(200);
    expect(transport.report().map((entry) => entry.host)).not.toContain(server.host);
  });

  it("opens after two silent timeouts in a row, not after one followed by an answer", async () => {
    const { transport } = breaker(300);
    const server = await registry();
    let silent = true;
    server.on("GET", /^\/v2\//, (_request, response) => {
      // Silent: never answers (the client gives up); else answers.
      if (!silent) sendJson(response, 200, {});
    });
    const first = await transport.send(get(`${server.url}/v2/1`)).catch((caught: unknown) => caught);
    expect((first as RegistryError).code).toBe("registry-timeout");
    silent = false;
    expect((await transport.send(get(`${server.url}/v2/2`))).status).toBe(200);
    silent = true;
    const third = await transport.send(get(`${server.url}/v2/3`)).catch((caught: unknown) => caught);
    expect((third as RegistryError).code).toBe("registry-timeout");
    const fourth = await transport.send(get(`${server.url}/v2/4`)).catch((caught: unknown) => caught);
    expect((fourth as RegistryError).code).toBe("registry-unreachable");
    const fifth = await transport.send(get(`${server.url}/v2/5`)).catch((caught: unknown) => caught);
    expect((fifth as RegistryError).code).toBe("registry-unreachable");
    // The fifth request never reached the server.
    expect(server.requestsTo("/v2/5")).toHaveLength(0);
  });
});
