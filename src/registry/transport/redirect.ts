import type { Logger } from "../../log.js";
import { MAX_REDIRECTS } from "../limits.js";
import { redactUrl } from "../redact.js";
import { requestError } from "./request-error.js";
import { isReplayableBody, type HttpRequest, type HttpResponse, type Transport } from "./types.js";

/**
 * Follows redirects by hand, because the rules differ from a browser's:
 * - credentials (`Authorization`, `Cookie`) go to the request's own origin only; once a hop
 *   leaves it they are dropped for good (a blob GET redirected to S3 or GCS carries a signed URL
 *   instead);
 * - never from https to http;
 * - at most MAX_REDIRECTS hops, and a URL seen twice is a loop;
 * - a streamed body cannot be sent twice, so a redirect of an upload is an error;
 * - a body never follows a redirect to another origin (a 307 or 308 keeps it): it may hold a
 *   secret, such as the refresh token of a token request, and it is meant for the origin it
 *   was sent to.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#pulling-blobs
 */
const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** Headers that describe a request body, dropped when a redirect turns the request into a GET. */
const BODY_HEADERS: readonly string[] = ["content-type", "content-length", "content-range"];

/** Headers that carry credentials and never cross origins. */
const CREDENTIAL_HEADERS: readonly string[] = ["authorization", "cookie", "proxy-authorization"];

export interface RedirectOptions {
  readonly logger: Logger;
  readonly maxRedirects?: number;
}

export class RedirectTransport implements Transport {
  constructor(
    private readonly next: Transport,
    private readonly options: RedirectOptions,
  ) {}

  async send(request: HttpRequest): Promise<HttpResponse> {
    const maxRedirects = this.options.maxRedirects ?? MAX_REDIRECTS;
    const visited = new Set<string>([request.url.href]);
    let current = request;
    for (let hops = 0; ; hops++) {
      const response = await this.next.send(current);
      const location = response.headers.get("location");
      if (!REDIRECT_STATUSES.has(response.status) || location === undefined) return response;
      await response.discard();

      if (hops + 1 > maxRedirects) {
        throw requestError("registry-protocol", `more than ${maxRedirects} redirects`, current, {
          status: response.status,
        });
      }
      let target: URL;
      try {
        target = new URL(location, current.url);
      } catch {
        throw requestError("registry-protocol", "redirect to an invalid Location", current, {
          status: response.status,
        });
      }
      if (target.protocol !== "https:" && target.protocol !== "http:") {
        throw requestError(
          "registry-protocol",
          `redirect to unsupported scheme ${target.protocol}`,
          current,
          {
            status: response.status,
          },
        );
      }
      if (current.url.protocol === "https:" && target.protocol === "http:") {
        throw requestError(
          "registry-insecure",
          `refusing redirect from https to plain http (${redactUrl(target)})`,
          current,
          { status: response.status },
        );
      }
      target.hash = "";
      if (visited.has(target.href)) {
        throw requestError("registry-protocol", `redirect loop back to ${redactUrl(target)}`, current, {
          status: response.status,
        });
      }
      visited.add(target.href);

      // 303, and 301/302 after a POST (what every client does), continue as GET without a body.
      const becomesGet =
        response.status === 303 ||
        ((response.status === 301 || response.status === 302) && current.method === "POST");
      if (!becomesGet && !isReplayableBody(current.body)) {
        throw requestError(
          "registry-protocol",
          `cannot follow a redirect (HTTP ${response.status}) of a streamed upload`,
          current,
          { status: response.status },
        );
      }
      const crossOrigin = target.origin !== current.url.origin;
      if (crossOrigin && !becomesGet && current.body !== undefined) {
        throw requestError(
          "registry-insecure",
          `refusing to send the body of ${current.method} ${redactUrl(current.url)} on to another origin (${redactUrl(target)})`,
          current,
          { status: response.status },
        );
      }
      const headers = Object.fromEntries(
        Object.entries(current.headers ?? {}).filter(
          ([name]) =>
            !(crossOrigin && CREDENTIAL_HEADERS.includes(name)) &&
            !(becomesGet && BODY_HEADERS.includes(name)),
        ),
      );
      this.options.logger.log("debug", `redirect ${response.status} to ${redactUrl(target)}`, {
        crossOrigin,
      });
      const { body: _body, auth: _auth, ...rest } = current;
      current = {
        ...rest,
        url: target,
        method: becomesGet ? (current.method === "HEAD" ? "HEAD" : "GET") : current.method,
        headers,
        ...(becomesGet || current.body === undefined ? {} : { body: current.body }),
        ...(crossOrigin || current.auth === undefined ? {} : { auth: current.auth }),
      };
    }
  }
}
