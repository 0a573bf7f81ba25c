/**
 * Waiting for something a separate process will do (an auditor's verdict, a fetch), without a
 * fixed sleep: `probe` is asked every `intervalMs` until it gives a value. When `timeoutMs` passes,
 * the error names what was awaited and, through `describeState`, what the process had to say,
 * so a failure at 2 a.m. shows the findings and the log rather than only "timed out".
 */
export interface PollOptions {
  readonly timeoutMs: number;
  readonly intervalMs?: number;
  /** What to print beside the timeout: the findings, a log tail. */
  readonly describeState?: () => Promise<string>;
}

export async function pollUntil<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  options: PollOptions,
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    // A probe that fails (the server still starting, a body not yet written) counts as "not yet".
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) {
      const state = options.describeState ? await options.describeState().catch(String) : "";
      throw new Error(`timed out waiting for ${what}${state ? `:\n${state}` : ""}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 100));
  }
}
