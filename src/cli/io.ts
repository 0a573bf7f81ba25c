import type { Writable } from "node:stream";
import { textValue } from "../output/encode.js";
import type { Redactor } from "../registry/index.js";

/** A stream a command prints to, with what a terminal tells about itself. */
export type OutputStream = Writable & { isTTY?: boolean | undefined; columns?: number | undefined };

/** What a command may touch of the outside world; tests pass their own. */
export interface CliIO {
  readonly stdout: OutputStream;
  readonly stderr: OutputStream;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** Aborted on Ctrl-C or SIGTERM; long commands stop starting new work. */
  readonly signal: AbortSignal;
  /**
   * The known secrets of the run (credentials, tokens, key material): every output sink
   * removes them. `runCli` sets it (output-sink.ts); registry clients and signers add to it.
   */
  readonly secrets?: Redactor;
}

/** Exit statuses shared by every command. */
export const ExitCode = {
  ok: 0,
  /** Findings, refused or failed edges, failed checks: the run worked and the answer is "no". */
  failed: 1,
  /** Invalid input, usage or I/O problems. */
  usage: 2,
  /** A bug: something the program did not expect. */
  internal: 3,
} as const;

/**
 * Writes one line. Whatever `text` holds (outside values included) stays on that line:
 * it is encoded with `textValue` (line breaks and control characters become visible escapes).
 */
export function writeLine(stream: Writable, text = ""): void {
  stream.write(`${textValue(text)}\n`);
}
