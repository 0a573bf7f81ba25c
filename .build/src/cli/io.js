/** Exit statuses shared by every command. */
export const ExitCode = {
    ok: 0,
    /** Findings, refused or failed edges, failed checks: the run worked and the answer is "no". */
    failed: 1,
    /** Invalid input, usage or I/O problems. */
    usage: 2,
    /** A bug: something the program did not expect. */
    internal: 3,
};
export function writeLine(stream, text = "") {
    stream.write(`${text}\n`);
}
//# sourceMappingURL=io.js.map