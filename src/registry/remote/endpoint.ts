import type { Logger } from "../../log.js";
import { LISTING_PAGE_SIZE } from "../limits.js";
import { DOCKER_HUB, type RegistryHost } from "../../reference/index.js";
import type { Redactor } from "../redact.js";
import type { Transport } from "../transport/types.js";
import { PendingSessions } from "./blob-upload.js";

/** Docker Hub is named `docker.io` but its API is served at this host. */
export const DOCKER_HUB_API_HOST = "registry-1.docker.io";

/** How uploads are sent (see blob-upload.ts). */
export interface UploadSettings {
  /** Upload in PATCH chunks of this many bytes even when the registry does not ask for it. */
  readonly chunkBytes?: number;
  /** Stall timeout for the response to the request that completes an upload. */
  readonly commitTimeoutMs: number;
}

/**
 * One registry as the client sees it: the host people name, the origin its API answers at, the
 * transport stack, and what was learnt about it during the run (whether it has the referrers
 * API). Shared by every repository of the registry.
 */
export class RegistryEndpoint {
  /** `scheme://host[:port]` of the API; credentials go here only. */
  readonly origin: string;
  readonly apiHost: string;
  /** undefined until the first referrers request tells. */
  referrersApi: boolean | undefined;
  /**
   * The first referrers request while it is in flight: the others wait for its answer instead of
   * each asking a registry without the API once more (a pipelined run asks for many at once).
   */
  referrersProbe: Promise<void> | undefined;
  /** Upload sessions opened by declined mounts (see blob-upload.ts). */
  readonly pendingUploads = new PendingSessions();
  /** `from -> to` repository pairs whose mounts the registry refused (no pull on `from`). */
  readonly refusedMounts = new Set<string>();
  /** Serialises read-modify-write updates of referrers fallback tags (per repository and tag). */
  private readonly tagLocks = new Map<string, Promise<void>>();

  constructor(
    readonly host: RegistryHost,
    scheme: "http" | "https",
    readonly transport: Transport,
    readonly redactor: Redactor,
    readonly logger: Logger,
    readonly upload: UploadSettings,
    /** `n` asked for in tag and catalog listings. */
    readonly listingPageSize: number = LISTING_PAGE_SIZE,
  ) {
    this.apiHost = host === DOCKER_HUB ? DOCKER_HUB_API_HOST : host;
    this.origin = `${scheme}://${this.apiHost}`;
  }

  /** A URL of the API: `path` starts with `/v2/`. */
  url(path: string, query?: Readonly<Record<string, string | undefined>>): URL {
    // One absolute URL to parse, rather than `path` against a base parsed again for each of a
    // run's 700,000 requests. Only an absolute path keeps the URL on this origin (`@other/`
    // after the host would name another one).
    if (!path.startsWith("/")) throw new Error(`not an absolute API path: ${path}`);
    const url = new URL(`${this.origin}${path}`);
    if (query === undefined) return url;
    for (const [name, value] of Object.entries(query)) {
      if (value !== undefined) url.searchParams.set(name, value);
    }
    return url;
  }

  /** Runs `update` after any earlier update of the same key has finished. */
  async exclusive<T>(key: string, update: () => Promise<T>): Promise<T> {
    const previous = this.tagLocks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const chained = previous.then(() => mine);
    this.tagLocks.set(key, chained);
    await previous;
    try {
      return await update();
    } finally {
      release();
      if (this.tagLocks.get(key) === chained) this.tagLocks.delete(key);
    }
  }
}
