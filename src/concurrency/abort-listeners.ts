/**
 * Waits on one AbortSignal with one "abort" listener, whatever their number. Node's EventTarget
 * compares each listener added or removed with those already there, so each of N requests in
 * flight on a run's one signal paid O(N) to add its listener and again to remove it: a third of
 * the promoter's CPU on a run of 22,000 HEADs (issue 15). Here each signal gets one listener, and
 * the waits on it are a Set: O(1) to add and to remove.
 * https://dom.spec.whatwg.org/#add-an-event-listener (the duplicate check that walks the list)
 */

interface Subscription {
  readonly callback: () => void;
}

const subscriptions = new WeakMap<AbortSignal, Set<Subscription>>();

/**
 * Calls `callback` once when `signal` aborts, unless the returned function was called first.
 * The signal must not be aborted yet (callers check `signal.aborted` before waiting).
 */
export function onAbort(signal: AbortSignal, callback: () => void): () => void {
  let waiting = subscriptions.get(signal);
  if (!waiting) {
    const set = new Set<Subscription>();
    waiting = set;
    subscriptions.set(signal, set);
    signal.addEventListener(
      "abort",
      () => {
        subscriptions.delete(signal);
        for (const subscription of [...set]) subscription.callback();
        set.clear();
      },
      { once: true },
    );
  }
  const subscription: Subscription = { callback };
  const set = waiting;
  set.add(subscription);
  return () => {
    set.delete(subscription);
  };
}
