import { setMaxListeners } from "node:events";
import { runCli } from "./main.js";

/**
 * The process entry point: the only place that touches `process.exit`. Ctrl-C and SIGTERM abort
 * the run's signal; a second Ctrl-C exits at once.
 */
export async function main(): Promise<void> {
  const controller = new AbortController();
  // Every in-flight request listens for the abort: hundreds at once is normal, not a leak.
  setMaxListeners(0, controller.signal);
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupts += 1;
    if (interrupts > 1) process.exit(130);
    process.stderr.write(
      `\npromoter: ${signal} received; finishing in-flight work (press Ctrl-C again to quit now)\n`,
    );
    controller.abort(new Error(`${signal} received`));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  const status = await runCli(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    signal: controller.signal,
  });
  process.exitCode = status;
  // Let stdout drain; pending timers (keep-alive sockets) must not hold the process open.
  process.stdout.write("", () => process.exit(status));
}
