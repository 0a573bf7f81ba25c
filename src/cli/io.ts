import type { Writable } from "node:stream";

/** What a command may touch of the outside world; tests pass their own. */
export interface CliIO {
  readonly stdout: Writable & { isTTY?: boolean; columns?: number };
  readonly stderr: Writable & { isTTY?: boolean; columns?: number };
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** Aborted on Ctrl-C or SIGTERM; long commands stop starting new work. */
  readonly signal: AbortSignal;
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

export function writeLine(stream: Writable, text = ""): void {
  stream.write(`${text}\n`);
}
