import { describe, expect, it } from "vitest";
import { RegistryError } from "../errors.js";
import type { ListingBounds } from "../limits.js";
import { emptyBody } from "../transport/body.js";
import type { HttpRequest, HttpResponse } from "../transport/types.js";
import { ListingBudget, nextLink } from "./listing-budget.js";

const first = new URL("https://registry.test/v2/app/tags/list?n=2");
const bounds: ListingBounds = { pages: 3, entries: 5, bytes: 100 };

function request(url: URL = first): HttpRequest {
  return { method: "GET", url, context: { operation: "list tags", registry: "registry.test" } };
}

function page(link: string | undefined, url: URL = first): HttpResponse {
  return {
    status: 200,
    url,
    headers: {
      get: (name) => (name === "link" ? link : undefined),
      all: (name) => (name === "link" && link !== undefined ? [link] : []),
    },
    body: emptyBody(),
    discard: () => Promise.resolve(),
  };
}

function caught(action: () => unknown): RegistryError {
  try {
    action();
  } catch (error) {
    if (error instanceof RegistryError) return error;
    throw error;
  }
  throw new Error("no error");
}

describe("ListingBudget", () => {
  it("follows Link: rel=next on the same origin, relative to the page", () => {
    const budget = new ListingBudget(bounds, "tags", first);
    budget.count({ bytes: 10, entries: 2 }, request());
    expect(budget.next(page('</v2/app/tags/list?n=2&last=b>; rel="next"'), request())?.href).toBe(
      "https://registry.test/v2/app/tags/list?n=2&last=b",
    );
    expect(budget.next(page(undefined), request())).toBeUndefined();
  });

  it("ends at a Link back to a page already read", () => {
    const budget = new ListingBudget(bounds, "tags", first);
    budget.count({ bytes: 10, entries: 2 }, request());
    expect(budget.next(page(`<${first.href}>; rel="next"`), request())).toBeUndefined();
  });

  it("refuses a Link to another origin, and one from https to http as insecure", () => {
    const budget = new ListingBudget(bounds, "tags", first);
    budget.count({ bytes: 10, entries: 2 }, request());
    const elsewhere = caught(() =>
      budget.next(page('<https://evil.test/v2/app/tags/list?token=secret>; rel="next"'), request()),
    );
    expect(elsewhere.code).toBe("registry-protocol");
    expect(elsewhere.message).toContain(
      "refusing a listing page Link to another origin (https://evil.test/v2/app/tags/list?token=REDACTED)",
    );
    const downgrade = caught(() =>
      budget.next(page('<http://registry.test/v2/app/tags/list?last=b>; rel="next"'), request()),
    );
    expect(downgrade.code).toBe("registry-insecure");
  });

  it("refuses past its bounds on entries, bytes and pages", () => {
    const entries = new ListingBudget(bounds, "tags", first);
    entries.count({ bytes: 1, entries: 5 }, request());
    const overEntries = caught(() => {
      entries.count({ bytes: 1, entries: 1 }, request());
    });
    expect(overEntries.message).toContain("the listing has more than 5 tags");

    const bytes = new ListingBudget(bounds, "tags", first);
    const tooMany = caught(() => {
      bytes.count({ bytes: 101, entries: 0 }, request());
    });
    expect(tooMany.code).toBe("registry-too-large");
    expect(tooMany.message).toContain("the listing is more than 100 bytes");

    const pages = new ListingBudget(bounds, "tags", first);
    for (let i = 0; i < 3; i++) {
      const url = new URL(`?page=${i}`, first);
      pages.count({ bytes: 1, entries: 1 }, request(url));
      if (i < 2) expect(pages.next(page(`<?page=${i + 1}>; rel="next"`, url), request(url))).toBeDefined();
    }
    const last = new URL("?page=2", first);
    expect(caught(() => pages.next(page('<?page=3>; rel="next"', last), request(last))).message).toContain(
      "the listing has more than 3 pages",
    );
  });
});

describe("nextLink", () => {
  it("picks rel=next among several links and parameters", () => {
    const base = new URL("https://registry.test/v2/app/tags/list");
    expect(nextLink(['</a>; rel="prev", </b>; title="x"; rel="next last"'], base)?.href).toBe(
      "https://registry.test/b",
    );
    expect(nextLink(["</a>; rel=prev"], base)).toBeUndefined();
  });
});
