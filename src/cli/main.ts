import { describeError, isPromoterError, RefusedError, UsageError } from "../errors.js";
import { ArgumentError, formatCommandHelp, parseCommandArgs, type Command } from "./command.js";
import { commands, type CommandEntry } from "./commands/index.js";
import { ExitCode, writeLine, type CliIO } from "./io.js";
import { guardedRunIO } from "./output-sink.js";
import { packageVersion } from "./version.js";

export { packageVersion };

function findCommand(argv: readonly string[]): { entry: CommandEntry; rest: string[] } | undefined {
  let best: CommandEntry | undefined;
  for (const entry of commands) {
    const matches = entry.words.every((word, i) => argv[i] === word);
    if (matches && (!best || entry.words.length > best.words.length)) best = entry;
  }
  return best ? { entry: best, rest: argv.slice(best.words.length) } : undefined;
}

/**
 * A command group: the first word of commands of two words (`manifest`, `audit`) that is no
 * command itself, with its commands.
 */
function findGroup(word: string | undefined): CommandEntry[] | undefined {
  if (word === undefined || commands.some((entry) => entry.words.length === 1 && entry.words[0] === word)) {
    return undefined;
  }
  const members = commands.filter((entry) => entry.words.length > 1 && entry.words[0] === word);
  return members.length > 0 ? members : undefined;
}

/** Help of a command group: its commands with their summaries. */
async function formatGroupHelp(word: string, members: readonly CommandEntry[]): Promise<string> {
  const loaded = await Promise.all(members.map((entry) => entry.load()));
  const width = Math.max(...loaded.map((command) => command.words.join(" ").length)) + 4;
  const lines = [
    `Usage: promoter ${word} <command> [options]`,
    "",
    "Commands:",
    ...loaded.map((command) => `  ${command.words.join(" ").padEnd(width)}${command.summary}`),
    "",
    `Run 'promoter ${word} <command> --help' for the options of one.`,
  ];
  return `${lines.join("\n")}\n`;
}

/** General help loads every command (for its summary); running one loads only that one. */
export async function formatGeneralHelp(): Promise<string> {
  const loaded = await Promise.all(commands.map((entry) => entry.load()));
  const width = Math.max(...loaded.map((command) => command.words.join(" ").length)) + 4;
  const lines = [
    "Usage: promoter <command> [options]",
    "",
    "Promotes container images from staging to production registries when a reviewed",
    "promotion manifest says so. Dry run unless --confirm is given.",
    "",
    "Commands:",
    ...loaded.map((command) => `  ${command.words.join(" ").padEnd(width)}${command.summary}`),
    "",
    "Global options:",
    "  --help, -h     Show help (also: promoter <command> --help, promoter audit --help)",
    "  --version      Print the version",
    "",
    "Exit status: 0 success, 1 findings or failed edges, 2 invalid input or usage, 3 internal error.",
  ];
  return `${lines.join("\n")}\n`;
}

/**
 * Runs the CLI with `argv` (without node and script) and returns the exit status. It never
 * exits the process itself: `bin/promoter.js` does that with the returned status. Everything
 * the run prints goes through the run's guarded streams (output-sink.ts), which remove its
 * known secrets and let no control sequence or CI runner command through.
 */
export async function runCli(commandLine: readonly string[], processIO: CliIO): Promise<number> {
  let argv = commandLine;
  const io = guardedRunIO(processIO);
  if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
    const topic = argv[0] === "help" ? findCommand(argv.slice(1)) : undefined;
    const group = argv[0] === "help" && !topic ? findGroup(argv[1]) : undefined;
    io.stdout.write(
      topic
        ? formatCommandHelp(await topic.entry.load())
        : group
          ? await formatGroupHelp(argv[1] ?? "", group)
          : await formatGeneralHelp(),
    );
    return argv.length === 0 ? ExitCode.usage : ExitCode.ok;
  }
  if (argv[0] === "--version" || argv[0] === "-v") {
    writeLine(io.stdout, packageVersion());
    return ExitCode.ok;
  }
  // kpromo's root flag --log-level may come before the command (`kpromo --log-level=debug cip`):
  // it is handed to the command, which takes it or refuses it as unknown.
  const leading: string[] = [];
  for (let flag = argv[0]; flag?.startsWith("--log-level"); flag = argv[0]) {
    const value = flag === "--log-level" ? argv.slice(1, 2) : [];
    leading.push(flag, ...value);
    argv = argv.slice(1 + value.length);
  }
  const found = findCommand(argv);
  const group = found ? undefined : findGroup(argv[0]);
  if (group) {
    // `promoter audit --help`, `promoter audit`, `promoter audit nosuch`: the group's commands.
    const asked = argv.slice(1).every((word) => word === "--help" || word === "-h") && argv.length > 1;
    const help = await formatGroupHelp(argv[0] ?? "", group);
    if (asked) {
      io.stdout.write(help);
      return ExitCode.ok;
    }
    const given = argv[1];
    writeLine(
      io.stderr,
      given === undefined || given.startsWith("-")
        ? `promoter ${argv[0]}: which command? ${group.map((entry) => entry.words.join(" ")).join(", ")}.`
        : `promoter ${argv[0]}: unknown command ${JSON.stringify(given)}.`,
    );
    io.stderr.write(help);
    return ExitCode.usage;
  }
  if (!found) {
    const known = commands.map((command) => command.words.join(" ")).join(", ");
    writeLine(io.stderr, `promoter: unknown command ${JSON.stringify(argv.join(" "))}. Commands: ${known}.`);
    return ExitCode.usage;
  }
  const { entry, rest } = found;
  const command = await entry.load();
  if (rest.includes("--help") || rest.includes("-h") || rest.includes("--help=true")) {
    io.stdout.write(formatCommandHelp(command));
    return ExitCode.ok;
  }
  try {
    const { values, positionals } = command.rawArguments
      ? { values: {}, positionals: [...rest, ...leading] }
      : parseCommandArgs(command, [...rest, ...leading]);
    return await command.run({ io, values, positionals });
  } catch (error) {
    return reportError(error, io, command);
  }
}

function reportError(error: unknown, io: CliIO, command: Command): number {
  const name = `promoter ${command.words.join(" ")}`;
  if (error instanceof UsageError) {
    writeLine(io.stderr, `${name}: ${error.message}`);
    if (error instanceof ArgumentError) writeLine(io.stderr, error.help);
    return ExitCode.usage;
  }
  if (error instanceof RefusedError) {
    writeLine(io.stderr, `${name}: refused: ${error.message}`);
    return ExitCode.failed;
  }
  if (isPromoterError(error)) {
    // Expected problems (unreadable files, registries that refuse, aborted runs): one clear line.
    writeLine(io.stderr, `${name}: error[${error.code}]: ${error.message}`);
    return ExitCode.usage;
  }
  writeLine(io.stderr, `${name}: internal error: ${describeError(error)}`);
  if (io.env.PROMOTER_DEBUG && error instanceof Error && error.stack) {
    for (const line of error.stack.split("\n")) writeLine(io.stderr, line);
  } else
    writeLine(io.stderr, "This is a bug in image-promoter; set PROMOTER_DEBUG=1 to see the stack trace.");
  return ExitCode.internal;
}
