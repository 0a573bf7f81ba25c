/**
 * Size caps for everything read from the network into memory, and other fixed bounds of the
 * registry client. A hostile or broken registry must not make the promoter buffer gigabytes or
 * follow redirects forever.
 */

/**
 * Manifests and indexes: the distribution spec asks clients and registries to support at least
 * 4 MiB, and registries refuse bigger ones.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pushing-manifests
 */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * Reads of one manifest whose bytes do not hash to the expected digest, before the mismatch is
 * an error: damage on the way is fixed by reading again, a lying registry is not.
 */
export const MANIFEST_READ_ATTEMPTS = 3;

/** Error bodies: only the JSON error list is wanted, and it is small. */
export const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** Token endpoint responses (JWTs of a few KiB, refresh tokens, metadata). */
export const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024;

/**
 * One access or refresh token from a token endpoint. Real ones are JWTs or opaque strings of a
 * few KiB; an access token is sent in every request's `Authorization` header and cached per
 * repository, so a realm must not make those megabytes.
 */
export const MAX_TOKEN_CHARS = 64 * 1024;

/** One page of a JSON listing: tags, `_catalog`, referrers. Repositories with 100k tags fit. */
export const MAX_LISTING_BYTES = 32 * 1024 * 1024;

/**
 * Bounds of one listing read through all its pages. The registry decides how many pages there
 * are (a `Link: <...>; rel="next"` on every page but the last) and what is on them; these stop
 * one whose pages never end, or are padded, with a clear error before memory runs out. Every
 * paginated listing (tags, `_catalog`, referrers, and any later one such as the `manifest` map of
 * a Google tags/list answer) is read through a `ListingBudget` (remote/listing-budget.ts) with
 * one of these.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-tags
 */
export interface ListingBounds {
  /** Pages read, the first included. */
  readonly pages: number;
  /** Entries (tags, repositories, descriptors) over all pages, repeats included. */
  readonly entries: number;
  /** Response bytes over all pages. */
  readonly bytes: number;
}

/**
 * Tags of one repository, and repositories of one `_catalog`: a million, at most 10,000 pages
 * (a registry that pages by 100, as Docker Hub does, still lists a million), 256 MiB in all.
 */
export const NAME_LISTING_BOUNDS: ListingBounds = {
  pages: 10_000,
  entries: 1_000_000,
  bytes: 256 * 1024 * 1024,
};

/**
 * Referrers of one manifest (signatures, SBOMs, attestations): thousands would already be odd,
 * and each one listed may be copied.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-referrers
 */
export const REFERRERS_LISTING_BOUNDS: ListingBounds = {
  pages: 1000,
  entries: 10_000,
  bytes: 64 * 1024 * 1024,
};

/** The registry's own error text kept in a message. */
export const MAX_REGISTRY_MESSAGE_CHARS = 500;

/** Redirect hops per request before giving up. */
export const MAX_REDIRECTS = 10;

/** Page size asked for in tag and catalog listings (`n`); registries may answer with fewer or more. */
export const LISTING_PAGE_SIZE = 1000;

/** Default and maximum size of one PATCH chunk in a chunked upload; chunks are held in memory. */
export const DEFAULT_CHUNK_BYTES = 8 * 1024 * 1024;
export const MAX_CHUNK_BYTES = 64 * 1024 * 1024;

/** Output of a credential helper program (`docker-credential-<name> get`). */
export const MAX_CREDENTIAL_HELPER_OUTPUT_BYTES = 1024 * 1024;

/** Credential files (`config.json`, `auth.json`). */
export const MAX_CREDENTIAL_FILE_BYTES = 4 * 1024 * 1024;

/** A CA bundle file given with `--registry-ca`. */
export const MAX_CA_BUNDLE_BYTES = 16 * 1024 * 1024;
