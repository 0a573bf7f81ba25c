import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { captureIO } from "../../test/support/cli.js";
import { registryAuthVariable, REGISTRY_AUTH_VARIABLE } from "../registry/index.js";
import { IDENTITY_TOKEN_VARIABLE, SIGN_KEY_PASSWORD_VARIABLE } from "../sign/index.js";
import { runCli } from "./main.js";
import {
  createRunSecrets,
  guardedRunIO,
  REGISTRY_AUTH_VARIABLE_PREFIX,
  writeOutputFile,
} from "./output-sink.js";

const base64 = (text: string) => Buffer.from(text).toString("base64");

describe("createRunSecrets", () => {
  it("knows every secret the environment hands the run, in every form", () => {
    const secrets = createRunSecrets({
      [registryAuthVariable("ghcr.io")]: "robot:Pw-ghcr-0123456789",
      [registryAuthVariable("127.0.0.1:5000")]: "token-without-user-0123",
      [REGISTRY_AUTH_VARIABLE]: JSON.stringify({
        auths: {
          "quay.io": { auth: base64("bot:Pw-quay-0123456789") },
          "gcr.io": { identitytoken: "Refresh-0123456789" },
        },
      }),
      [SIGN_KEY_PASSWORD_VARIABLE]: "Sign-pw-0123456789",
      [IDENTITY_TOKEN_VARIABLE]: "oidc-token-0123456789",
      HOME: "/home/me",
    });
    const text = [
      "Pw-ghcr-0123456789",
      base64("robot:Pw-ghcr-0123456789"),
      "token-without-user-0123",
      "Pw-quay-0123456789",
      base64("bot:Pw-quay-0123456789"),
      "Refresh-0123456789",
      "Sign-pw-0123456789",
      "oidc-token-0123456789",
      "/home/me",
    ].join(" ");
    expect(secrets.redact(text)).toBe(`${"REDACTED ".repeat(8)}/home/me`);
  });

  it("ignores a PROMOTER_REGISTRY_AUTH that is not JSON (the registry client reports it)", () => {
    expect(() => createRunSecrets({ [REGISTRY_AUTH_VARIABLE]: "{not json" })).not.toThrow();
  });

  it("names the variables registryAuthVariable makes", () => {
    expect(registryAuthVariable("ghcr.io").startsWith(REGISTRY_AUTH_VARIABLE_PREFIX)).toBe(true);
  });
});

describe("guardedRunIO", () => {
  it("removes known secrets and guards every write, keeping order with direct writes", () => {
    const { io, out } = captureIO({ env: { [registryAuthVariable("r.example")]: "u:Pw-0123456789" } });
    const run = guardedRunIO(io);
    run.stdout.write("one Pw-0123456789\n");
    io.stdout.write("two\n");
    run.stdout.write("::add-mask::x\n\u001b[31m\r\n");
    expect(out()).toBe("one REDACTED\ntwo\n\\u003a:add-mask::x\n\\u001b[31m\\r\n");
  });

  it("tells what the terminal is, and lets a terminal have its carriage returns", () => {
    const terminal = Object.assign(new PassThrough(), { isTTY: true, columns: 91 });
    let seen = "";
    terminal.on("data", (chunk: Buffer) => (seen += chunk.toString()));
    const run = guardedRunIO({ ...captureIO().io, stderr: terminal });
    expect(run.stderr.isTTY).toBe(true);
    expect(run.stderr.columns).toBe(91);
    run.stderr.write("\rcopying 1/2");
    expect(seen).toBe("\rcopying 1/2");
  });

  it("reports a command line that does not parse on one line, with the help on the next", async () => {
    const { io, err } = captureIO();
    expect(await runCli(["validate", "--frobnicate\n::error::x"], io)).toBe(2);
    const lines = err().trimEnd().split("\n");
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^promoter validate: Unknown option '--frobnicate\\n::error::x'/);
    expect(lines[1]).toBe("Run 'promoter validate --help' for usage.");
  });
});

describe("writeOutputFile", () => {
  let directory: string | undefined;
  afterEach(async () => {
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  it("writes and appends through the same guard, without known secrets", async () => {
    directory = await mkdtemp(path.join(tmpdir(), "output-sink-"));
    const file = path.join(directory, "summary.md");
    const secrets = createRunSecrets({ [SIGN_KEY_PASSWORD_VARIABLE]: "Sign-pw-0123456789" });
    await writeOutputFile({ secrets }, file, "a Sign-pw-0123456789\n");
    await writeOutputFile({ secrets }, file, "##[error] \u202e\n", { append: true });
    expect(await readFile(file, "utf8")).toBe("a REDACTED\n\\u0023#[error] \\u202e\n");
  });
});
