import { Worker } from "node:worker_threads";
import { PromoterError } from "../errors.js";
import { findingQuery, findingsFromRows, type AuditFinding, type FindingFilter } from "./finding-store.js";
import { sqliteDriverPath } from "./sqlite.js";

/**
 * `GET /findings` reads on their own read-only connection in a worker thread. better-sqlite3 is
 * synchronous, and a filter no index serves (a tag, a repository prefix) scans the whole table:
 * run on the server's event loop, four readers held up every notification for the length of
 * their scans. On a worker they cost the event loop only the page they return (at most
 * `MAX_FINDINGS_PAGE` rows). Reads wait in one queue; a full queue, or a read that takes too
 * long, is answered "busy" (503) rather than queued without bound.
 */

/** Reads waiting for the worker (one runs at a time); more are refused as busy. */
export const MAX_QUEUED_READS = 16;
/** A read (queueing included) that takes longer is abandoned and the worker replaced. */
export const READ_TIMEOUT_MS = 30_000;

/** The reader could not answer now (queue full, timed out, worker gone); retrying later may work. */
export class FindingReaderBusyError extends PromoterError {
  constructor(message: string) {
    super("audit-reader-busy", message);
  }
}

/** What the server needs to answer `GET /findings`. */
export interface FindingQueries {
  query(filter: FindingFilter): Promise<AuditFinding[]>;
  close(): Promise<void>;
}

/**
 * The worker's program, plain CommonJS evaluated by `new Worker(..., { eval: true })` so it runs
 * the same from src/ (tests) and dist/: it only executes the SQL `findingQuery` built.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.path, { readonly: true, fileMustExist: true });
db.pragma("busy_timeout = 5000");
parentPort.on("message", ({ id, sql, params }) => {
  try {
    parentPort.postMessage({ id, rows: db.prepare(sql).all(...params) });
  } catch (error) {
    parentPort.postMessage({ id, error: String((error && error.message) || error) });
  }
});
`;

interface WorkerAnswer {
  readonly id: number;
  readonly rows?: unknown[];
  readonly error?: string;
}

interface PendingRead {
  readonly resolve: (findings: AuditFinding[]) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export interface FindingReaderOptions {
  readonly maxQueued?: number;
  readonly timeoutMs?: number;
}

export class FindingReader implements FindingQueries {
  private readonly path: string;
  private readonly maxQueued: number;
  private readonly timeoutMs: number;
  private worker: Worker | undefined;
  private readonly pending = new Map<number, PendingRead>();
  private nextId = 1;
  private closed = false;

  /** Reads the findings database at `path` (it must exist: the server opened it first). */
  constructor(path: string, options: FindingReaderOptions = {}) {
    this.path = path;
    this.maxQueued = options.maxQueued ?? MAX_QUEUED_READS;
    this.timeoutMs = options.timeoutMs ?? READ_TIMEOUT_MS;
  }

  query(filter: FindingFilter): Promise<AuditFinding[]> {
    if (this.closed) return Promise.reject(new FindingReaderBusyError("the findings reader is closed"));
    if (this.pending.size >= this.maxQueued) {
      return Promise.reject(
        new FindingReaderBusyError(`${this.pending.size} findings queries are waiting; try again shortly`),
      );
    }
    const worker = this.startedWorker();
    const id = this.nextId++;
    const { sql, params } = findingQuery(filter);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // better-sqlite3 cannot interrupt a query: replace the worker, fail what it held.
        this.discardWorker(
          worker,
          new FindingReaderBusyError(`a findings query took longer than ${this.timeoutMs / 1000} s`),
        );
      }, this.timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      worker.postMessage({ id, sql, params });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const worker = this.worker;
    if (worker) {
      this.discardWorker(worker, new FindingReaderBusyError("the findings reader is closed"));
      await worker.terminate();
    }
  }

  private startedWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { driver: sqliteDriverPath(), path: this.path },
    });
    worker.on("message", (answer: WorkerAnswer) => {
      const read = this.pending.get(answer.id);
      if (!read) return;
      this.pending.delete(answer.id);
      clearTimeout(read.timer);
      if (answer.error !== undefined)
        read.reject(new FindingReaderBusyError(`findings query failed: ${answer.error}`));
      else read.resolve(findingsFromRows(answer.rows ?? []));
    });
    worker.on("error", (error) => {
      this.discardWorker(worker, new FindingReaderBusyError(`the findings reader failed: ${error.message}`));
    });
    worker.on("exit", () => {
      this.discardWorker(worker, new FindingReaderBusyError("the findings reader stopped"));
    });
    this.worker = worker;
    return worker;
  }

  /** Fails every read the worker held and lets the next query start a new one. */
  private discardWorker(worker: Worker, error: Error): void {
    if (this.worker !== worker) return;
    this.worker = undefined;
    for (const read of this.pending.values()) {
      clearTimeout(read.timer);
      read.reject(error);
    }
    this.pending.clear();
    void worker.terminate();
  }
}
