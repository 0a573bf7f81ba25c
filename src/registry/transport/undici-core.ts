import { createRequire } from "node:module";
import type { Agent as UndiciAgent, Dispatcher } from "undici";

/**
 * The two parts of undici the transport uses, loaded on their own. undici's index loads all of
 * it, fetch, WebSocket, caches, mocks and proxies included: ~70 ms of start-up for every command
 * (a third of the promoter's), against ~20 ms for the connection pools and `request`.
 *
 * These are undici's own modules (its package has no `exports` map, and the version is pinned
 * exactly in package.json): `Agent` is the class undici's index exports, and `requestOn` is the
 * function its `request` calls once it has made an origin and a path of the URL.
 * undici-core.test.ts checks both against the index, so an upgrade that moves them fails there.
 */
const require = createRequire(import.meta.url);

export const Agent = require("undici/lib/dispatcher/agent.js") as typeof UndiciAgent;
export type Agent = UndiciAgent;

export const dispatchRequest = require("undici/lib/api/api-request.js") as (
  this: Dispatcher,
  options: Dispatcher.RequestOptions,
) => Promise<Dispatcher.ResponseData>;

/** undici's `request(url, options)` on `dispatcher`, as its index does it. */
export function requestOn(
  dispatcher: Dispatcher,
  url: URL,
  options: Omit<Dispatcher.RequestOptions, "origin" | "path">,
): Promise<Dispatcher.ResponseData> {
  return dispatchRequest.call(dispatcher, {
    ...options,
    origin: url.origin,
    path: url.search ? `${url.pathname}${url.search}` : url.pathname,
  });
}
