import { readFileSync } from "node:fs";
import { describeError, isPromoterError, UsageError } from "../errors.js";
import { formatCommandHelp, parseCommandArgs } from "./command.js";
import { commands } from "./commands/index.js";
import { ExitCode, writeLine } from "./io.js";
/** The package version, read once from package.json next to dist/ or src/. */
export function packageVersion() {
    const text = readFileSync(new URL("../../package.json", import.meta.url), "utf8");
    return JSON.parse(text).version;
}
function findCommand(argv) {
    let best;
    for (const command of commands) {
        const matches = command.words.every((word, i) => argv[i] === word);
        if (matches && (!best || command.words.length > best.words.length))
            best = command;
    }
    return best ? { command: best, rest: argv.slice(best.words.length) } : undefined;
}
export function formatGeneralHelp() {
    const width = Math.max(...commands.map((command) => command.words.join(" ").length)) + 4;
    const lines = [
        "Usage: promoter <command> [options]",
        "",
        "Promotes container images from staging to production registries when a reviewed",
        "promotion manifest says so. Dry run unless --confirm is given.",
        "",
        "Commands:",
        ...commands.map((command) => `  ${command.words.join(" ").padEnd(width)}${command.summary}`),
        "",
        "Global options:",
        "  --help, -h     Show help (also: promoter <command> --help)",
        "  --version      Print the version",
        "",
        "Exit status: 0 success, 1 findings or failed edges, 2 invalid input or usage, 3 internal error.",
    ];
    return `${lines.join("\n")}\n`;
}
/**
 * Runs the CLI with `argv` (without node and script) and returns the exit status. It never
 * exits the process itself: `bin/promoter.js` does that with the returned status.
 */
export async function runCli(argv, io) {
    if (argv.length === 0 || argv[0] === "--help" || argv[0] === "-h" || argv[0] === "help") {
        const topic = argv[0] === "help" ? findCommand(argv.slice(1)) : undefined;
        io.stdout.write(topic ? formatCommandHelp(topic.command) : formatGeneralHelp());
        return argv.length === 0 ? ExitCode.usage : ExitCode.ok;
    }
    if (argv[0] === "--version" || argv[0] === "-v") {
        writeLine(io.stdout, packageVersion());
        return ExitCode.ok;
    }
    const found = findCommand(argv);
    if (!found) {
        const known = commands.map((command) => command.words.join(" ")).join(", ");
        writeLine(io.stderr, `promoter: unknown command ${JSON.stringify(argv.join(" "))}. Commands: ${known}.`);
        return ExitCode.usage;
    }
    const { command, rest } = found;
    if (rest.includes("--help") || rest.includes("-h")) {
        io.stdout.write(formatCommandHelp(command));
        return ExitCode.ok;
    }
    try {
        const { values, positionals } = parseCommandArgs(command, rest);
        return await command.run({ io, values, positionals });
    }
    catch (error) {
        return reportError(error, io, command);
    }
}
function reportError(error, io, command) {
    const name = `promoter ${command.words.join(" ")}`;
    if (error instanceof UsageError) {
        writeLine(io.stderr, `${name}: ${error.message}`);
        return ExitCode.usage;
    }
    if (isPromoterError(error)) {
        // Expected problems (unreadable files, registries that refuse, aborted runs): one clear line.
        writeLine(io.stderr, `${name}: error[${error.code}]: ${error.message}`);
        return ExitCode.usage;
    }
    writeLine(io.stderr, `${name}: internal error: ${describeError(error)}`);
    if (io.env.PROMOTER_DEBUG && error instanceof Error && error.stack)
        writeLine(io.stderr, error.stack);
    else
        writeLine(io.stderr, "This is a bug in image-promoter; set PROMOTER_DEBUG=1 to see the stack trace.");
    return ExitCode.internal;
}
//# sourceMappingURL=main.js.map