import { spawn } from "node:child_process";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

/**
 * Git's smart HTTP protocol on 127.0.0.1 behind HTTP Basic auth: git-http-backend (shipped with
 * git) run as a CGI program for every request, as a web server would. For tests of clients that
 * must present credentials (and must not leak them).
 * https://git-scm.com/docs/git-http-backend
 */

export const GIT_HTTP_BACKEND = "/usr/lib/git-core/git-http-backend";

export interface GitHttpRequest {
  readonly method: string;
  readonly path: string;
  /** Whether the request carried the expected credentials. */
  readonly authorized: boolean;
}

export interface GitHttpServer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  readonly requests: readonly GitHttpRequest[];
  /** While true, requests get no answer at all (a git server that hangs) until `close()`. */
  stalled: boolean;
  close(): Promise<void>;
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
}

function readAll(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      resolve(Buffer.concat(chunks));
    });
    request.on("error", reject);
  });
}

/** Runs git-http-backend for one request and relays its CGI answer. */
async function relay(
  projectRoot: string,
  request: IncomingMessage,
  response: ServerResponse,
  user: string,
): Promise<void> {
  const url = new URL(request.url ?? "/", "http://git.invalid");
  const body = await readAll(request);
  const child = spawn(GIT_HTTP_BACKEND, [], {
    env: {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      GIT_PROJECT_ROOT: projectRoot,
      GIT_HTTP_EXPORT_ALL: "1",
      GATEWAY_INTERFACE: "CGI/1.1",
      SERVER_PROTOCOL: "HTTP/1.1",
      REQUEST_METHOD: request.method ?? "GET",
      PATH_INFO: decodeURIComponent(url.pathname),
      QUERY_STRING: url.search.slice(1),
      CONTENT_TYPE: request.headers["content-type"] ?? "",
      CONTENT_LENGTH: String(body.length),
      HTTP_CONTENT_ENCODING: request.headers["content-encoding"] ?? "",
      HTTP_GIT_PROTOCOL: String(request.headers["git-protocol"] ?? ""),
      REMOTE_USER: user,
      REMOTE_ADDR: request.socket.remoteAddress ?? "127.0.0.1",
    },
    stdio: ["pipe", "pipe", "ignore"],
  });
  // The backend may answer (an error, a refs advertisement) without reading the body.
  child.stdin.on("error", () => undefined);
  child.stdin.end(body);
  const chunks: Buffer[] = [];
  child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
  await new Promise<void>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", () => {
      resolve();
    });
  });
  const output = Buffer.concat(chunks);
  const end = output.indexOf("\r\n\r\n");
  const headerEnd = end >= 0 ? end : output.indexOf("\n\n");
  const separator = end >= 0 ? 4 : 2;
  const headerText = output.subarray(0, Math.max(headerEnd, 0)).toString("latin1");
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of headerText.split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "status") status = Number.parseInt(value, 10);
    else headers[name] = value;
  }
  const payload = headerEnd >= 0 ? output.subarray(headerEnd + separator) : Buffer.alloc(0);
  response.writeHead(status, { ...headers, "content-length": payload.length });
  response.end(payload);
}

/** Serves the bare repositories under `projectRoot` to `username`/`password` only. */
export async function startGitHttpServer(
  projectRoot: string,
  username: string,
  password: string,
): Promise<GitHttpServer> {
  const expected = basic(username, password);
  const requests: GitHttpRequest[] = [];
  const control = { stalled: false };
  const server: Server = createServer((request, response) => {
    const authorized = request.headers.authorization === expected;
    requests.push({ method: request.method ?? "", path: request.url ?? "", authorized });
    if (control.stalled) {
      request.resume();
      return;
    }
    if (!authorized) {
      request.resume();
      response.writeHead(401, { "www-authenticate": 'Basic realm="git"', "content-length": 0 });
      response.end();
      return;
    }
    relay(projectRoot, request, response, username).catch(() => {
      if (!response.headersSent) response.writeHead(500, { "content-length": 0 });
      response.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    get stalled() {
      return control.stalled;
    },
    set stalled(value: boolean) {
      control.stalled = value;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
