import { describeError } from "../../errors.js";
import {
  MediaType,
  isIndexMediaType,
  parseDescriptor,
  parseManifest,
  referrersFallbackTag,
  type Descriptor,
  type ParsedManifest,
} from "../../oci/index.js";
import { digestOf, type Digest } from "../../reference/index.js";
import { MAX_LISTING_BYTES, REFERRERS_LISTING_BOUNDS } from "../limits.js";
import type { CallOptions, ManifestContent } from "../store.js";
import { requestError } from "../transport/request-error.js";
import type { HttpRequest } from "../transport/types.js";
import { pullScope } from "../auth/scope.js";
import { ListingBudget } from "./listing-budget.js";
import { getManifest, putManifest } from "./manifests.js";
import type { RepositoryClient } from "./repository-client.js";

/**
 * Referrers: the API (`GET /v2/<name>/referrers/<digest>`) where the registry has it, and the
 * referrers tag schema (an image index tagged `<alg>-<hex>`) where it answers 404.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-referrers
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#referrers-tag-schema
 */

/** Statuses that say "no referrers API here". */
const NO_API_STATUSES: ReadonlySet<number> = new Set([404, 405, 501]);

function filterByArtifactType(descriptors: Descriptor[], artifactType: string | undefined): Descriptor[] {
  return artifactType === undefined
    ? descriptors
    : descriptors.filter((descriptor) => descriptor.artifactType === artifactType);
}

/** The `manifests` entries of an image index's bytes (none when it has no such list). */
function indexEntries(bytes: Uint8Array): unknown[] {
  const document = JSON.parse(Buffer.from(bytes).toString("utf8")) as { manifests?: unknown };
  return Array.isArray(document.manifests) ? document.manifests : [];
}

function parseEntries(entries: readonly unknown[], where: string): Descriptor[] {
  return entries.map((entry, i) => parseDescriptor(entry, `${where} manifests[${i}]`));
}

/** Referrers through the API; undefined when the registry has no referrers API. */
async function referrersFromApi(
  client: RepositoryClient,
  subject: Digest,
  artifactType: string | undefined,
  options: CallOptions,
): Promise<Descriptor[] | undefined> {
  const found: Descriptor[] = [];
  const first = client.endpoint.url(client.path(`referrers/${subject}`), { artifactType });
  const budget = new ListingBudget(REFERRERS_LISTING_BOUNDS, "referrers", first);
  let url: URL | undefined = first;
  for (let page = 0; url !== undefined; page++) {
    const { request, response } = await client.send(
      "list referrers",
      {
        method: "GET",
        url,
        scopes: [pullScope(client.repository)],
        headers: { accept: MediaType.ociImageIndex },
        bufferLimit: MAX_LISTING_BYTES,
      },
      options,
    );
    if (page === 0 && NO_API_STATUSES.has(response.status)) {
      const error = await client.fail(response, request);
      // A repository the registry does not know says nothing about the API.
      if (error.details.registryCodes?.includes("NAME_UNKNOWN")) return [];
      return undefined;
    }
    if (response.status !== 200) throw await client.fail(response, request);
    const bytes = response.bytes ?? new Uint8Array();
    let entries: unknown[];
    try {
      entries = indexEntries(bytes);
    } catch (error) {
      throw notAnIndex(error, request, response.status);
    }
    budget.count({ bytes: bytes.byteLength, entries: entries.length }, request);
    let descriptors: Descriptor[];
    try {
      descriptors = parseEntries(entries, `referrers of ${subject}`);
    } catch (error) {
      throw notAnIndex(error, request, response.status);
    }
    const filtered = (response.headers.get("oci-filters-applied") ?? "")
      .split(",")
      .map((entry) => entry.trim())
      .includes("artifactType");
    found.push(...(filtered ? descriptors : filterByArtifactType(descriptors, artifactType)));
    url = budget.next(response, request);
  }
  return found;
}

function notAnIndex(error: unknown, request: HttpRequest, status: number): Error {
  return requestError(
    "registry-protocol",
    `referrers response is not an image index: ${describeError(error)}`,
    request,
    { status },
  );
}

/** Referrers from the fallback tag's index (none when the tag is absent or not an index). */
async function referrersFromTag(
  client: RepositoryClient,
  subject: Digest,
  artifactType: string | undefined,
  options: CallOptions,
): Promise<Descriptor[]> {
  const tag = referrersFallbackTag(subject);
  const content = await getManifest(client, tag, options);
  if (!content || !isIndexMediaType(content.mediaType)) return [];
  let entries: unknown[];
  try {
    entries = indexEntries(content.bytes);
  } catch {
    // "If the tag schema does not return a valid image index, assume there are no referrers."
    return [];
  }
  if (entries.length > REFERRERS_LISTING_BOUNDS.entries) {
    throw requestError(
      "registry-too-large",
      `the referrers index ${tag} has more than ${REFERRERS_LISTING_BOUNDS.entries} referrers; refusing to read more`,
      {
        method: "GET",
        url: client.endpoint.url(client.path(`manifests/${tag}`)),
        context: client.context("list referrers"),
      },
    );
  }
  try {
    return filterByArtifactType(parseEntries(entries, `${client.repository}:${tag}`), artifactType);
  } catch {
    return [];
  }
}

export async function listReferrers(
  client: RepositoryClient,
  subject: Digest,
  artifactType: string | undefined,
  options: CallOptions = {},
  listedTags?: ReadonlySet<string>,
): Promise<Descriptor[]> {
  const endpoint = client.endpoint;
  // Until the registry has said whether it has the API, one request asks and the others wait.
  while (endpoint.referrersApi === undefined && endpoint.referrersProbe) await endpoint.referrersProbe;
  if (endpoint.referrersApi !== false) {
    let settle: (() => void) | undefined;
    if (endpoint.referrersApi === undefined) {
      endpoint.referrersProbe = new Promise<void>((resolve) => (settle = resolve));
    }
    try {
      const viaApi = await referrersFromApi(client, subject, artifactType, options);
      if (viaApi !== undefined) {
        endpoint.referrersApi = true;
        return viaApi;
      }
      endpoint.referrersApi = false;
    } finally {
      if (settle) {
        endpoint.referrersProbe = undefined;
        settle();
      }
    }
  }
  // The caller's listing of the repository says the fallback tag is not there (ReferrersOptions).
  if (listedTags !== undefined && !listedTags.has(referrersFallbackTag(subject))) return [];
  return referrersFromTag(client, subject, artifactType, options);
}

/**
 * Adds `referrer` to the fallback index of `subject` (read, add once, write), for registries
 * that did not process the subject themselves (no `OCI-Subject` answer). Updates of one tag are
 * serialised within this process; other writers can still race, as the spec warns.
 */
export async function addToReferrersFallback(
  client: RepositoryClient,
  subject: Digest,
  referrer: Descriptor,
  options: CallOptions = {},
): Promise<void> {
  const tag = referrersFallbackTag(subject);
  await client.endpoint.exclusive(`${client.repository}:${tag}`, async () => {
    const existing = await getManifest(client, tag, options);
    let document: Record<string, unknown> = {
      schemaVersion: 2,
      mediaType: MediaType.ociImageIndex,
      manifests: [],
    };
    if (existing) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.from(existing.bytes).toString("utf8"));
      } catch {
        parsed = undefined;
      }
      if (
        !isIndexMediaType(existing.mediaType) ||
        typeof parsed !== "object" ||
        parsed === null ||
        !Array.isArray((parsed as { manifests?: unknown }).manifests)
      ) {
        throw requestError(
          "registry-protocol",
          `cannot record referrer ${referrer.digest}: tag ${tag} holds ${existing.mediaType}, not an image index`,
          {
            method: "GET",
            url: client.endpoint.url(client.path(`manifests/${tag}`)),
            context: client.context("update referrers"),
          },
        );
      }
      document = parsed as Record<string, unknown>;
    }
    const manifests = document.manifests as unknown[];
    const present = manifests.some(
      (entry) =>
        typeof entry === "object" &&
        entry !== null &&
        (entry as { digest?: unknown }).digest === referrer.digest,
    );
    if (present) return;
    manifests.push(referrer);
    const bytes = new TextEncoder().encode(JSON.stringify(document));
    await putManifest(
      client,
      { digest: digestOf(bytes), mediaType: existing?.mediaType ?? MediaType.ociImageIndex, bytes },
      tag,
      options,
    );
  });
}

/** The subject of manifest bytes, if they parse and have one. */
export function subjectOf(
  content: ManifestContent,
): { subject: Descriptor; manifest: ParsedManifest } | undefined {
  let manifest: ParsedManifest;
  try {
    manifest = parseManifest(content.bytes, content.mediaType, "pushed manifest");
  } catch {
    return undefined;
  }
  return manifest.subject ? { subject: manifest.subject, manifest } : undefined;
}
