import type { ListingBounds } from "../limits.js";
import { redactUrl } from "../redact.js";
import { requestError } from "../transport/request-error.js";
import type { HttpRequest, HttpResponse } from "../transport/types.js";

/**
 * The pages of one listing (tags, `_catalog`, referrers), followed through `Link: <...>;
 * rel="next"` (RFC 8288) within bounds:
 * - at most `bounds.pages` pages, `bounds.entries` entries and `bounds.bytes` bytes in all, or
 *   the listing fails with `registry-too-large`;
 * - the next page must be on the origin the listing started on: a registry that sends the client
 *   to another host (an internal address, a look-alike) is refused, so no request goes there
 *   and nothing from there is taken for the registry's own answer;
 * - a `Link` back to a page already read ends the listing (registries that repeat their last
 *   page do exist), it never loops.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#listing-tags
 * https://www.rfc-editor.org/rfc/rfc8288
 */
export class ListingBudget {
  private pages = 0;
  private entries = 0;
  private bytes = 0;
  private readonly visited = new Set<string>();
  private readonly origin: string;

  /**
   * `noun` names the entries in messages (`tags`, `repositories`, `referrers`); `first` is the
   * URL of the first page.
   */
  constructor(
    private readonly bounds: ListingBounds,
    private readonly noun: string,
    first: URL,
  ) {
    this.origin = first.origin;
  }

  /** Counts a page that was read; fails once the listing is past a bound. */
  count(page: { readonly bytes: number; readonly entries: number }, request: HttpRequest): void {
    this.pages += 1;
    this.visited.add(request.url.href);
    this.entries += page.entries;
    this.bytes += page.bytes;
    if (this.entries > this.bounds.entries) {
      throw this.tooLarge(`the listing has more than ${this.bounds.entries} ${this.noun}`, request);
    }
    if (this.bytes > this.bounds.bytes) {
      throw this.tooLarge(`the listing is more than ${this.bounds.bytes} bytes`, request);
    }
  }

  /**
   * The next page named by `response`'s `Link` headers, or undefined when the listing is over
   * (no next page, or one already read). Fails when it leaves the origin or one page too many
   * would be read.
   */
  next(response: HttpResponse, request: HttpRequest): URL | undefined {
    const next = nextLink(response.headers.all("link"), response.url);
    if (next === undefined || this.visited.has(next.href)) return undefined;
    if (next.origin !== this.origin) {
      const downgrade = next.protocol === "http:" && this.origin.startsWith("https:");
      throw requestError(
        downgrade ? "registry-insecure" : "registry-protocol",
        `refusing a listing page Link to another origin (${redactUrl(next)}); the pages of a listing stay on ${this.origin}`,
        request,
        { status: response.status },
      );
    }
    if (this.pages >= this.bounds.pages) {
      throw this.tooLarge(`the listing has more than ${this.bounds.pages} pages`, request);
    }
    return next;
  }

  private tooLarge(summary: string, request: HttpRequest) {
    return requestError("registry-too-large", `${summary}; refusing to read more`, request, { status: 200 });
  }
}

/** The `rel="next"` target of `Link` header values, resolved against `base`. */
export function nextLink(values: readonly string[], base: URL): URL | undefined {
  for (const value of values) {
    for (const match of value.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]*)*)/g)) {
      const target = match[1];
      const params = match[2] ?? "";
      if (target === undefined) continue;
      const rel = /;\s*rel\s*=\s*"?([^";]*)"?/i.exec(params)?.[1];
      if (!rel?.toLowerCase().split(/\s+/).includes("next")) continue;
      try {
        return new URL(target, base);
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}
