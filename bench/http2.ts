/**
 * What HTTP/2 saves when checking tags over TLS: a distribution registry serving HTTPS on
 * 127.0.0.1 (a test certificate for `registry.test`), 220 tags in 11 repositories, and the
 * client resolving each tag three times (660 `HEAD`s, 16 in flight, as a warm promotion to three
 * mirrors does), over HTTP/1.1 and over HTTP/2, alternating.
 *
 *   npm run bench:http2
 *
 * HTTP/1.1 connections are kept alive, HEADs included (undici would close one after every HEAD
 * by default); HTTP/2 (`--http2`) multiplexes them on one connection per host. On loopback this
 * compares the two stacks' costs; across a network each HTTP/1.1 connection also pays its
 * handshake once.
 */
import { runBounded } from "../src/concurrency/index.js";
import { parseRepositoryPath, parseTag, type RegistryHost } from "../src/reference/index.js";
import { createStoreProvider, type RegistryStoreProvider } from "../src/registry/index.js";
import { startRegistry } from "../test/support/registry-harness.js";
import { selfSignedCertificate } from "../test/support/scripted-registry.js";
import { makeImage, pushToStore } from "../test/support/test-images.js";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const REPOSITORIES = 11;
const TAGS_PER_REPOSITORY = 20;
const PASSES = 3;

const certificate = await selfSignedCertificate(["registry.test"]);
const registry = await startRegistry({ tls: certificate });
const host = `registry.test:${registry.host.split(":")[1]}` as RegistryHost;

function client(http2: boolean): RegistryStoreProvider {
  return createStoreProvider({
    credentialSources: [],
    caCertificates: certificate.cert,
    hostAddresses: { "registry.test": "127.0.0.1" },
    http2,
  });
}

function store(provider: RegistryStoreProvider, repository: string) {
  return provider.repository({ kind: "remote", host, repository: parseRepositoryPath(repository) });
}

try {
  const repositories = Array.from({ length: REPOSITORIES }, (_, index) => `bench/repository-${index}`);
  const seeding = client(true);
  for (const repository of repositories) {
    for (let index = 0; index < TAGS_PER_REPOSITORY; index++) {
      const content = makeImage({
        layers: 1,
        layerSize: 512,
        mediaTypes: "oci",
        seed: `${repository}-${index}`,
      });
      await pushToStore(store(seeding, repository), content, [`v${index}`]);
    }
  }
  await seeding.close();

  const lookups: [string, string][] = [];
  for (let pass = 0; pass < PASSES; pass++) {
    for (const repository of repositories) {
      for (let index = 0; index < TAGS_PER_REPOSITORY; index++) lookups.push([repository, `v${index}`]);
    }
  }
  const times = { "HTTP/1.1": [] as number[], "HTTP/2": [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const http2 of [false, true]) {
      const provider = client(http2);
      const started = performance.now();
      await runBounded(lookups, 16, async ([repository, tag]) => {
        if (!(await store(provider, repository).resolve(parseTag(tag))))
          throw new Error(`${repository}:${tag} is missing`);
      });
      times[http2 ? "HTTP/2" : "HTTP/1.1"].push(performance.now() - started);
      await provider.close();
    }
  }
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;
  console.log(`${lookups.length} tag HEADs over TLS, 16 in flight, median of ${ROUNDS}:`);
  for (const [protocol, values] of Object.entries(times)) {
    console.log(
      `  ${protocol.padEnd(8)} ${Math.round(median(values))} ms  (${values.map(Math.round).join(", ")})`,
    );
  }
  console.log(`  HTTP/2 is ${(median(times["HTTP/1.1"]) / median(times["HTTP/2"])).toFixed(1)}x faster`);
} finally {
  await registry.stop();
}
