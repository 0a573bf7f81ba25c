import { mkdtemp, rm, writeFile } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { captureIO } from "../../test/support/cli.js";
import { MAX_SECRET_FILE_BYTES, secretOption } from "./secret-options.js";

const SECRET = "https://hooks.example/services/T0/B0/s3cr3t-value";

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(os.tmpdir(), "promoter-secret-options-"));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

function io(env: Record<string, string> = {}) {
  return captureIO({ cwd: work, env }).io;
}

describe("secretOption", () => {
  it("is undefined when neither form is given", async () => {
    expect(await secretOption({}, "alert-webhook", io())).toBeUndefined();
  });

  it("takes an argument, and says it is on the command line", async () => {
    expect(await secretOption({ "alert-webhook": SECRET }, "alert-webhook", io())).toEqual({
      value: SECRET,
      origin: "--alert-webhook",
      onCommandLine: true,
    });
  });

  it("takes env://NAME and names the variable, not the value", async () => {
    const value = await secretOption(
      { "alert-webhook": "env://HOOK" },
      "alert-webhook",
      io({ HOOK: ` ${SECRET}\n` }),
    );
    expect(value).toEqual({ value: SECRET, origin: "--alert-webhook env://HOOK", onCommandLine: false });
    await expect(secretOption({ "alert-webhook": "env://NOPE" }, "alert-webhook", io())).rejects.toThrow(
      /--alert-webhook env:\/\/NOPE: the environment variable NOPE is not set or empty/,
    );
    await expect(secretOption({ "alert-webhook": "env://1x" }, "alert-webhook", io())).rejects.toThrow(
      /variable name/,
    );
  });

  it("reads --NAME-file, trimmed, and notes a file others can read", async () => {
    await writeFile(path.join(work, "hook"), `${SECRET}\n`, { mode: 0o600 });
    await writeFile(path.join(work, "loose-hook"), SECRET, { mode: 0o644 });
    expect(await secretOption({ "alert-webhook-file": "hook" }, "alert-webhook", io())).toEqual({
      value: SECRET,
      origin: "--alert-webhook-file hook",
      onCommandLine: false,
    });
    expect(
      (await secretOption({ "alert-webhook-file": "loose-hook" }, "alert-webhook", io()))?.looseFile,
    ).toBe("loose-hook");
  });

  it("refuses both forms, an empty, absent or large file, without printing the secret", async () => {
    await writeFile(path.join(work, "empty"), "\n");
    await writeFile(path.join(work, "large"), "x".repeat(MAX_SECRET_FILE_BYTES + 1));
    const cases: [Record<string, string>, RegExp][] = [
      [{ "git-url": SECRET, "git-url-file": "hook" }, /give --git-url or --git-url-file, not both/],
      [{ "git-url-file": "empty" }, /--git-url-file empty: the file is empty/],
      [{ "git-url-file": "absent" }, /--git-url-file .*absent/],
      [{ "git-url-file": "large" }, /at most 4096 bytes/],
    ];
    for (const [values, message] of cases) {
      const failure = secretOption(values, "git-url", io());
      await expect(failure).rejects.toThrow(message);
      await expect(failure).rejects.not.toThrow(/s3cr3t/);
    }
  });
});
