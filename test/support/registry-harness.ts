/**
 * Starts real registries for tests: Debian's `docker-registry` (CNCF distribution 2.8.2) on a free
 * 127.0.0.1 port with storage in a temporary folder, without auth, with htpasswd basic auth, or
 * with token auth through `token-server.ts`. `stop()` ends exactly the process it started and
 * removes its folder; processes left over when a test process exits are killed on exit, and the
 * Vitest global teardown kills any a crashed worker left behind (recorded in the run folder).
 * https://distribution.github.io/distribution/about/configuration/
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile, unlink } from "node:fs/promises";
import { rmSync, unlinkSync } from "node:fs";
import { get as httpGet } from "node:http";
import { get as httpsGet } from "node:https";
import { createServer } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { startTokenServer, type TestTokenServer, type TestUser } from "./token-server.js";

export type { TestTokenServer, TestUser, UserAccess } from "./token-server.js";

const execFileAsync = promisify(execFile);

export const REGISTRY_PROGRAM = "/usr/bin/docker-registry";
/** Environment variable naming the folder where a test run records the registries it started. */
export const RUN_DIRECTORY_ENV = "IMAGE_PROMOTER_TEST_RUN_DIR";
/** How long `startRegistry` waits for `GET /v2/` to answer. */
const READY_TIMEOUT_MS = 15_000;
/** Captured registry output kept in memory (the tail is kept). */
const MAX_LOG_CHARS = 4 * 1024 * 1024;
const PORT_ATTEMPTS = 5;
/** Stands for the registry's own host in a notification URL. */
export const REGISTRY_PLACEHOLDER = "{registry}";

export type RegistryAuth = "none" | "basic" | "token";

export interface NotificationEndpoint {
  /** `{registry}` in it becomes the registry's own `127.0.0.1:PORT` (known only once it starts). */
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface StartRegistryOptions {
  readonly auth?: RegistryAuth;
  /**
   * Users for basic and token auth. Basic auth ignores `access` (htpasswd lets every valid
   * user do everything); the token server grants per user. Default: one user `admin`/`admin-password` with full access.
   */
  readonly users?: readonly TestUser[];
  readonly notifications?: readonly NotificationEndpoint[];
  /** Default true. */
  readonly deleteEnabled?: boolean;
  /** `http.relativeurls`: answer with relative `Location` headers (default: absolute URLs). */
  readonly relativeUrls?: boolean;
  /** Token auth: what requests without credentials get (default pull-only). */
  readonly anonymous?: "pull" | "none";
  /** Token auth: `expires_in` of issued tokens in seconds (default 300). */
  readonly tokenExpiresInSeconds?: number;
  /** Token auth: make the registry refuse tokens right at `expires_in` (it adds 60 s leeway). */
  readonly compensateTokenLeeway?: boolean;
  /**
   * Serve HTTPS with this key and certificate (PEM; `selfSignedCertificate` makes one). The
   * registry then offers HTTP/2 and HTTP/1.1 by ALPN, as distribution does by default over TLS.
   */
  readonly tls?: { readonly key: string; readonly cert: string };
}

export interface TestRegistry {
  /** `127.0.0.1:PORT`, the registry host for references. */
  readonly host: string;
  /** `http://127.0.0.1:PORT` (`https://` with `tls`). */
  readonly url: string;
  readonly auth: RegistryAuth;
  readonly users: readonly TestUser[];
  /** The filesystem storage root (`storage.filesystem.rootdirectory`). */
  readonly dataDir: string;
  /** The temporary folder with config, htpasswd, certificates and data. */
  readonly tempDir: string;
  readonly configPath: string;
  readonly pid: number;
  readonly tokenServer?: TestTokenServer;
  /** Everything the registry printed so far (its log and access log). */
  logs(): string;
  stop(): Promise<void>;
}

export const DEFAULT_TEST_USERS: readonly TestUser[] = [
  { username: "admin", password: "admin-password", access: "all" },
];

/** Registries of this process that have not been stopped yet. */
const running = new Map<number, { child: ChildProcess; tempDir: string; pidFile?: string }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // `exit` handlers must be synchronous: kill and remove without awaiting.
  process.on("exit", () => {
    for (const [pid, entry] of running) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Already gone.
      }
      rmSync(entry.tempDir, { recursive: true, force: true });
      if (entry.pidFile) {
        try {
          unlinkSync(entry.pidFile);
        } catch {
          // Already gone.
        }
      }
    }
    running.clear();
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      // Leave through `exit` so the hook above runs, with the conventional status.
      process.exit(128 + (signal === "SIGINT" ? 2 : 15));
    });
  }
}

/** A port the kernel just handed out on 127.0.0.1; another process may take it (we retry). */
export async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => {
        if (address && typeof address === "object") resolve(address.port);
        else reject(new Error("no port"));
      });
    });
  });
}

/** A bcrypt htpasswd file (distribution only accepts bcrypt), via Debian's `htpasswd`. */
async function writeHtpasswd(file: string, users: readonly TestUser[]): Promise<void> {
  const lines: string[] = [];
  for (const user of users) {
    // -C 4: the lowest bcrypt cost, so each basic-auth request stays fast.
    const { stdout } = await execFileAsync("htpasswd", ["-nbB", "-C", "4", user.username, user.password], {
      timeout: 30_000,
    });
    lines.push(stdout.trim());
  }
  await writeFile(file, `${lines.join("\n")}\n`, { mode: 0o600 });
}

function registryConfig(input: {
  port: number;
  dataDir: string;
  deleteEnabled: boolean;
  relativeUrls: boolean;
  auth: Record<string, unknown> | undefined;
  notifications: readonly NotificationEndpoint[];
  tls: { certificate: string; key: string } | undefined;
}): string {
  const config: Record<string, unknown> = {
    version: 0.1,
    log: { level: "info", formatter: "text", accesslog: { disabled: false } },
    storage: {
      filesystem: { rootdirectory: input.dataDir },
      delete: { enabled: input.deleteEnabled },
      // Nothing in the background of a short-lived registry.
      maintenance: { uploadpurging: { enabled: false } },
    },
    http: {
      addr: `127.0.0.1:${input.port}`,
      secret: randomBytes(16).toString("hex"),
      relativeurls: input.relativeUrls,
      headers: { "X-Content-Type-Options": ["nosniff"] },
      ...(input.tls ? { tls: input.tls } : {}),
    },
  };
  if (input.auth) config.auth = input.auth;
  if (input.notifications.length > 0) {
    config.notifications = {
      events: { includereferences: true },
      endpoints: input.notifications.map((endpoint, index) => ({
        name: `endpoint-${index}`,
        url: endpoint.url.replaceAll(REGISTRY_PLACEHOLDER, `127.0.0.1:${input.port}`),
        headers: Object.fromEntries(
          Object.entries(endpoint.headers ?? {}).map(([name, value]) => [name, [value]]),
        ),
        // Small so events arrive fast and a failing endpoint is retried quickly.
        timeout: "1s",
        threshold: 3,
        backoff: "100ms",
      })),
    };
  }
  return stringify(config);
}

/** Starts a registry; see the module comment. Call `stop()` (in `afterAll`). */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<TestRegistry> {
  installExitHook();
  const auth = options.auth ?? "none";
  const users = options.users ?? (auth === "none" ? [] : DEFAULT_TEST_USERS);
  const tempDir = await mkdtemp(path.join(os.tmpdir(), "image-promoter-registry-"));
  const dataDir = path.join(tempDir, "data");
  const configPath = path.join(tempDir, "config.yml");
  let tokenServer: TestTokenServer | undefined;
  try {
    let authConfig: Record<string, unknown> | undefined;
    if (auth === "basic") {
      const htpasswdPath = path.join(tempDir, "htpasswd");
      await writeHtpasswd(htpasswdPath, users);
      authConfig = { htpasswd: { realm: "test-registry", path: htpasswdPath } };
    } else if (auth === "token") {
      tokenServer = await startTokenServer({
        directory: tempDir,
        service: "test-registry",
        users,
        ...(options.anonymous ? { anonymous: options.anonymous } : {}),
        ...(options.tokenExpiresInSeconds !== undefined
          ? { expiresInSeconds: options.tokenExpiresInSeconds }
          : {}),
        ...(options.compensateTokenLeeway ? { compensateRegistryLeeway: true } : {}),
      });
      authConfig = {
        token: {
          realm: tokenServer.realm,
          service: tokenServer.service,
          issuer: tokenServer.issuer,
          rootcertbundle: tokenServer.certificatePath,
        },
      };
    }

    let tlsFiles: { certificate: string; key: string } | undefined;
    if (options.tls) {
      tlsFiles = { certificate: path.join(tempDir, "tls.crt"), key: path.join(tempDir, "tls.key") };
      await writeFile(tlsFiles.certificate, options.tls.cert);
      await writeFile(tlsFiles.key, options.tls.key, { mode: 0o600 });
    }

    let lastError: unknown;
    for (let attempt = 0; attempt < PORT_ATTEMPTS; attempt++) {
      const port = await findFreePort();
      await writeFile(
        configPath,
        registryConfig({
          port,
          dataDir,
          deleteEnabled: options.deleteEnabled ?? true,
          relativeUrls: options.relativeUrls ?? false,
          auth: authConfig,
          notifications: options.notifications ?? [],
          tls: tlsFiles,
        }),
      );
      try {
        return await launch({
          port,
          auth,
          users,
          dataDir,
          tempDir,
          configPath,
          tokenServer,
          tls: tlsFiles !== undefined,
        });
      } catch (error) {
        lastError = error;
        // Another process took the port between our probe and the registry's bind: try another.
        if (!(error instanceof PortTakenError)) throw error;
      }
    }
    throw lastError;
  } catch (error) {
    await tokenServer?.stop();
    await rm(tempDir, { recursive: true, force: true });
    throw error;
  }
}

class PortTakenError extends Error {}

/**
 * The status of a GET, for the readiness probe. Over TLS the test's self-signed certificate is
 * not checked here: the probe only asks whether the process is listening; the code under test
 * always verifies.
 */
function probeStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const get = url.startsWith("https:") ? httpsGet : httpGet;
    const request = get(url, { rejectUnauthorized: false, timeout: 1_000 }, (response) => {
      response.resume();
      response.on("end", () => {
        resolve(response.statusCode ?? 0);
      });
    });
    request.on("timeout", () => request.destroy(new Error("timeout")));
    request.on("error", reject);
  });
}

async function launch(input: {
  port: number;
  auth: RegistryAuth;
  users: readonly TestUser[];
  dataDir: string;
  tempDir: string;
  configPath: string;
  tokenServer: TestTokenServer | undefined;
  tls: boolean;
}): Promise<TestRegistry> {
  const child = spawn(REGISTRY_PROGRAM, ["serve", input.configPath], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  });
  let log = "";
  const append = (chunk: Buffer): void => {
    log += chunk.toString("utf8");
    if (log.length > MAX_LOG_CHARS) log = log.slice(log.length - MAX_LOG_CHARS);
  };
  child.stdout.on("data", append);
  child.stderr.on("data", append);
  const exited = new Promise<number | null>((resolve) => {
    child.once("exit", (code) => {
      resolve(code);
    });
  });
  const spawnError = new Promise<Error>((resolve) => child.once("error", resolve));
  const pid = child.pid;
  if (pid === undefined) throw await spawnError;

  const pidFile = await recordInRunDirectory(pid, input.configPath, input.tempDir);
  running.set(pid, { child, tempDir: input.tempDir, ...(pidFile ? { pidFile } : {}) });

  const kill = async (): Promise<void> => {
    running.delete(pid);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    if (pidFile) await unlink(pidFile).catch(() => undefined);
  };

  const url = `${input.tls ? "https" : "http"}://127.0.0.1:${input.port}`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      await kill();
      if (/address already in use/i.test(log)) throw new PortTakenError(log);
      throw new Error(
        `docker-registry exited with ${child.exitCode ?? child.signalCode} before answering:\n${log}`,
      );
    }
    try {
      const status = await probeStatus(`${url}/v2/`);
      if (status === 200 || status === 401) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      await kill();
      throw new Error(`docker-registry did not answer GET /v2/ within ${READY_TIMEOUT_MS} ms:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }

  let stopped: Promise<void> | undefined;
  return {
    host: `127.0.0.1:${input.port}`,
    url,
    auth: input.auth,
    users: input.users,
    dataDir: input.dataDir,
    tempDir: input.tempDir,
    configPath: input.configPath,
    pid,
    ...(input.tokenServer ? { tokenServer: input.tokenServer } : {}),
    logs: () => log,
    stop: () => {
      stopped ??= (async () => {
        await kill();
        await input.tokenServer?.stop();
        await rm(input.tempDir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

/** What the global teardown needs to find and kill a registry a crashed worker left running. */
export interface RegistryRecord {
  readonly pid: number;
  readonly configPath: string;
  readonly tempDir: string;
}

async function recordInRunDirectory(
  pid: number,
  configPath: string,
  tempDir: string,
): Promise<string | undefined> {
  const runDirectory = process.env[RUN_DIRECTORY_ENV];
  if (!runDirectory) return undefined;
  const file = path.join(runDirectory, `registry-${pid}.json`);
  const record: RegistryRecord = { pid, configPath, tempDir };
  await writeFile(file, JSON.stringify(record));
  return file;
}
