import type { Readable } from "node:stream";
import { AbortedError } from "../errors.js";
import type { Descriptor } from "../oci/index.js";
import { isAbort, isRetryable, nodeFailure } from "./errors.js";
import { fanOut, type FanOutResult } from "./fan-out.js";
import {
  NODE_WRITTEN,
  nodeKey,
  pauseBeforeRetry,
  type DestinationRun,
  type NodeResult,
  type RunContext,
  type SourceRef,
} from "./run-state.js";

/**
 * How often one upload may be sent back to the queue for not starting in time (see `fanOut`)
 * before that counts as a failed attempt.
 */
export const MAX_NOT_STARTED_REQUEUES = 10;

/**
 * Blobs this small (configs, small layers) take their transfer slots from a larger pool: moving
 * one is a few round trips (source GET, destination POST and PUT), not a matter of bandwidth or
 * memory, and over distance eight slots held through round trips left most of the per-host
 * request limits idle (issue 19). At 10 MB/s 256 KiB is ~25 ms, half a cross-region round trip.
 */
export const SMALL_BLOB_MAX_BYTES = 256 * 1024;

/** One destination waiting for a blob; `settle` resolves its node promise. */
export interface BlobDelivery {
  readonly destination: DestinationRun;
  /** The blob's role, for messages: `config` or `layer`. */
  readonly what: string;
  readonly settle: (result: NodeResult) => void;
}

interface TransferGroup {
  readonly source: SourceRef;
  readonly descriptor: Descriptor;
  readonly deliveries: BlobDelivery[];
}

/**
 * Uploads of blobs that destinations lack, grouped so one source read feeds every destination
 * that needs the blob. A request joins the group for the same source blob while that group is
 * still waiting for a transfer slot (so tasks sharing a base layer share its read too); once the
 * group starts, later requests form a new group.
 */
export class BlobTransfers {
  private readonly waiting = new Map<string, TransferGroup>();
  private readonly requeues = new WeakMap<BlobDelivery, number>();

  constructor(private readonly run: RunContext) {}

  request(source: SourceRef, descriptor: Descriptor, deliveries: readonly BlobDelivery[]): void {
    // The size is part of the key: a descriptor that lies about it must not share a stream
    // (and a verification) with one that does not.
    const key = `${nodeKey(source.key, descriptor.digest)}/${descriptor.size}`;
    const waiting = this.waiting.get(key);
    if (waiting) {
      waiting.deliveries.push(...deliveries);
      return;
    }
    const group: TransferGroup = { source, descriptor, deliveries: [...deliveries] };
    this.waiting.set(key, group);
    const leave = () => {
      if (this.waiting.get(key) === group) this.waiting.delete(key);
    };
    const slots = descriptor.size <= SMALL_BLOB_MAX_BYTES ? this.run.smallTransfers : this.run.transfers;
    slots
      .run(async () => {
        leave();
        await this.transfer(group);
      })
      .catch((error: unknown) => {
        // Refused before it started (abort), or an unexpected throw: nobody may wait forever.
        leave();
        for (const delivery of group.deliveries) {
          delivery.settle({ ok: false, failure: this.failure(error, group, delivery, "source") });
        }
      });
  }

  /**
   * Streams the blob to every delivery, retrying the destinations whose upload failed with a
   * fresh source read each time (an upload restarts its session; bodies are never replayed).
   */
  private async transfer(group: TransferGroup): Promise<void> {
    const { signal, call, writeAttempts, emit, logger } = this.run;
    const { source, descriptor } = group;
    let pending: readonly BlobDelivery[] = group.deliveries;
    for (let attempt = 1; pending.length > 0; attempt += 1) {
      if (signal?.aborted === true) {
        for (const delivery of pending) {
          delivery.settle({
            ok: false,
            failure: this.failure(new AbortedError(), group, delivery, "destination"),
          });
        }
        return;
      }
      const finalAttempt = attempt >= writeAttempts;
      emit({
        type: "source-read",
        taskId: source.taskId,
        source: source.store.name,
        digest: descriptor.digest,
        size: descriptor.size,
        destinations: pending.length,
        attempt,
      });
      for (const { destination } of pending) {
        emit({ ...this.blobEvent(destination, descriptor), type: "blob-started", attempt });
      }

      let results: FanOutResult[];
      let stream: Readable | undefined;
      try {
        stream = await source.store.openBlob(descriptor, call);
        // fanOut may stop before it reads a byte (the run aborted while every upload was still
        // waiting to start): the stream is then closed here, and the error its abort signal
        // raises on it must not go unheard (an uncaught 'error' would end the process).
        stream.on("error", () => undefined);
        results = await fanOut(
          stream as AsyncIterable<Uint8Array>,
          pending.map(
            ({ destination }) =>
              (content) =>
                destination.store.putBlob(descriptor, content, call),
          ),
          {
            signal,
            startTimeoutMs: this.run.uploadStartTimeoutMs,
            onProgress: (index, bytes) => {
              const delivery = pending[index];
              if (delivery) {
                emit({ ...this.blobEvent(delivery.destination, descriptor), type: "blob-progress", bytes });
              }
            },
          },
        );
      } catch (error) {
        results = pending.map((): FanOutResult => ({ ok: false, failedSide: "source", error }));
      }
      if (stream !== undefined && !stream.readableEnded) stream.destroy();

      const again: BlobDelivery[] = [];
      const requeued: BlobDelivery[] = [];
      results.forEach((result, index) => {
        const delivery = pending[index];
        if (!delivery) return;
        const { destination } = delivery;
        if (result.ok) {
          destination.stats.blobsUploaded += 1;
          destination.stats.bytesWritten += descriptor.size;
          emit({ ...this.blobEvent(destination, descriptor), type: "blob-uploaded" });
          delivery.settle(NODE_WRITTEN);
          return;
        }
        const side = result.failedSide === "source" ? "source" : "destination";
        const failure = this.failure(result.error, group, delivery, side);
        const requeues = this.requeues.get(delivery) ?? 0;
        if (result.notStarted === true && requeues < MAX_NOT_STARTED_REQUEUES && signal?.aborted !== true) {
          // Not its fault: it waited for a connection while the others streamed. It goes to the
          // back of the queue for its own read, without using up an attempt.
          this.requeues.set(delivery, requeues + 1);
          emit({
            ...this.blobEvent(destination, descriptor),
            type: "blob-failed",
            error: failure,
            retrying: true,
          });
          logger.log("debug", `upload requeued: ${failure.message}`, { digest: descriptor.digest });
          requeued.push(delivery);
          return;
        }
        const retrying = !finalAttempt && !isAbort(result.error, signal) && isRetryable(result.error);
        emit({ ...this.blobEvent(destination, descriptor), type: "blob-failed", error: failure, retrying });
        if (retrying) {
          logger.log("warn", `retrying blob upload: ${failure.message}`, {
            digest: descriptor.digest,
            destination: destination.name,
            attempt,
          });
          again.push(delivery);
        } else {
          delivery.settle({ ok: false, failure });
        }
      });
      if (requeued.length > 0) this.request(source, descriptor, requeued);
      pending = again;
      if (pending.length > 0) await pauseBeforeRetry(attempt, signal);
    }
  }

  private failure(
    error: unknown,
    group: TransferGroup,
    delivery: BlobDelivery,
    side: "source" | "destination",
  ) {
    return nodeFailure(error, {
      side,
      digest: group.descriptor.digest,
      what: delivery.what,
      source: group.source.store.name,
      destination: delivery.destination.name,
      signal: this.run.signal,
    });
  }

  private blobEvent(destination: DestinationRun, descriptor: Descriptor) {
    return {
      taskId: destination.taskId,
      destination: destination.name,
      digest: descriptor.digest,
      size: descriptor.size,
    };
  }
}
