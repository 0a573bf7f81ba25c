import { createHash } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it, vi } from "vitest";
import { AbortedError } from "../errors.js";
import { fanOut, FanOutNotStartedError, type FanOutConsumer } from "./fan-out.js";

const CHUNK = 16 * 1024;

interface Sink {
  digest?: string;
  bytes: number;
}

function newSink(): Sink {
  return { bytes: 0 };
}

/** A source of `count` chunks that records how far it has been read. */
function countingSource(count: number, options: { failAt?: number } = {}) {
  const state = { produced: 0, destroyed: false };
  async function* generate() {
    try {
      for (let i = 0; i < count; i++) {
        if (options.failAt === i) throw new Error(`source broke at chunk ${i}`);
        state.produced += 1;
        yield Buffer.alloc(CHUNK, i % 251);
        await Promise.resolve();
      }
    } finally {
      if (state.produced < count) state.destroyed = true;
    }
  }
  return { stream: Readable.from(generate(), { objectMode: false }), state };
}

function expectedDigest(count: number): string {
  const hash = createHash("sha256");
  for (let i = 0; i < count; i++) hash.update(Buffer.alloc(CHUNK, i % 251));
  return hash.digest("hex");
}

/** A consumer that pipes its content into a hashing Writable, optionally slowly. */
function hashingConsumer(sink: Sink, delayMs = 0): FanOutConsumer {
  return async (content) => {
    const hash = createHash("sha256");
    await pipeline(
      Readable.from(content),
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          hash.update(chunk);
          sink.bytes += chunk.length;
          if (delayMs > 0) setTimeout(done, delayMs);
          else done();
        },
      }),
    );
    sink.digest = hash.digest("hex");
  };
}

describe("fanOut", () => {
  it("feeds identical bytes to every consumer from one read of the source", async () => {
    const { stream, state } = countingSource(64);
    const sinks = Array.from({ length: 5 }, () => newSink());
    const results = await fanOut(
      stream,
      sinks.map((sink, i) => hashingConsumer(sink, i === 4 ? 1 : 0)),
    );
    expect(results).toEqual(sinks.map(() => ({ ok: true })));
    expect(state.produced).toBe(64);
    for (const sink of sinks) {
      expect(sink.bytes).toBe(64 * CHUNK);
      expect(sink.digest).toBe(expectedDigest(64));
    }
  });

  it("lets the slowest live consumer set the pace, holding at most the high-water mark", async () => {
    const { stream, state } = countingSource(40);
    const highWaterBytes = 4 * CHUNK;
    let slowTaken = 0;
    let maxLead = 0;
    const slow: FanOutConsumer = async (content) => {
      for await (const chunk of content) {
        slowTaken += chunk.byteLength;
        await sleep(2);
      }
    };
    const fast: FanOutConsumer = async (content) => {
      for await (const _chunk of content) {
        maxLead = Math.max(maxLead, state.produced * CHUNK - slowTaken);
      }
    };
    const results = await fanOut(stream, [fast, slow], { highWaterBytes });
    expect(results.every((result) => result.ok)).toBe(true);
    // The source is at most the high-water mark plus the chunk in hand (and one read ahead by
    // the Readable) ahead of the slow consumer.
    expect(maxLead).toBeLessThanOrEqual(highWaterBytes + 3 * CHUNK);
    expect(maxLead).toBeGreaterThan(0);
  });

  it("detaches a consumer that fails mid-stream without stalling or failing the others", async () => {
    const { stream } = countingSource(50);
    const good = newSink();
    const stalledThenFailed: FanOutConsumer = async (content) => {
      // Reads three chunks by hand, stops reading, then fails without closing its iterator (as
      // an upload whose socket died abandons its body): the others must go on.
      const iterator = content[Symbol.asyncIterator]();
      for (let i = 0; i < 3; i++) await iterator.next();
      await sleep(20);
      throw new Error("destination reset the connection");
    };
    const results = await fanOut(stream, [hashingConsumer(good), stalledThenFailed], {
      highWaterBytes: 2 * CHUNK,
    });
    expect(results[0]).toEqual({ ok: true });
    expect(results[1]).toMatchObject({ ok: false, failedSide: "consumer" });
    expect(String((results[1] as { error: Error }).error)).toMatch(/reset the connection/);
    expect(good.digest).toBe(expectedDigest(50));
  }, 5_000);

  it("fails every consumer on the source side when the source breaks", async () => {
    const { stream } = countingSource(30, { failAt: 10 });
    const sinks = [newSink(), newSink()];
    const results = await fanOut(
      stream,
      sinks.map((sink) => hashingConsumer(sink)),
    );
    for (const result of results) {
      expect(result).toMatchObject({ ok: false, failedSide: "source" });
      expect(String((result as { error: Error }).error)).toMatch(/source broke at chunk 10/);
    }
  });

  it("closes the source early when every consumer has gone", async () => {
    const { stream, state } = countingSource(1000);
    const quitter: FanOutConsumer = async (content) => {
      for await (const _chunk of content) throw new Error("refused");
    };
    const results = await fanOut(stream, [quitter, quitter], { highWaterBytes: CHUNK });
    expect(results.map((result) => result.ok)).toEqual([false, false]);
    // Destroying the source may finish a tick after fanOut settles: poll, never a fixed sleep.
    await vi.waitFor(() => {
      expect(state.destroyed).toBe(true);
    });
    expect(state.produced).toBeLessThan(20);
  });

  it("treats a consumer that stops reading (return) as detached", async () => {
    const { stream } = countingSource(30);
    const good = newSink();
    const early: FanOutConsumer = async (content) => {
      for await (const _chunk of content) break;
    };
    const results = await fanOut(stream, [early, hashingConsumer(good)], { highWaterBytes: CHUNK });
    expect(results).toEqual([{ ok: true }, { ok: true }]);
    expect(good.digest).toBe(expectedDigest(30));
  });

  it("abandons the transfer when the signal aborts, even if the source ignores it", async () => {
    const controller = new AbortController();
    async function* endless() {
      for (;;) {
        yield Buffer.alloc(CHUNK);
        await sleep(5);
      }
    }
    const sinks = [newSink(), newSink()];
    setTimeout(() => {
      controller.abort();
    }, 30);
    const results = await fanOut(
      Readable.from(endless()),
      sinks.map((sink) => hashingConsumer(sink)),
      { signal: controller.signal },
    );
    for (const result of results) {
      expect(result).toMatchObject({ ok: false, failedSide: "source" });
      expect((result as { error: unknown }).error).toBeInstanceOf(AbortedError);
    }
  });

  it("drops a consumer that has not started while it holds the others back, breaking a slot deadlock", async () => {
    // Consumer B waits for a "connection slot" that A holds until A has stored everything; A
    // needs B to keep up. Without the start timeout this never ends.
    const { stream } = countingSource(200);
    let releaseSlot!: () => void;
    const slot = new Promise<void>((resolve) => (releaseSlot = resolve));
    const a = newSink();
    const holder: FanOutConsumer = async (content) => {
      await hashingConsumer(a)(content);
      releaseSlot();
    };
    const waiter: FanOutConsumer = async (content) => {
      await slot;
      await hashingConsumer(newSink())(content);
    };
    const results = await fanOut(stream, [holder, waiter], { highWaterBytes: 4 * CHUNK, startTimeoutMs: 50 });
    expect(results[0]).toEqual({ ok: true });
    expect(a.digest).toBe(expectedDigest(200));
    expect(results[1]).toMatchObject({ ok: false, failedSide: "consumer", notStarted: true });
    expect((results[1] as { error: unknown }).error).toBeInstanceOf(FanOutNotStartedError);
  }, 5_000);

  it("waits for a consumer that starts late but within the start timeout", async () => {
    const { stream } = countingSource(100);
    const late = newSink();
    const slowStarter: FanOutConsumer = async (content) => {
      await sleep(30);
      await hashingConsumer(late)(content);
    };
    const results = await fanOut(stream, [hashingConsumer(newSink()), slowStarter], {
      highWaterBytes: 2 * CHUNK,
      startTimeoutMs: 2_000,
    });
    expect(results).toEqual([{ ok: true }, { ok: true }]);
    expect(late.digest).toBe(expectedDigest(100));
  });

  it("reports progress per consumer", async () => {
    const { stream } = countingSource(8);
    const progress = [0, 0];
    await fanOut(stream, [hashingConsumer(newSink()), hashingConsumer(newSink())], {
      onProgress: (index, bytes) => (progress[index] = (progress[index] ?? 0) + bytes),
    });
    expect(progress).toEqual([8 * CHUNK, 8 * CHUNK]);
  });
});
