import * as path from "node:path";

/**
 * One lock per layout directory for the read-modify-write of `index.json`. It must be shared by
 * every store object of this process that opens the same layout (a copy opens one store per
 * destination edge, and they write concurrently), hence module state. Other processes are not
 * covered: the file is still replaced atomically, but two processes can lose each other's tags.
 */
const tails = new Map<string, Promise<void>>();

export async function withLayoutLock<T>(layoutDirectory: string, work: () => Promise<T>): Promise<T> {
  const key = path.resolve(layoutDirectory);
  const previous = tails.get(key) ?? Promise.resolve();
  let release!: () => void;
  const done = new Promise<void>((resolve) => {
    release = resolve;
  });
  const tail = previous.then(() => done);
  tails.set(key, tail);
  await previous;
  try {
    return await work();
  } finally {
    release();
    if (tails.get(key) === tail) tails.delete(key);
  }
}
