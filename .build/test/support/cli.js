import { PassThrough } from "node:stream";
/** An in-memory CliIO for running commands inside a test and reading what they printed. */
export function captureIO(options = {}) {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = "";
    let err = "";
    stdout.on("data", (chunk) => (out += chunk.toString()));
    stderr.on("data", (chunk) => (err += chunk.toString()));
    const io = {
        stdout,
        stderr,
        env: options.env ?? {},
        cwd: options.cwd ?? process.cwd(),
        signal: options.signal ?? new AbortController().signal,
    };
    return { io, out: () => out, err: () => err };
}
//# sourceMappingURL=cli.js.map