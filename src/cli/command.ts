import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "../errors.js";
import type { CliIO } from "./io.js";

type OptionSpec = NonNullable<ParseArgsConfig["options"]>[string] & {
  /** One line for --help; the value name goes in `valueName`. */
  readonly description: string;
  readonly valueName?: string;
};

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

/** Parsed values: strings, booleans, and arrays for `multiple` options. */
export type ParsedValues = Readonly<Record<string, string | boolean | (string | boolean)[] | undefined>>;

export interface CommandContext {
  readonly io: CliIO;
  readonly values: ParsedValues;
  readonly positionals: readonly string[];
}

/**
 * A CLI command: its words (`["audit", "serve"]`), help text and options, and a `run` that
 * returns the exit status. Commands are thin: they parse, call the library, render.
 */
export interface Command {
  readonly words: readonly string[];
  readonly summary: string;
  /** Usage line(s) after `promoter `, e.g. `validate (--manifest FILE | --thin-manifest-dir DIR)`. */
  readonly usage: string;
  /** Longer explanation shown by `--help`, paragraphs separated by blank lines. */
  readonly description?: string;
  readonly options: OptionSpecs;
  /**
   * The command parses its own arguments: `run` gets them all as `positionals` and no values
   * (`cip`, whose flags follow Go's syntax, not node's).
   */
  readonly rawArguments?: boolean;
  /** Positional arguments allowed: a count range. */
  readonly positionals?: { readonly min: number; readonly max: number; readonly names: string };
  run(context: CommandContext): Promise<number>;
}

/** A command line that does not parse: reported with a second line pointing at the command's help. */
export class ArgumentError extends UsageError {
  readonly help: string;

  constructor(message: string, help: string) {
    super(message);
    this.help = help;
  }
}

export function parseCommandArgs(
  command: Command,
  argv: readonly string[],
): { values: ParsedValues; positionals: string[] } {
  const options: NonNullable<ParseArgsConfig["options"]> = {};
  for (const [name, spec] of Object.entries(command.options)) {
    const { description: _description, valueName: _valueName, ...rest } = spec;
    options[name] = rest;
  }
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (error) {
    // node:util parseArgs messages are clear; drop its hint about "--" which confuses more than it helps.
    const message = (error as Error).message.replace(/\s*To specify a positional argument.*$/s, "");
    throw new ArgumentError(message, `Run 'promoter ${command.words.join(" ")} --help' for usage.`);
  }
  const positionals = parsed.positionals;
  const range = command.positionals ?? { min: 0, max: 0, names: "" };
  if (positionals.length < range.min) {
    throw new UsageError(`missing ${range.names}. Usage: promoter ${command.usage}`);
  }
  if (positionals.length > range.max) {
    throw new UsageError(
      `unexpected argument ${JSON.stringify(positionals[range.max])}. Usage: promoter ${command.usage}`,
    );
  }
  return { values: parsed.values, positionals };
}

export function formatCommandHelp(command: Command): string {
  const lines = [`Usage: promoter ${command.usage}`, "", command.summary];
  if (command.description) lines.push("", command.description.trim());
  const entries = Object.entries(command.options);
  if (entries.length > 0) {
    lines.push("", "Options:");
    const rendered = entries.map(([name, spec]) => {
      const short = spec.short ? `-${spec.short}, ` : "    ";
      const value = spec.type === "string" ? ` ${spec.valueName ?? "VALUE"}` : "";
      return { left: `  ${short}--${name}${value}`, right: spec.description };
    });
    const width = Math.min(40, Math.max(...rendered.map((entry) => entry.left.length)) + 2);
    for (const { left, right } of rendered) {
      lines.push(
        left.length >= width ? `${left}\n${" ".repeat(width)}${right}` : `${left.padEnd(width)}${right}`,
      );
    }
  }
  return `${lines.join("\n")}\n`;
}

/** Reads a string option, checking it is one of `allowed` when given. */
export function stringOption<T extends string>(
  values: ParsedValues,
  name: string,
  allowed?: readonly T[],
): T | undefined {
  const value = values[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw new UsageError(`--${name} needs a value`);
  if (allowed && !allowed.includes(value as T)) {
    throw new UsageError(`--${name} must be one of ${allowed.join(", ")}, not ${JSON.stringify(value)}`);
  }
  return value as T;
}

export function stringListOption(values: ParsedValues, name: string): string[] {
  const value = values[name];
  if (value === undefined) return [];
  const list = Array.isArray(value) ? value : [value];
  return list.filter((entry): entry is string => typeof entry === "string");
}

export function booleanOption(values: ParsedValues, name: string): boolean {
  return values[name] === true;
}

export function integerOption(
  values: ParsedValues,
  name: string,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number | undefined {
  const text = stringOption(values, name);
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text))
    throw new UsageError(`--${name} must be a whole number, not ${JSON.stringify(text)}`);
  const value = Number(text);
  if (value < min || value > max) throw new UsageError(`--${name} must be between ${min} and ${max}`);
  return value;
}
