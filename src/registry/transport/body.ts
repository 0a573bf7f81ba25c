import { Readable } from "node:stream";

/** A body longer than the cap its reader set. */
export class BodyTooLargeError extends Error {
  readonly limit: number;

  constructor(limit: number) {
    super(`response body exceeds ${limit} bytes`);
    this.limit = limit;
  }
}

/**
 * Reads a whole body into memory, at most `limit` bytes. With `fail` a longer body destroys the
 * stream and throws BodyTooLargeError (an endless body stops at the cap); with `truncate` the
 * first `limit` bytes are returned and the stream is destroyed.
 */
export async function readBody(
  body: Readable,
  limit: number,
  overflow: "fail" | "truncate" = "fail",
): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer | string>) {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk) : chunk;
    if (total + bytes.byteLength > limit) {
      if (overflow === "truncate") {
        chunks.push(bytes.subarray(0, limit - total));
        total = limit;
        body.destroy();
        break;
      }
      body.destroy();
      throw new BodyTooLargeError(limit);
    }
    chunks.push(bytes);
    total += bytes.byteLength;
  }
  return new Uint8Array(Buffer.concat(chunks, total));
}

/** An already finished body, for responses whose bytes were buffered. */
export function emptyBody(): Readable {
  return Readable.from([]);
}

/**
 * Drops a body: reads what is already there up to a small amount so the connection can be kept,
 * otherwise destroys the stream (closing the connection beats reading megabytes of junk).
 */
export async function discardBody(
  body: Readable,
  keepAliveLimit = DISCARD_READ_LIMIT_BYTES,
  waitMs = DISCARD_WAIT_MS,
): Promise<void> {
  if (body.destroyed || body.readableEnded) return;
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<"stalled">((resolve) => {
    timer = setTimeout(() => {
      resolve("stalled");
    }, waitMs);
  });
  try {
    const outcome = await Promise.race([readBody(body, keepAliveLimit, "fail"), stalled]);
    if (outcome === "stalled") body.destroy();
  } catch {
    body.destroy();
  } finally {
    clearTimeout(timer);
  }
}

/** How much of an unwanted body is read to keep the connection; more and it is closed. */
const DISCARD_READ_LIMIT_BYTES = 64 * 1024;
/** How long an unwanted body may take to arrive before the connection is closed instead. */
const DISCARD_WAIT_MS = 1000;
