import type { RequestCount } from "../store.js";
import type { HttpRequest, HttpResponse, Transport } from "./types.js";

/**
 * Counts every request that reaches the network, per host (`name[:port]` of the URL, so a
 * registry and the storage backend it redirects to are counted apart) and method. It sits below
 * the retry layer: each attempt counts, because each attempt counts against a registry's quota.
 */
export class RequestCounter {
  private readonly counts = new Map<string, RequestCount>();

  /** `host` as in a URL (already lower case), or `oci:DIR` (kept as is: paths are case-sensitive). */
  record(host: string, method: string): void {
    let count = this.counts.get(host);
    if (!count) {
      count = { total: 0, byMethod: {} };
      this.counts.set(host, count);
    }
    count.total += 1;
    count.byMethod[method] = (count.byMethod[method] ?? 0) + 1;
  }

  /** A copy of the counts so far; later requests do not change it. */
  snapshot(): Map<string, RequestCount> {
    const copy = new Map<string, RequestCount>();
    for (const [host, count] of this.counts) {
      copy.set(host, { total: count.total, byMethod: { ...count.byMethod } });
    }
    return copy;
  }
}

export class CountingTransport implements Transport {
  constructor(
    private readonly next: Transport,
    private readonly counter: RequestCounter,
  ) {}

  send(request: HttpRequest): Promise<HttpResponse> {
    this.counter.record(request.url.host, request.method);
    return this.next.send(request);
  }
}
