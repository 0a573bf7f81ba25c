/**
 * CPU per tag check through the whole registry client (issue 15): a registry answering every
 * `HEAD /v2/<repo>/manifests/<tag>` at once from a child process (so its CPU is not counted),
 * and this process resolving tags through `createStoreProvider` (auth, retry, per-host limits,
 * circuit breaker, redirects, undici) with 16 in flight. Reported: the client's CPU per request
 * (user + system), over plain HTTP/1.1 and over TLS with HTTP/1.1 and HTTP/2, next to undici's
 * own `request` and `dispatch` on the same server (the floor under our layers).
 *
 *   npm run bench:request
 *   BENCH_REQUESTS=50000 npm run bench:request
 *   node --cpu-prof .build/bench/request-cpu.js      (after npm run bench:request once)
 */
import { fork } from "node:child_process";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { Agent, request as undiciRequest } from "undici";
import { runBounded } from "../src/concurrency/index.js";
import { parseRepositoryPath, parseTag, type RegistryHost } from "../src/reference/index.js";
import { createStoreProvider } from "../src/registry/index.js";
import { selfSignedCertificate } from "../test/support/scripted-registry.js";

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 20_000);
/** The per-host limit's default: requests in flight to one registry. */
const IN_FLIGHT = 16;
/** The hosts of registry.k8s.io's tree (gcr.io and 22 mirrors), for the many-hosts case. */
const MANY_HOSTS = 23;
const DIGEST = `sha256:${"a".repeat(64)}`;

function answer(_request: IncomingMessage, response: ServerResponse): void {
  response
    .writeHead(200, {
      "content-type": "application/vnd.oci.image.manifest.v1+json",
      "content-length": "1234",
      "docker-content-digest": DIGEST,
      "docker-distribution-api-version": "registry/2.0",
    })
    .end();
}

/** The child: one plain and one TLS server, ports sent to the parent. */
async function serve(): Promise<void> {
  const tls = JSON.parse(process.env.BENCH_TLS_MATERIAL ?? "{}") as { key: string; cert: string };
  const plain = createHttpServer(answer);
  // node:https speaks HTTP/1.1 only; node:http2's server answers the HTTP/2 case.
  const secure = createHttpsServer(tls, answer);
  const { createSecureServer } = await import("node:http2");
  const h2 = createSecureServer({ ...tls, allowHTTP1: true }, answer as never);
  const listen = (server: { listen: (port: number, host: string, done: () => void) => void }) =>
    new Promise<void>((resolve) => {
      server.listen(0, "127.0.0.1", resolve);
    });
  await Promise.all([listen(plain), listen(secure), listen(h2)]);
  const port = (server: { address: () => AddressInfo | string | null }) =>
    (server.address() as AddressInfo).port;
  process.send?.({ plain: port(plain), tls: port(secure), h2: port(h2) });
}

async function measure(
  name: string,
  check: (index: number) => Promise<void>,
  inFlight: number = IN_FLIGHT,
): Promise<void> {
  // A first pass warms the JIT and opens the connections; the second is measured.
  for (const measured of [false, true]) {
    const before = process.cpuUsage();
    const started = performance.now();
    await runBounded(
      Array.from({ length: REQUESTS }, (_, index) => index),
      inFlight,
      check,
    );
    if (!measured) continue;
    const cpu = process.cpuUsage(before);
    const perRequest = (cpu.user + cpu.system) / REQUESTS;
    console.log(
      `${name.padEnd(34)} ${perRequest.toFixed(1).padStart(6)} µs CPU per request  (${Math.round(performance.now() - started)} ms wall)`,
    );
  }
}

async function main(): Promise<void> {
  const names = Array.from({ length: MANY_HOSTS }, (_, index) => `registry-${index}.test`);
  const certificate = await selfSignedCertificate(["registry.test", ...names]);
  const child = fork(fileURLToPath(import.meta.url), ["serve"], {
    env: { ...process.env, BENCH_TLS_MATERIAL: JSON.stringify(certificate) },
  });
  const ports = await new Promise<{ plain: number; tls: number; h2: number }>((resolve) => {
    child.once("message", (message) => {
      resolve(message as { plain: number; tls: number; h2: number });
    });
  });
  try {
    console.log(
      `${REQUESTS} manifest HEADs, ${IN_FLIGHT} in flight (${IN_FLIGHT * MANY_HOSTS} across ${MANY_HOSTS} hosts), server in another process:`,
    );
    const agent = new Agent();
    const plainUrl = `http://127.0.0.1:${ports.plain}/v2/bench/app/manifests/v1`;
    await measure("undici request (HTTP/1.1)", async () => {
      const response = await undiciRequest(plainUrl, { method: "HEAD", reset: false, dispatcher: agent });
      await response.body.dump();
    });
    await agent.close();

    const cases: { name: string; host: string; tls: boolean; http2: boolean }[] = [
      { name: "promoter client, HTTP/1.1", host: `127.0.0.1:${ports.plain}`, tls: false, http2: false },
      { name: "promoter client, TLS HTTP/1.1", host: `registry.test:${ports.tls}`, tls: true, http2: false },
      { name: "promoter client, TLS HTTP/2", host: `registry.test:${ports.h2}`, tls: true, http2: true },
    ];
    for (const { name, host, http2 } of cases) {
      const provider = createStoreProvider({
        credentialSources: [],
        caCertificates: certificate.cert,
        hostAddresses: { "registry.test": "127.0.0.1" },
        http2,
      });
      const store = provider.repository({
        kind: "remote",
        host: host as RegistryHost,
        repository: parseRepositoryPath("bench/app"),
      });
      const tag = parseTag("v1");
      await measure(name, async () => {
        if ((await store.resolve(tag)) === undefined) throw new Error("the tag is missing");
      });
      await provider.close();
    }

    // As in a promotion to registry.k8s.io's mirrors: 23 hosts, each at its limit of 16, so 368
    // requests in flight on as many connections (the same server behind 23 names). First the
    // floor: undici's own HEAD over TLS, as many at once on as many connections.
    const manyInFlight = IN_FLIGHT * MANY_HOSTS;
    const tlsAgent = new Agent({
      connections: IN_FLIGHT,
      connect: {
        ca: certificate.cert,
        lookup: (_hostname, options, callback) => {
          if (options.all) callback(null, [{ address: "127.0.0.1", family: 4 }]);
          else callback(null, "127.0.0.1", 4);
        },
      },
    });
    await measure(
      `undici request, TLS, ${MANY_HOSTS} hosts`,
      async (index) => {
        const url = `https://${names[index % MANY_HOSTS]}:${ports.tls}/v2/bench/app/manifests/v1`;
        const response = await undiciRequest(url, { method: "HEAD", reset: false, dispatcher: tlsAgent });
        await response.body.dump();
      },
      manyInFlight,
    );
    await tlsAgent.close();
    const provider = createStoreProvider({
      credentialSources: [],
      caCertificates: certificate.cert,
      hostAddresses: Object.fromEntries(names.map((name) => [name, "127.0.0.1"])),
    });
    const stores = names.map((name) =>
      provider.repository({
        kind: "remote",
        host: `${name}:${ports.tls}` as RegistryHost,
        repository: parseRepositoryPath("bench/app"),
      }),
    );
    const tag = parseTag("v1");
    await measure(
      `promoter client, TLS, ${MANY_HOSTS} hosts`,
      async (index) => {
        const store = stores[index % MANY_HOSTS];
        if ((await store?.resolve(tag)) === undefined) throw new Error("the tag is missing");
      },
      manyInFlight,
    );
    await provider.close();
  } finally {
    child.kill();
  }
}

if (process.argv[2] === "serve") await serve();
else await main();
