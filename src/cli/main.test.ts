import { describe, expect, it } from "vitest";
import { captureIO } from "../../test/support/cli.js";
import { commands } from "./commands/index.js";
import { runCli } from "./main.js";

describe("runCli", () => {
  it("prints the version", async () => {
    const { io, out } = captureIO();
    expect(await runCli(["--version"], io)).toBe(0);
    expect(out()).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it("prints help", async () => {
    const { io, out } = captureIO();
    expect(await runCli(["--help"], io)).toBe(0);
    expect(out()).toContain("Usage: promoter <command>");
  });

  it("refuses unknown commands with exit 2", async () => {
    const { io, err } = captureIO();
    expect(await runCli(["frobnicate"], io)).toBe(2);
    expect(err()).toContain("unknown command");
  });

  it("names each lazily loaded command by the words its module declares, and lists them all in help", async () => {
    for (const entry of commands) expect((await entry.load()).words).toEqual(entry.words);
    const { io, out } = captureIO();
    await runCli(["--help"], io);
    for (const entry of commands) expect(out()).toContain(`  ${entry.words.join(" ")} `);
  });

  it("shows a command's help through `help WORDS`", async () => {
    const { io, out } = captureIO();
    expect(await runCli(["help", "audit", "serve"], io)).toBe(0);
    expect(out()).toContain("Usage: promoter audit serve");
  });
});
