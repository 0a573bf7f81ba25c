import { readFile, stat } from "node:fs/promises";
import * as path from "node:path";
import { describeError, UsageError } from "../errors.js";
import { ENV_KEY_PREFIX } from "../sign/index.js";
import { stringOption, type ParsedValues } from "./command.js";
import type { CliIO } from "./io.js";

/**
 * Secrets given to long-running commands (a webhook URL, a git URL with a token, bearer
 * tokens). An argument is visible to every local user in /proc/<pid>/cmdline and `ps`, so every
 * such option also takes `env://NAME` (the variable, readable by the process's user only) and a
 * `--NAME-file FILE` twin, as signing keys do (docs/signing.md).
 */

/** Largest secret file read: a token or a URL. */
export const MAX_SECRET_FILE_BYTES = 4096;

export interface SecretText {
  /** The file's content without surrounding whitespace. */
  readonly text: string;
  /** Group or others may read the file. */
  readonly looseMode: boolean;
}

/** Reads a small secret file; messages name `option` and the file, never the content. */
export async function readSecretFile(option: string, file: string): Promise<SecretText> {
  try {
    const info = await stat(file);
    if (!info.isFile() || info.size > MAX_SECRET_FILE_BYTES) {
      throw new UsageError(
        `${option} ${file}: expected a small file (at most ${MAX_SECRET_FILE_BYTES} bytes)`,
      );
    }
    const text = (await readFile(file, "utf8")).trim();
    return { text, looseMode: (info.mode & 0o077) !== 0 };
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`${option} ${file}: ${describeError(error)}`);
  }
}

export interface SecretValue {
  readonly value: string;
  /** Where it came from, for messages: `--alert-webhook-file hook.url`, never the value. */
  readonly origin: string;
  /** Given as a plain argument: visible in the process list. */
  readonly onCommandLine: boolean;
  /** A file that group or others may read. */
  readonly looseFile?: string;
}

/**
 * The secret of `--NAME VALUE`, `--NAME env://VAR` or `--NAME-file FILE` (one of them), or
 * undefined when none is given. The caller's option specs must declare both options.
 */
export async function secretOption(
  values: ParsedValues,
  name: string,
  io: CliIO,
): Promise<SecretValue | undefined> {
  const direct = stringOption(values, name);
  const file = stringOption(values, `${name}-file`);
  if (direct !== undefined && file !== undefined) {
    throw new UsageError(`give --${name} or --${name}-file, not both`);
  }
  if (file !== undefined) {
    const origin = `--${name}-file ${file}`;
    const { text, looseMode } = await readSecretFile(`--${name}-file`, path.resolve(io.cwd, file));
    if (text === "") throw new UsageError(`${origin}: the file is empty`);
    return { value: text, origin, onCommandLine: false, ...(looseMode ? { looseFile: file } : {}) };
  }
  if (direct === undefined) return undefined;
  if (direct.startsWith(ENV_KEY_PREFIX)) {
    const variable = direct.slice(ENV_KEY_PREFIX.length);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable)) {
      throw new UsageError(`--${name} ${direct}: env:// must be followed by a variable name`);
    }
    const value = io.env[variable]?.trim();
    if (value === undefined || value === "") {
      throw new UsageError(`--${name} ${direct}: the environment variable ${variable} is not set or empty`);
    }
    return { value, origin: `--${name} ${direct}`, onCommandLine: false };
  }
  return { value: direct, origin: `--${name}`, onCommandLine: true };
}
