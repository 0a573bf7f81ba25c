import { setMaxListeners } from "node:events";
import { PassThrough } from "node:stream";
import type { CliIO } from "../../src/cli/io.js";

/** An in-memory CliIO for running commands inside a test and reading what they printed. */
export function captureIO(
  options: { cwd?: string; env?: Record<string, string | undefined>; signal?: AbortSignal } = {},
) {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
  stderr.on("data", (chunk: Buffer) => (err += chunk.toString()));
  const signal = options.signal ?? new AbortController().signal;
  setMaxListeners(0, signal);
  const io: CliIO = {
    stdout,
    stderr,
    env: options.env ?? {},
    cwd: options.cwd ?? process.cwd(),
    signal,
  };
  return { io, out: () => out, err: () => err };
}
