import { createHash, timingSafeEqual } from "node:crypto";

/** Bearer tokens of the auditor (notification, findings reader, status page viewers) are compared here. */

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** Constant-time comparison: hashing first gives equal lengths whatever was sent. */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  return timingSafeEqual(sha256(presented), sha256(expected));
}
