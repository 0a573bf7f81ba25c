import { spawn } from "node:child_process";
import { AbortedError } from "../../errors.js";
import { NETWORK_VARIABLES, pickEnvironment } from "../../child-environment.js";
import type { RegistryHost } from "../../reference/index.js";
import { RegistryError } from "../errors.js";
import { MAX_CREDENTIAL_HELPER_OUTPUT_BYTES } from "../limits.js";
import { redactText } from "../redact.js";
import type { Credential } from "./types.js";

/**
 * Docker credential helpers: `docker-credential-<name> get` reads the server URL on stdin and
 * prints `{"ServerURL", "Username", "Secret"}`; a `Username` of `<token>` means the secret is an
 * identity token. A helper that does not know the server exits non-zero with "credentials not
 * found".
 * https://github.com/docker/docker-credential-helpers#development
 */

export const DEFAULT_HELPER_TIMEOUT_MS = 30_000;

const HELPER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/**
 * What a credential helper is given of the promoter's environment: what finding and running a
 * program needs (PATH, HOME, user, locale, temporary folder), where Docker, XDG and password
 * stores keep their files, the session bus of secret services, proxies and CA settings for
 * helpers that call an API, and the cloud SDK settings and credentials the cloud helpers
 * exchange (ecr-login: AWS_*, gcr: GOOGLE_* and CLOUDSDK_*, acr-env: AZURE_*). Nothing else:
 * not the promoter's own secrets (PROMOTER_AUTH_*, PROMOTER_REGISTRY_AUTH, PROMOTER_SIGN_KEY),
 * not CI tokens (GITHUB_TOKEN, OIDC request tokens), not REGISTRY_AUTH_FILE.
 */
const HELPER_VARIABLES: ReadonlySet<string> = new Set([
  "PATH",
  "HOME",
  "USER",
  "LOGNAME",
  "SHELL",
  "TMPDIR",
  "TZ",
  "LANG",
  "LANGUAGE",
  "DOCKER_CONFIG",
  "DBUS_SESSION_BUS_ADDRESS",
  "GNUPGHOME",
  "GPG_AGENT_INFO",
  "PASSWORD_STORE_DIR",
  ...NETWORK_VARIABLES,
]);
const HELPER_VARIABLE_PREFIXES: readonly string[] = ["LC_", "XDG_", "AWS_", "GOOGLE_", "CLOUDSDK_", "AZURE_"];

/**
 * Names more variables a helper needs (for a helper of one's own: `VAULT_ADDR,VAULT_TOKEN`),
 * separated by commas or spaces. The promoter's own `PROMOTER_*` variables are never passed.
 */
export const HELPER_ENV_VARIABLE = "PROMOTER_CREDENTIAL_HELPER_ENV";

/** The part of `env` a credential helper runs with (see HELPER_VARIABLES). */
export function credentialHelperEnvironment(
  env: Readonly<Record<string, string | undefined>>,
): Record<string, string> {
  const extra = new Set((env[HELPER_ENV_VARIABLE] ?? "").split(/[\s,]+/).filter(Boolean));
  return pickEnvironment(
    env,
    (name) =>
      !name.startsWith("PROMOTER_") &&
      (HELPER_VARIABLES.has(name) ||
        HELPER_VARIABLE_PREFIXES.some((prefix) => name.startsWith(prefix)) ||
        extra.has(name)),
  );
}

export interface HelperOptions {
  /**
   * The promoter's environment: the helper runs with the part of it a helper needs
   * (`credentialHelperEnvironment`); its PATH finds the program.
   */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

function helperError(registry: RegistryHost, summary: string): RegistryError {
  return new RegistryError("registry-auth", summary, { operation: "look up credentials", registry });
}

/**
 * Runs `docker-credential-<helper> get` for `serverUrl` and returns its credential, or undefined
 * when the helper has none. `source` names where the helper was configured, for messages.
 */
export async function runCredentialHelper(
  helper: string,
  serverUrl: string,
  registry: RegistryHost,
  source: string,
  options: HelperOptions,
): Promise<Credential | undefined> {
  if (!HELPER_NAME.test(helper)) {
    throw helperError(
      registry,
      `credential helper name ${JSON.stringify(helper)} in ${source} is not a plain name`,
    );
  }
  const program = `docker-credential-${helper}`;
  const timeoutMs = options.timeoutMs ?? DEFAULT_HELPER_TIMEOUT_MS;
  const env = credentialHelperEnvironment(options.env);
  const { code, stdout, stderr, failure } = await new Promise<{
    code: number | null;
    stdout: string;
    stderr: string;
    failure?: Error;
  }>((resolve) => {
    const child = spawn(program, ["get"], { env, stdio: ["pipe", "pipe", "pipe"] });
    let out = Buffer.alloc(0);
    let err = Buffer.alloc(0);
    let settled = false;
    const finish = (result: { code: number | null; failure?: Error }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
      resolve({ ...result, stdout: out.toString("utf8"), stderr: err.toString("utf8") });
    };
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      finish({ code: null, failure: new Error(`timed out after ${timeoutMs} ms`) });
    }, timeoutMs);
    const onAbort = () => {
      child.kill("SIGKILL");
      finish({ code: null, failure: new AbortedError() });
    };
    options.signal?.addEventListener("abort", onAbort, { once: true });
    child.stdout.on("data", (chunk: Buffer) => {
      if (out.byteLength + chunk.byteLength > MAX_CREDENTIAL_HELPER_OUTPUT_BYTES) {
        child.kill("SIGKILL");
        finish({ code: null, failure: new Error("printed too much") });
        return;
      }
      out = Buffer.concat([out, chunk]);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      if (err.byteLength < 4096) err = Buffer.concat([err, chunk]);
    });
    child.on("error", (error) => {
      finish({ code: null, failure: error });
    });
    child.on("close", (exitCode) => {
      finish({ code: exitCode });
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(serverUrl);
  });

  if (failure instanceof AbortedError) throw failure;
  if (failure) {
    const missing = (failure as NodeJS.ErrnoException).code === "ENOENT";
    throw helperError(
      registry,
      missing
        ? `credential helper ${program} (configured in ${source}) is not on PATH`
        : `credential helper ${program} (configured in ${source}) failed: ${failure.message}`,
    );
  }
  if (code !== 0) {
    const said = `${stdout} ${stderr}`.trim();
    if (/credentials not found|not found in native keychain|no credentials/i.test(said)) return undefined;
    const firstLine = redactText(said.split("\n")[0] ?? "").slice(0, 200);
    throw helperError(
      registry,
      `credential helper ${program} (configured in ${source}) exited with status ${code}${firstLine ? `: ${firstLine}` : ""}`,
    );
  }
  let answer: unknown;
  try {
    answer = JSON.parse(stdout);
  } catch {
    throw helperError(
      registry,
      `credential helper ${program} (configured in ${source}) printed something that is not JSON`,
    );
  }
  const { Username: username, Secret: secret } = (answer ?? {}) as { Username?: unknown; Secret?: unknown };
  if (typeof secret !== "string" || secret.length === 0) return undefined;
  const where = `${program} (${source})`;
  if (username === "<token>")
    return { kind: "identity-token", username: "<token>", identityToken: secret, source: where };
  if (typeof username !== "string" || username.length === 0) return undefined;
  return { kind: "basic", username, password: secret, source: where };
}
