import * as path from "node:path";
import type { LayoutIndex } from "./layout-index.js";

/**
 * Serialises changes to one layout's `index.json` within this process, and commits the changes
 * that queued up meanwhile together: one read, one atomic write (and one fsync) for a burst of
 * tag writes instead of one per tag. Shared by every store object of this process that opens the
 * same layout (a copy opens one per edge, and they write concurrently), hence module state.
 * Other processes are not covered: the file is still replaced atomically, but two processes can
 * lose each other's changes.
 */
export type IndexChange = (index: LayoutIndex) => LayoutIndex | undefined;

/** Reads the index, applies `apply`, and writes the result when it differs. */
export type IndexCommit = (apply: (index: LayoutIndex) => LayoutIndex) => Promise<void>;

interface Pending {
  readonly change: IndexChange;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

const queues = new Map<string, Pending[]>();

export function queueIndexChange(
  layoutDirectory: string,
  change: IndexChange,
  commit: IndexCommit,
): Promise<void> {
  const key = path.resolve(layoutDirectory);
  return new Promise<void>((resolve, reject) => {
    const queue = queues.get(key);
    if (queue) {
      queue.push({ change, resolve, reject });
      return;
    }
    const fresh: Pending[] = [{ change, resolve, reject }];
    queues.set(key, fresh);
    void flush(key, fresh, commit);
  });
}

async function flush(key: string, queue: Pending[], commit: IndexCommit): Promise<void> {
  try {
    while (queue.length > 0) {
      const batch = queue.splice(0);
      const failures = new Map<number, unknown>();
      try {
        await commit((index) => {
          let current = index;
          batch.forEach((pending, position) => {
            try {
              current = pending.change(current) ?? current;
            } catch (error) {
              failures.set(position, error);
            }
          });
          return current;
        });
      } catch (error) {
        for (const pending of batch) pending.reject(error);
        continue;
      }
      batch.forEach((pending, position) => {
        if (failures.has(position)) pending.reject(failures.get(position));
        else pending.resolve();
      });
    }
  } finally {
    queues.delete(key);
  }
}
