import { AbortedError, describeError } from "../errors.js";
import {
  InvalidContentError,
  MAX_INDEX_DEPTH,
  parseManifest,
  successors,
  type Descriptor,
  type ParsedManifest,
} from "../oci/index.js";
import { digestAlgorithm, digestOf, type Digest, type Tag } from "../reference/index.js";
import type { ManifestContent } from "../registry/index.js";
import { BlobTransfers, type BlobDelivery } from "./blob-transfers.js";
import { CopyError, isAbort, isRefusal, isRetryable, nodeFailure, type NodeFailure } from "./errors.js";
import {
  deferred,
  DestinationRun,
  NODE_PRESENT,
  NODE_WRITTEN,
  emptyStats,
  nodeKey,
  pauseBeforeRetry,
  RepositoryShortIds,
  type NodeResult,
  type RunContext,
  type SourceRef,
} from "./run-state.js";
import type { CopyDestinationStore, CopyOutcome, CopySourceStore, CopyStatus, CopyTask } from "./task.js";

/**
 * Layer media types that registries do not hold: clients fetch them from the descriptor's
 * `urls`. Like other registry-to-registry copiers, we leave them out.
 * https://github.com/opencontainers/image-spec/blob/v1.1.0/layer.md#non-distributable-layers
 * https://github.com/distribution/distribution/blob/main/docs/content/spec/manifest-v2-2.md
 */
const NON_DISTRIBUTABLE_MEDIA_TYPES: ReadonlySet<string> = new Set([
  "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
  "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
]);

interface NodeEntry {
  readonly destination: DestinationRun;
  readonly settle: (result: NodeResult) => void;
}

type NodeResults = ReadonlyMap<DestinationRun, Promise<NodeResult>>;

/**
 * The largest blob uploaded into a repository seen empty without asking first. Above it the
 * HEAD (one round trip) is cheaper than sending bytes a stopped earlier run may already have
 * uploaded: 4 MiB is about the bytes a 100 Mbit/s link moves in 300 ms.
 */
const UNCHECKED_UPLOAD_MAX_BYTES = 4 * 1024 * 1024;

/**
 * Which destination repositories this run saw holding a blob, at most one per registry (the one
 * a mount would come from): a run keeps one small entry per (blob, registry).
 */
class BlobHolders {
  private readonly byDigest = new Map<Digest, DestinationRun[]>();

  add(digest: Digest, destination: DestinationRun): void {
    const holders = this.byDigest.get(digest);
    if (holders === undefined) {
      this.byDigest.set(digest, [destination]);
      return;
    }
    const sameRegistry = holders.some(
      (holder) => holder.key === destination.key || destination.store.canMountFrom(holder.store),
    );
    if (!sameRegistry) holders.push(destination);
  }

  /** A holder on `destination`'s registry that it may mount from, if any. */
  mountableInto(digest: Digest, destination: DestinationRun): CopyDestinationStore | undefined {
    return this.byDigest
      .get(digest)
      ?.find((holder) => holder.key !== destination.key && destination.store.canMountFrom(holder.store))
      ?.store;
  }
}

const PRESENT = Promise.resolve(NODE_PRESENT);
const WRITTEN = Promise.resolve(NODE_WRITTEN);

/**
 * Copies image graphs for one run. Every node (manifest or blob) is handled once per destination
 * repository for the whole run: the first task to need it starts the work, later ones (other
 * tasks, or a second reference in the same graph) wait on the same promise. Within a node, the
 * destinations of a task are handled together so a blob missing at several of them is read
 * once. A node is written to a destination only after everything it references is there.
 */
export class GraphCopier {
  private readonly manifests = new Map<string, Promise<NodeResult>>();
  private readonly blobs = new Map<string, Promise<NodeResult>>();
  /** Source manifest reads in flight, so parents sharing a child read it once. */
  private readonly sourceReads = new Map<string, Promise<ManifestContent>>();
  private readonly transfers: BlobTransfers;
  private readonly repositories = new RepositoryShortIds();
  private readonly holders = new BlobHolders();
  /** Destinations (of one task) whose root the caller saw absent: no existence check for it. */
  private readonly rootAbsent = new WeakSet<DestinationRun>();
  /**
   * Repositories the caller saw empty: nothing of a graph is checked there before it is written.
   * What this run itself writes there is known through `manifests` and `blobs`.
   */
  private readonly emptyRepositories = new Set<string>();

  constructor(private readonly run: RunContext) {
    this.transfers = new BlobTransfers(run);
  }

  /** Copies one task to all its destinations; never rejects. */
  async copyTask(task: CopyTask): Promise<CopyOutcome[]> {
    const started = performance.now();
    const source: SourceRef = { taskId: task.id, store: task.source, key: this.repositories.of(task.source) };
    const destinations = task.destinations.map(
      (destination, index) =>
        // A root this task writes goes up by its first tag: one request, not one by digest and
        // one for the tag, and still only once everything under it is there (copyManifest).
        new DestinationRun(
          task.id,
          index,
          destination.store,
          this.repositories.of(destination.store),
          destination.tags[0],
        ),
    );
    for (const destination of destinations) {
      const seen = task.destinations[destination.index]?.seen;
      if (seen === "root-absent") this.rootAbsent.add(destination);
      if (seen === "empty-repository") this.emptyRepositories.add(destination.key);
    }
    this.run.emit({ type: "task-started", taskId: task.id, destinations: destinations.length });

    // The root's bytes serve both the graph copy and the tag writes: read them at most once.
    let rootRead: Promise<ManifestContent> | undefined;
    const readRoot = () => (rootRead ??= this.readSourceManifest(source, task.digest));
    const roots = this.ensureManifest(source, task.digest, destinations, 0, readRoot, "manifest");

    return Promise.all(
      destinations.map(async (destination) => {
        const root = (await roots.get(destination)) ?? NODE_PRESENT;
        const tags = task.destinations[destination.index]?.tags ?? [];
        const finish = await this.writeTags(source, destination, task.digest, root, tags, readRoot);
        const outcome: CopyOutcome = {
          taskId: task.id,
          destinationIndex: destination.index,
          source: task.source.name,
          destination: destination.name,
          digest: task.digest,
          ...finish,
          stats: { ...destination.stats },
          durationMs: performance.now() - started,
        };
        this.run.emit({ type: "destination-done", taskId: task.id, outcome });
        return outcome;
      }),
    );
  }

  /** Outcomes for a task that was never started because the run had been aborted. */
  skipTask(task: CopyTask): CopyOutcome[] {
    return task.destinations.map((destination, index) => {
      const outcome: CopyOutcome = {
        taskId: task.id,
        destinationIndex: index,
        source: task.source.name,
        destination: destination.store.name,
        digest: task.digest,
        status: "aborted",
        tagsWritten: [],
        error: new AbortedError(
          `${task.digest} not copied to ${destination.store.name}: the run was aborted`,
        ),
        stats: emptyStats(),
        durationMs: 0,
      };
      this.run.emit({ type: "destination-done", taskId: task.id, outcome });
      return outcome;
    });
  }

  /** Tags go last, only on a complete root, and never after an abort. */
  private async writeTags(
    source: SourceRef,
    destination: DestinationRun,
    digest: Digest,
    root: NodeResult,
    tags: readonly Tag[],
    readRoot: () => Promise<ManifestContent>,
  ): Promise<Pick<CopyOutcome, "status" | "tagsWritten" | "error">> {
    if (!root.ok) return failedWith(root.failure, []);
    const tagsWritten: Tag[] = [];
    const fail = (error: unknown, side: "source" | "destination", what: string) =>
      failedWith(this.failure(error, side, digest, what, source, destination), tagsWritten);
    for (const tag of tags) {
      if (!destination.rootTagged || tag !== destination.rootTag) {
        let content: ManifestContent;
        try {
          content = await readRoot();
        } catch (error) {
          return fail(error, "source", "manifest");
        }
        try {
          await this.putManifest(destination, content, tag);
        } catch (error) {
          return fail(error, "destination", `tag ${tag} of manifest`);
        }
      }
      tagsWritten.push(tag);
      this.run.emit({
        type: "tag-written",
        taskId: destination.taskId,
        destination: destination.name,
        digest,
        tag,
      });
    }
    const status: CopyStatus = root.written ? "copied" : tags.length > 0 ? "tagged" : "unchanged";
    return { status, tagsWritten };
  }

  /**
   * Makes the manifest `digest` exist at each destination; returns one promise per destination.
   * `read` gives the manifest's bytes from the source, called only if a destination lacks it.
   */
  private ensureManifest(
    source: SourceRef,
    digest: Digest,
    destinations: readonly DestinationRun[],
    depth: number,
    read: () => Promise<ManifestContent>,
    what: string,
  ): NodeResults {
    const { results, fresh } = this.claim(this.manifests, digest, destinations, (stats) => {
      stats.manifestsSkipped += 1;
    });
    if (fresh.length > 0) {
      this.copyManifest(source, digest, fresh, depth, read, what).catch((error: unknown) => {
        this.settleUnexpected(fresh, error, source, digest, what);
      });
    }
    return results;
  }

  private ensureBlob(
    source: SourceRef,
    descriptor: Descriptor,
    destinations: readonly DestinationRun[],
    what: string,
  ): NodeResults {
    const { results, fresh } = this.claim(this.blobs, descriptor.digest, destinations, (stats) => {
      stats.blobsSkipped += 1;
    });
    if (fresh.length > 0) {
      this.copyBlob(source, descriptor, fresh, what).catch((error: unknown) => {
        this.settleUnexpected(fresh, error, source, descriptor.digest, what);
      });
    }
    return results;
  }

  /**
   * Splits destinations into those whose node is already being handled in this run (they wait
   * on it, and count it as skipped) and fresh ones, registered here before any await so that a
   * concurrent caller finds them.
   */
  private claim(
    registry: Map<string, Promise<NodeResult>>,
    digest: Digest,
    destinations: readonly DestinationRun[],
    countShared: (stats: DestinationRun["stats"]) => void,
  ): { results: NodeResults; fresh: NodeEntry[] } {
    const results = new Map<DestinationRun, Promise<NodeResult>>();
    const fresh: NodeEntry[] = [];
    for (const destination of destinations) {
      const key = nodeKey(destination.key, digest);
      const existing = registry.get(key);
      if (existing) {
        results.set(
          destination,
          existing.then((result) => {
            if (result.ok) countShared(destination.stats);
            return result;
          }),
        );
        continue;
      }
      const node = deferred<NodeResult>();
      let settled = false;
      registry.set(key, node.promise);
      results.set(destination, node.promise);
      fresh.push({
        destination,
        settle: (result) => {
          if (settled) return;
          settled = true;
          node.resolve(result);
          // Completed nodes share two constant promises: a long run keeps one entry per
          // (repository, node), and a settled promise per entry would double its size.
          if (result.ok && registry.get(key) === node.promise) {
            registry.set(key, result.written ? WRITTEN : PRESENT);
          }
        },
      });
    }
    return { results, fresh };
  }

  private async copyManifest(
    source: SourceRef,
    digest: Digest,
    entries: readonly NodeEntry[],
    depth: number,
    read: () => Promise<ManifestContent>,
    what: string,
  ): Promise<void> {
    const { requests, call } = this.run;
    const fail = (entry: NodeEntry, error: unknown, side: "source" | "destination") => {
      entry.settle({
        ok: false,
        failure: this.failure(error, side, digest, what, source, entry.destination),
      });
    };

    // Existence is checked by digest, never through a tag; not at all where the caller saw it
    // absent (the root) or saw the repository empty.
    const missing: NodeEntry[] = [];
    await Promise.all(
      entries.map(async (entry) => {
        const { destination } = entry;
        if (
          (depth === 0 && this.rootAbsent.has(destination)) ||
          this.emptyRepositories.has(destination.key)
        ) {
          missing.push(entry);
          return;
        }
        try {
          const found = await requests.run(() => destination.store.resolve(digest, call));
          if (found === undefined) {
            missing.push(entry);
            return;
          }
        } catch (error) {
          fail(entry, error, "destination");
          return;
        }
        destination.stats.manifestsSkipped += 1;
        this.run.emit({
          type: "manifest-skipped",
          taskId: destination.taskId,
          destination: destination.name,
          digest,
        });
        // Present means complete: its children are not checked.
        entry.settle(NODE_PRESENT);
      }),
    );
    if (missing.length === 0) return;

    let content: ManifestContent;
    let manifest: ParsedManifest;
    try {
      content = await read();
      manifest = parseManifest(content.bytes, content.mediaType, `${source.store.name}@${digest}`);
      if (manifest.kind === "index" && depth >= MAX_INDEX_DEPTH) {
        throw new InvalidContentError(
          `${source.store.name}@${digest}: indexes nested deeper than ${MAX_INDEX_DEPTH} levels`,
        );
      }
    } catch (error) {
      for (const entry of missing) fail(entry, error, "source");
      return;
    }

    // Children are requested for all missing destinations at once, so shared blobs fan out.
    const destinations = missing.map((entry) => entry.destination);
    const children: NodeResults[] =
      manifest.kind === "index"
        ? manifest.manifests.map((child) =>
            this.ensureManifest(
              source,
              child.digest,
              destinations,
              depth + 1,
              () => this.readSourceManifest(source, child.digest),
              "child manifest",
            ),
          )
        : successors(manifest).map((blob, index) =>
            this.ensureBlob(source, blob, destinations, index === 0 ? "config" : "layer"),
          );

    // Each destination moves on as soon as its own children are there: a slow mirror does not
    // hold back the others' manifests and tags.
    await Promise.all(
      missing.map(async (entry) => {
        const { destination } = entry;
        const results = await Promise.all(
          children.map((child) => child.get(destination) ?? Promise.resolve(NODE_PRESENT)),
        );
        const failed = results.find((result) => !result.ok);
        if (failed) {
          entry.settle(failed);
          return;
        }
        // A task's root (depth 0: only its own destinations claim it here) goes up by its tag,
        // unless it has a subject: its PUT also records the referrer (the fallback tag on
        // registries without the referrers API), and that part may fail after the manifest, and
        // so the tag, is stored.
        const tag = depth === 0 && manifest.subject === undefined ? destination.rootTag : undefined;
        try {
          if (tag === undefined || !(await this.putTaggedRoot(destination, content, tag))) {
            await this.putManifest(destination, content, digest);
          } else {
            destination.rootTagged = true;
          }
        } catch (error) {
          fail(entry, error, "destination");
          return;
        }
        destination.stats.manifestsWritten += 1;
        destination.stats.bytesWritten += content.bytes.byteLength;
        this.run.emit({
          type: "manifest-written",
          taskId: destination.taskId,
          destination: destination.name,
          digest,
          mediaType: content.mediaType,
          size: content.bytes.byteLength,
        });
        entry.settle(NODE_WRITTEN);
      }),
    );
  }

  private async copyBlob(
    source: SourceRef,
    descriptor: Descriptor,
    entries: readonly NodeEntry[],
    what: string,
  ): Promise<void> {
    const { requests, call, emit, logger } = this.run;
    const { digest, size } = descriptor;
    const event = (destination: DestinationRun) => ({
      taskId: destination.taskId,
      destination: destination.name,
      digest,
      size,
    });

    if (NON_DISTRIBUTABLE_MEDIA_TYPES.has(descriptor.mediaType)) {
      for (const { destination, settle } of entries) {
        destination.stats.blobsSkipped += 1;
        emit({ ...event(destination), type: "blob-skipped", reason: "non-distributable" });
        settle(NODE_PRESENT);
      }
      return;
    }

    const uploads: BlobDelivery[] = [];
    await Promise.all(
      entries.map(async (entry) => {
        const { destination } = entry;
        // Whatever this run learns, later destinations on the same registry may mount from it.
        const settle = (result: NodeResult) => {
          if (result.ok) this.holders.add(descriptor.digest, destination);
          entry.settle(result);
        };
        const settleFailed = (error: unknown) => {
          settle({
            ok: false,
            failure: this.failure(error, "destination", digest, what, source, destination),
          });
        };

        // A repository known to hold the blob on the same registry: mount without asking first.
        // The mount answers for both questions: 201 if the blob is (now) here, 202 with an
        // upload session if the registry declines, so the HEAD would only add a round trip.
        const from = this.mountSource(source, digest, destination);
        if (from !== undefined) {
          try {
            if (
              await requests.run(() =>
                destination.store.mountBlob(descriptor, from.location.repository, call),
              )
            ) {
              destination.stats.blobsMounted += 1;
              emit({ ...event(destination), type: "blob-mounted" });
              settle(NODE_WRITTEN);
              return;
            }
            if (destination.store.canMountFrom(from)) {
              // Declined (202): the session it opened waits for this upload. No HEAD either:
              // the registry would have mounted a blob it holds.
              uploads.push({ destination, what, settle });
              return;
            }
            // Refused for this pair (no session opened): check and upload as without a mount.
          } catch (error) {
            const failure = this.failure(error, "destination", digest, what, source, destination);
            if (failure instanceof AbortedError) {
              settle({ ok: false, failure });
              return;
            }
            // A failed mount is not fatal: the check and upload below do the same job.
            logger.log("debug", `mount failed, uploading instead: ${describeError(error)}`, {
              digest,
              destination: destination.name,
            });
          }
        }

        // In a repository seen empty, a blob that this run did not put there is not there, unless
        // an earlier run was stopped after uploading it (tags come last, so its repository lists
        // empty): a large blob is still asked about, so that resuming such a run does not send
        // its bytes again; a small one costs less to send than a round trip to ask.
        if (this.emptyRepositories.has(destination.key) && descriptor.size <= UNCHECKED_UPLOAD_MAX_BYTES) {
          uploads.push({ destination, what, settle });
          return;
        }
        try {
          if (await requests.run(() => destination.store.hasBlob(digest, call))) {
            destination.stats.blobsSkipped += 1;
            emit({ ...event(destination), type: "blob-skipped", reason: "exists" });
            settle(NODE_PRESENT);
            return;
          }
        } catch (error) {
          settleFailed(error);
          return;
        }
        uploads.push({ destination, what, settle });
      }),
    );
    if (uploads.length > 0) this.transfers.request(source, descriptor, uploads);
  }

  /**
   * A repository to mount `digest` from into `destination`, when mounts are on: the task's source
   * if it shares the destination's registry, else another destination repository there that
   * this run saw holding the blob (found, uploaded or mounted). Only settled holders count:
   * waiting for an upload in flight elsewhere would put its whole transfer on this path.
   */
  private mountSource(
    source: SourceRef,
    digest: Digest,
    destination: DestinationRun,
  ): CopySourceStore | CopyDestinationStore | undefined {
    if (!this.run.mount) return undefined;
    if (source.key !== destination.key && destination.store.canMountFrom(source.store)) return source.store;
    return this.holders.mountableInto(digest, destination);
  }

  /** The manifest's bytes from the source, checked against `digest`; concurrent reads are shared. */
  private readSourceManifest(source: SourceRef, digest: Digest): Promise<ManifestContent> {
    const key = nodeKey(source.key, digest);
    const inFlight = this.sourceReads.get(key);
    if (inFlight) return inFlight;
    const reading = this.run.requests
      .run(() => source.store.getManifest(digest, this.run.call))
      .then((content) => {
        if (content === undefined) {
          throw new CopyError("copy-source-missing", `manifest ${digest} not found in ${source.store.name}`, {
            side: "source",
            digest,
          });
        }
        // The store verifies too; these bytes go to production, so check once more here.
        if (content.digest !== digest || digestOf(content.bytes, digestAlgorithm(digest)) !== digest) {
          throw new CopyError(
            "copy-source-failed",
            `manifest ${digest} from ${source.store.name}: the bytes do not match the digest`,
            { side: "source", digest },
          );
        }
        return content;
      })
      .finally(() => this.sourceReads.delete(key));
    this.sourceReads.set(key, reading);
    return reading;
  }

  /**
   * Writes a manifest under its digest or a tag, with a few attempts: besides network trouble,
   * a registry may refuse an index for a moment while another request rewrites a child's
   * metadata (distribution's filesystem driver does). Checked against the abort signal right
   * before each attempt: nothing is written once the run is stopping.
   */
  private async putManifest(
    destination: DestinationRun,
    content: ManifestContent,
    reference: Digest | Tag,
  ): Promise<void> {
    const { signal, call, requests, writeAttempts, logger } = this.run;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await requests.run(() => {
          if (signal?.aborted === true) throw new AbortedError();
          return destination.store.putManifest(content, reference, call);
        });
        return;
      } catch (error) {
        if (attempt >= writeAttempts || isAbort(error, signal) || !isRetryable(error)) throw error;
        logger.log("warn", `retrying manifest write: ${describeError(error)}`, {
          destination: destination.name,
          reference,
          attempt,
        });
        await pauseBeforeRetry(attempt, signal);
      }
    }
  }

  /**
   * Writes a root by its tag: true when the tag names it. A write that failed may still have
   * been stored (an answer lost on the way back): the tag is asked, and when it names the root
   * the write is done, so what the outcome says of the tag is what the registry holds. False
   * when the registry refused the tag itself (a 4xx answer: a tag it holds immutable, say): the
   * caller writes the root by digest, so the images that share it are not failed for one tag,
   * and the tag fails alone in `writeTags`. Any other failure is the root's.
   */
  private async putTaggedRoot(
    destination: DestinationRun,
    content: ManifestContent,
    tag: Tag,
  ): Promise<boolean> {
    try {
      await this.putManifest(destination, content, tag);
      return true;
    } catch (error) {
      if (isAbort(error, this.run.signal)) throw error;
      const { requests, call } = this.run;
      const named = await requests
        .run(() => destination.store.resolve(tag, call))
        .catch((checkError: unknown) => {
          if (isAbort(checkError, this.run.signal)) throw checkError;
          return undefined;
        });
      if (named?.digest === content.digest) return true;
      if (isRefusal(error)) return false;
      throw error;
    }
  }

  /** A bug must not leave parents and tags waiting forever: settle whatever is still open. */
  private settleUnexpected(
    entries: readonly NodeEntry[],
    error: unknown,
    source: SourceRef,
    digest: Digest,
    what: string,
  ): void {
    this.run.logger.log("error", `unexpected failure copying ${what} ${digest}: ${describeError(error)}`);
    for (const entry of entries) {
      entry.settle({
        ok: false,
        failure: this.failure(error, "destination", digest, what, source, entry.destination),
      });
    }
  }

  private failure(
    error: unknown,
    side: "source" | "destination",
    digest: Digest,
    what: string,
    source: SourceRef,
    destination: DestinationRun,
  ): NodeFailure {
    return nodeFailure(error, {
      side,
      digest,
      what,
      source: source.store.name,
      destination: destination.name,
      signal: this.run.signal,
    });
  }
}

function failedWith(
  failure: NodeFailure,
  tagsWritten: readonly Tag[],
): Pick<CopyOutcome, "status" | "tagsWritten" | "error"> {
  return { status: failure instanceof AbortedError ? "aborted" : "failed", tagsWritten, error: failure };
}
