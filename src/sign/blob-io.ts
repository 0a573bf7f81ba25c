import type { Descriptor } from "../oci/index.js";
import type { Digest } from "../reference/index.js";
import type { BlobChecker, BlobReader, BlobWriter, CallOptions } from "../registry/index.js";
import { SignError } from "./errors.js";

/**
 * Small blobs (signature payloads, bundles, configs) are read whole: they are a few hundred bytes
 * and are written to several destinations. Reads are capped; the store verifies the digest.
 */
export async function readSmallBlob(
  store: BlobReader,
  descriptor: Descriptor,
  cap: number,
  options: CallOptions = {},
): Promise<Uint8Array> {
  if (descriptor.size > cap) {
    throw new SignError(
      "sign-format",
      `blob ${descriptor.digest} in ${store.name} is ${descriptor.size} bytes, above the ${cap}-byte limit for signature content`,
    );
  }
  const stream = await store.openBlob(descriptor, options);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > cap) {
      stream.destroy();
      throw new SignError(
        "sign-format",
        `blob ${descriptor.digest} in ${store.name} is larger than ${cap} bytes`,
      );
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Where a blob of planned content comes from: bytes in memory, or a store that holds it. */
export interface PlannedBlob {
  readonly descriptor: Descriptor;
  readonly bytes?: Uint8Array;
  readonly from?: BlobReader;
}

/**
 * Reads each blob once per run however many destinations need it (a promise per digest, so
 * concurrent writers share one read).
 */
export class BlobCache {
  private readonly reads = new Map<Digest, Promise<Uint8Array>>();

  constructor(private readonly cap: number) {}

  bytesOf(blob: PlannedBlob, options: CallOptions): Promise<Uint8Array> {
    if (blob.bytes) return Promise.resolve(blob.bytes);
    let read = this.reads.get(blob.descriptor.digest);
    if (!read) {
      const from = blob.from;
      if (!from) {
        return Promise.reject(new SignError("sign-format", `no source for blob ${blob.descriptor.digest}`));
      }
      read = readSmallBlob(from, blob.descriptor, this.cap, options);
      // A failed read is not cached: another destination may try again.
      read.catch(() => this.reads.delete(blob.descriptor.digest));
      this.reads.set(blob.descriptor.digest, read);
    }
    return read;
  }
}

/** Writes a blob unless the destination has it already (one HEAD, then an upload). */
export async function ensureBlob(
  destination: BlobChecker & BlobWriter,
  blob: PlannedBlob,
  cache: BlobCache,
  options: CallOptions,
): Promise<boolean> {
  if (await destination.hasBlob(blob.descriptor.digest, options)) return false;
  const bytes = await cache.bytesOf(blob, options);
  await destination.putBlob(blob.descriptor, once(bytes), options);
  return true;
}

/** A one-chunk stream of bytes held in memory. */
export async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield await Promise.resolve(bytes);
}
