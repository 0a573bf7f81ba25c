import { isIP } from "node:net";
import { connect } from "node:tls";
import type { ConnectLookup } from "./network-address.js";

/**
 * Whether the server at `hostname:port` completes a TLS handshake. Asked only after a plain-HTTP
 * request there failed in the way TLS servers answer plain HTTP (Go's servers, distribution
 * among them, say `400 Bad Request` "Client sent an HTTP request to an HTTPS server"; nginx says
 * 400 too; others close the connection), so that the error can say "this registry speaks TLS"
 * instead of "HTTP 400". Nothing is sent over the connection, so its certificate is not checked
 * here: the real requests, over HTTPS, verify it as always.
 * https://www.rfc-editor.org/rfc/rfc8446#section-4.1
 */
export function speaksTls(
  hostname: string,
  port: number,
  options: { readonly lookup?: ConnectLookup; readonly timeoutMs: number },
): Promise<boolean> {
  const host = hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
  return new Promise((resolve) => {
    const socket = connect({
      host,
      port,
      ...(isIP(host) === 0 ? { servername: host } : {}),
      // Detection only (see above): no byte of a request goes over this connection.
      rejectUnauthorized: false,
      ...(options.lookup === undefined ? {} : { lookup: options.lookup }),
    });
    const done = (answer: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    const timer = setTimeout(() => {
      done(false);
    }, options.timeoutMs);
    socket.once("secureConnect", () => {
      done(true);
    });
    socket.once("error", () => {
      done(false);
    });
    socket.once("close", () => {
      done(false);
    });
  });
}
