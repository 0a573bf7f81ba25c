import { quoteExcerpt } from "../excerpt.js";

/**
 * Reading JSON a registry or a staging pusher wrote: how every parser of this module
 * names a value it refuses (the shape guard itself is src/json-shape.ts). Internal to src/oci (not re-exported by its index).
 */

/** How a message names a JSON value it refuses: a short, escaped excerpt (see excerpt.ts). */
export function describeJsonValue(value: unknown): string {
  if (value === undefined) return "nothing";
  if (typeof value === "string") return quoteExcerpt(value);
  if (Array.isArray(value)) return "a list";
  if (value === null) return "null";
  if (typeof value === "number" || typeof value === "boolean") return quoteExcerpt(String(value));
  return "an object";
}
