/** Limits on work in flight, shared by the transport, the copy engine, inventory and the auditor. */
export { Semaphore } from "./semaphore.js";
export { WorkLimiter } from "./work-limiter.js";
export { runBounded } from "./run-bounded.js";
export { shareSignal } from "./shared-signal.js";
export { onAbort } from "./abort-listeners.js";
