import { setMaxListeners } from "node:events";

/**
 * Marks `signal` as shared by many operations at once. Every request in flight, upload and
 * waiting slot listens for the caller's abort signal while it runs, so a copy with 8 transfers
 * to 3 mirrors has dozens of listeners on it at a time. Node warns above 10 listeners because
 * that usually means a leak; here it does not (each listener is removed when its operation
 * ends), so the warning would only alarm the person reading the output.
 */
export function shareSignal(signal: AbortSignal | undefined): void {
  if (signal) setMaxListeners(0, signal);
}
