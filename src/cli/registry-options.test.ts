import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureIO } from "../../test/support/cli.js";
import { selfSignedCertificate } from "../../test/support/scripted-registry.js";
import { UsageError } from "../errors.js";
import { silentLogger } from "../log.js";
import { parseCommandArgs, type Command } from "./command.js";
import {
  registryOptionSpecs,
  registryProviderOptions,
  storeProviderFromOptions,
} from "./registry-options.js";

const command: Command = {
  words: ["test"],
  summary: "test",
  usage: "test",
  options: registryOptionSpecs,
  run: () => Promise.resolve(0),
};

function parse(argv: string[]) {
  return parseCommandArgs(command, argv).values;
}

let directory: string;
beforeAll(async () => {
  directory = await mkdtemp(path.join(os.tmpdir(), "registry-options-"));
});
afterAll(async () => {
  await rm(directory, { recursive: true, force: true });
});

describe("registry options", () => {
  it("--google-registry marks hosts as Google's, and refuses what is no host", () => {
    const { io } = captureIO({ cwd: "/work", env: { HOME: "/home/me" } });
    const options = registryProviderOptions(
      parse(["--google-registry", "registry.internal:5000", "--google-registry", "127.0.0.1"]),
      io,
      silentLogger,
    );
    expect(options.googleRegistries).toEqual(["registry.internal:5000", "127.0.0.1"]);
    expect(registryProviderOptions(parse([]), io, silentLogger).googleRegistries).toBeUndefined();
    expect(() =>
      registryProviderOptions(parse(["--google-registry", "https://gcr.io/x"]), io, silentLogger),
    ).toThrow(UsageError);
  });

  it("turn flags into provider options", () => {
    const { io } = captureIO({ cwd: "/work", env: { HOME: "/home/me" } });
    const values = parse([
      "--insecure-registry",
      "reg.internal:5000",
      "--insecure-registry",
      "other.internal",
      "--https-registry",
      "127.0.0.1:5443",
      "--max-requests-per-host",
      "4",
      "--requests-per-second",
      "2.5",
      "--registry-timeout",
      "30",
      "--registry-min-rate",
      "2.5",
      "--http2",
    ]);
    const options = registryProviderOptions(values, io, silentLogger);
    expect(options.insecureRegistries).toEqual(["reg.internal:5000", "other.internal"]);
    expect(options.httpsRegistries).toEqual(["127.0.0.1:5443"]);
    expect(options.limits).toEqual({ defaults: { maxConcurrent: 4, requestsPerSecond: 2.5 } });
    expect(options.timeouts).toEqual({ headersMs: 30_000, bodyIdleMs: 30_000, minBytesPerSecond: 2560 });
    expect(options.http2).toBe(true);
    expect(options.homeDirectory).toBe("/home/me");
    expect(options.env).toBe(io.env);
  });

  it("defaults to 16 requests per host, no rate limit, and HTTP/1.1 (--disable-http2 says so again)", () => {
    const { io } = captureIO();
    const options = registryProviderOptions(parse([]), io, silentLogger);
    expect(options.limits).toEqual({ defaults: { maxConcurrent: 16 } });
    expect(options.http2).toBeUndefined();
    expect(options.timeouts).toBeUndefined();
    expect(registryProviderOptions(parse(["--disable-http2"]), io, silentLogger).http2).toBe(false);
  });

  it("refuses bad values with usage errors", () => {
    const { io } = captureIO();
    for (const argv of [
      ["--insecure-registry", "bad host"],
      ["--https-registry", "bad host"],
      ["--https-registry", "127.0.0.1:5000", "--insecure-registry", "127.0.0.1:5000"],
      ["--max-requests-per-host", "0"],
      ["--max-requests-per-host", "2.5"],
      ["--requests-per-second", "-1"],
      ["--registry-timeout", "soon"],
      ["--registry-min-rate", "0"],
      ["--registry-min-rate", "fast"],
      ["--http2", "--disable-http2"],
    ]) {
      expect(() => registryProviderOptions(parse(argv), io, silentLogger), argv.join(" ")).toThrow(
        UsageError,
      );
    }
  });

  it("reads --registry-ca relative to the working directory and refuses a file without certificates", async () => {
    const { cert } = await selfSignedCertificate(["registry.test"]);
    await writeFile(path.join(directory, "ca.pem"), cert);
    await writeFile(path.join(directory, "empty.pem"), "nothing here");
    const { io } = captureIO({ cwd: directory });
    const provider = storeProviderFromOptions(parse(["--registry-ca", "ca.pem"]), io, silentLogger);
    await provider.close();
    expect(() => storeProviderFromOptions(parse(["--registry-ca", "empty.pem"]), io, silentLogger)).toThrow(
      /--registry-ca: .*empty\.pem: no PEM certificate/,
    );
    expect(() => storeProviderFromOptions(parse(["--registry-ca", "absent.pem"]), io, silentLogger)).toThrow(
      UsageError,
    );
  });
});
