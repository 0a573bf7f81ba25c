import { isJsonObject } from "../../json-shape.js";
import {
  isRepositoryPath,
  isTag,
  type Digest,
  type RepositoryPath,
  type Tag,
} from "../../reference/index.js";
import { MAX_LISTING_BYTES, NAME_LISTING_BOUNDS } from "../limits.js";
import type { CallOptions, ListedManifest, TagListing } from "../store.js";
import { requestError } from "../transport/request-error.js";
import type { HttpRequest, HttpResponse, RequestContext } from "../transport/types.js";
import { CATALOG_SCOPE, pullScope } from "../auth/scope.js";
import type { RegistryEndpoint } from "./endpoint.js";
import { ListingBudget } from "./listing-budget.js";
import { addManifestMap } from "./manifest-map.js";
import type { RepositoryClient } from "./repository-client.js";

/**
 * Paginated listings: tags and `_catalog`. Pages are followed through the `Link: <...>;
 * rel="next"` header (RFC 8288), relative to the page that sent it, on the registry's own origin
 * and within NAME_LISTING_BOUNDS (see ListingBudget). A registry that ignores `n` and sends
 * everything at once, or sends a `Link` back to a page already read, or a page with nothing
 * new, ends the listing instead of looping.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-tags
 */

interface PageSource {
  readonly context: RequestContext;
  readonly endpoint: RegistryEndpoint;
  readonly auth: HttpRequest["auth"];
  fail(response: HttpResponse, request: HttpRequest): Promise<Error>;
}

/**
 * Collects the string entries of `field` over all pages. `absentMeansEmpty`: a 404 on the first
 * page means an empty listing (an absent repository has no tags).
 */
async function collectPages(
  source: PageSource,
  first: URL,
  field: "tags" | "repositories",
  absentMeansEmpty: boolean,
  options: CallOptions,
  /** Also reads something else on each page; returns how many entries it took (none: 0). */
  onPage?: (document: unknown) => number,
): Promise<string[]> {
  const seen = new Set<string>();
  const budget = new ListingBudget(NAME_LISTING_BOUNDS, field, first);
  let url: URL | undefined = first;
  let retriedWithoutN = false;
  for (let page = 0; url !== undefined; page++) {
    const request: HttpRequest = {
      method: "GET",
      url,
      headers: { accept: "application/json" },
      context: source.context,
      bufferLimit: MAX_LISTING_BYTES,
      ...(source.auth === undefined ? {} : { auth: source.auth }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    };
    const response = await source.endpoint.transport.send(request);
    if (response.status === 404 && page === 0 && absentMeansEmpty) return [];
    if (response.status === 400 && page === 0 && !retriedWithoutN && url.searchParams.has("n")) {
      // Some registries refuse a page size above their own maximum: let them choose.
      await response.discard();
      url = new URL(url);
      url.searchParams.delete("n");
      retriedWithoutN = true;
      page--;
      continue;
    }
    if (response.status !== 200) throw await source.fail(response, request);
    const bytes = response.bytes ?? new Uint8Array();
    let document: unknown;
    try {
      document = JSON.parse(Buffer.from(bytes).toString("utf8"));
    } catch {
      throw requestError("registry-protocol", "listing page is not JSON", request, {
        status: response.status,
      });
    }
    const entries = isJsonObject(document) ? document[field] : undefined;
    if (entries !== undefined && entries !== null && !Array.isArray(entries)) {
      throw requestError("registry-protocol", `listing page has no ${field} list`, request, {
        status: response.status,
      });
    }
    const list: unknown[] = entries ?? [];
    const others = onPage?.(document) ?? 0;
    budget.count({ bytes: bytes.byteLength, entries: list.length + others }, request);
    const before = seen.size;
    for (const entry of list) if (typeof entry === "string") seen.add(entry);
    url = seen.size === before && others === 0 ? undefined : budget.next(response, request);
  }
  return [...seen];
}

export async function listTags(client: RepositoryClient, options: CallOptions = {}): Promise<Tag[]> {
  return [...(await listTagsAndManifests(client, options)).tags];
}

/**
 * The tags, and the `manifest` map when the registry adds one (Google's registries,
 * manifest-map.ts): `manifests` is present only when some page had the map.
 */
export async function listTagsAndManifests(
  client: RepositoryClient,
  options: CallOptions = {},
): Promise<TagListing> {
  const request = client.request("list tags", {
    method: "GET",
    url: client.endpoint.url(client.path("tags/list"), { n: String(client.endpoint.listingPageSize) }),
    scopes: [pullScope(client.repository)],
  });
  const manifests = new Map<Digest, ListedManifest>();
  const seen = { map: false };
  const entries = await collectPages(
    {
      context: request.context,
      endpoint: client.endpoint,
      auth: request.auth,
      fail: (response, failed) => client.fail(response, failed),
    },
    request.url,
    "tags",
    true,
    options,
    (page) => {
      const added = addManifestMap(page, manifests);
      if (added === undefined) return 0;
      seen.map = true;
      return added;
    },
  );
  return { tags: entries.filter(isTag), ...(seen.map ? { manifests } : {}) };
}

/** Repository paths of a registry, optionally only those at or below `prefix`. */
export async function listCatalog(
  endpoint: RegistryEndpoint,
  prefix: string,
  fail: (response: HttpResponse, request: HttpRequest) => Promise<Error>,
  options: CallOptions = {},
): Promise<RepositoryPath[]> {
  const context: RequestContext = {
    operation: "list repositories",
    registry: endpoint.host,
    ...(prefix ? { repository: prefix } : {}),
  };
  const entries = await collectPages(
    {
      context,
      endpoint,
      auth: { registry: endpoint.host, origin: endpoint.origin, scopes: [CATALOG_SCOPE] },
      fail,
    },
    endpoint.url("/v2/_catalog", { n: String(endpoint.listingPageSize) }),
    "repositories",
    false,
    options,
  );
  const trimmed = prefix.replace(/\/+$/, "");
  return entries
    .filter(isRepositoryPath)
    .filter((name) => trimmed === "" || name === trimmed || name.startsWith(`${trimmed}/`))
    .sort();
}
