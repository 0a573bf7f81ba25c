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

  // Issue 17 item 8: `promoter manifest --help` answered "unknown command" (exit 2).
  const groups = [
    ...new Set(commands.filter((entry) => entry.words.length > 1).map((entry) => entry.words[0]!)),
  ];
  it("has command groups to check", () => {
    expect(groups).toEqual(expect.arrayContaining(["manifest", "audit"]));
  });

  it.each(groups)("shows the help of the command group %s, with each of its commands", async (group) => {
    const members = commands.filter((entry) => entry.words[0] === group);
    for (const argv of [
      [group, "--help"],
      [group, "-h"],
      ["help", group],
    ]) {
      const { io, out, err } = captureIO();
      expect(await runCli(argv, io), argv.join(" ")).toBe(0);
      expect(err()).toBe("");
      expect(out()).toContain(`Usage: promoter ${group} <command>`);
      for (const entry of members) expect(out()).toContain(`  ${entry.words.join(" ")} `);
    }
    const bare = captureIO();
    expect(await runCli([group], bare.io)).toBe(2);
    expect(bare.err()).toContain(`promoter ${group}: which command?`);
    expect(bare.err()).toContain(`Usage: promoter ${group} <command>`);
    const unknown = captureIO();
    expect(await runCli([group, "nosuch"], unknown.io)).toBe(2);
    expect(unknown.err()).toContain(`promoter ${group}: unknown command "nosuch"`);
  });

  // Issue 17 item 8: `promote --dry-run` was an unknown option; every command that writes only
  // with --confirm takes it, and refuses the two together before reading anything.
  const confirming = ["promote", "verify"];
  it("lists the commands that take --confirm", async () => {
    const withConfirm: string[] = [];
    for (const entry of commands) {
      const command = await entry.load();
      if ("confirm" in command.options) withConfirm.push(command.words.join(" "));
    }
    // cip takes kpromo's flags (--confirm among them), no others: kpromo has no --dry-run.
    expect(withConfirm.sort()).toEqual([...confirming, "cip"].sort());
  });

  it.each(confirming)("%s takes --dry-run and refuses it with --confirm", async (name) => {
    const command = await commands.find((entry) => entry.words.join(" ") === name)!.load();
    expect(command.options["dry-run"]?.type).toBe("boolean");
    const extra = name === "verify" ? ["--repair", "--public-key", "none.pub"] : [];
    const { io, err } = captureIO();
    expect(await runCli([name, "--manifest", "absent.yaml", ...extra, "--dry-run", "--confirm"], io)).toBe(2);
    expect(err()).toContain("--dry-run and --confirm contradict each other");
  });
});
