import { Readable } from "node:stream";
import type { RepositoryLocation } from "../reference/index.js";
import { RegistryError } from "./errors.js";
import type { RepositoryOpener, RepositoryStore } from "./store.js";

/**
 * Which end of a promotion a repository is. A store does not know (the same repository is the
 * destination of one edge and, for a tag-only edge, the source the tag is read from); whoever
 * opens it for a promotion does, and says so here so that every error names the side and a
 * person knows where to look. docs/decisions/0003-store-roles.md
 */
export type Side = "source" | "destination";

/**
 * `store` seen from one end of a promotion: every `RegistryError` its calls raise, including
 * failures of the blob streams they return, names `side`. An error that already names a side
 * keeps it. Everything else (identity, results, other errors, `instanceof`) passes through, and
 * so do the roles of `store`: the result offers exactly the roles it was given.
 */
export function onSide<S extends object>(store: S, side: Side): S {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== "function") return value;
      const method = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        let result: unknown;
        try {
          result = method.apply(target, args);
        } catch (error) {
          throw namingSide(error, side);
        }
        if (!(result instanceof Promise)) return result;
        return result.then(
          (settled: unknown) => (settled instanceof Readable ? streamNamingSide(settled, side) : settled),
          (error: unknown) => {
            throw namingSide(error, side);
          },
        );
      };
    },
  });
}

/** Opens `location` with `opener` for one end of a promotion (see `onSide`). */
export function openOnSide(
  opener: RepositoryOpener,
  location: RepositoryLocation,
  side: Side,
): RepositoryStore {
  let store: RepositoryStore;
  try {
    store = opener.repository(location);
  } catch (error) {
    // An OCI layout refuses a malformed location when it is opened.
    throw namingSide(error, side);
  }
  return onSide(store, side);
}

function namingSide(error: unknown, side: Side): unknown {
  return error instanceof RegistryError && error.details.side === undefined ? error.onSide(side) : error;
}

/** The bytes of `stream`, its failure naming `side`; destroying the result destroys `stream`. */
function streamNamingSide(stream: Readable, side: Side): Readable {
  async function* named(): AsyncGenerator<Buffer> {
    try {
      yield* stream as AsyncIterable<Buffer>;
    } catch (error) {
      throw namingSide(error, side);
    }
  }
  const result = Readable.from(named(), { objectMode: false });
  // A generator never started has nothing to clean up in: close the store's stream from here.
  result.once("close", () => {
    if (!stream.destroyed) stream.destroy();
  });
  return result;
}
