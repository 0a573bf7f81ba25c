import { UsageError } from "../errors.js";
import { booleanOption, type OptionSpecs, type ParsedValues } from "./command.js";

/**
 * `--confirm` and `--dry-run` of a command that writes only when told: a dry run is the default,
 * and `--dry-run` says so explicitly (scripts that want to be sure, and users of `manifest add
 * --dry-run` who expect it everywhere). Both at once is a contradiction, refused before anything
 * is read.
 */
export function confirmOptionSpecs(writes: string): OptionSpecs {
  return {
    confirm: { type: "boolean", description: `${writes} (without it: dry run)` },
    "dry-run": { type: "boolean", description: "Only show what would be written (the default)" },
  };
}

/** Whether the command line asks to write; a UsageError for `--confirm --dry-run`. */
export function confirmedWrite(values: ParsedValues): boolean {
  const confirm = booleanOption(values, "confirm");
  if (confirm && booleanOption(values, "dry-run")) {
    throw new UsageError(
      "--dry-run and --confirm contradict each other: give --confirm to write, or neither",
    );
  }
  return confirm;
}
