import * as path from "node:path";
import type { RegistryHost, RepositoryPath } from "../../reference/index.js";
import { RegistryError } from "../errors.js";
import {
  DOCKER_HUB_AUTH_KEY,
  credentialFromEntry,
  findAuthEntry,
  parseAuthDocument,
  readAuthFile,
  registryAuthKey,
  type AuthDocument,
} from "./auth-file.js";
import { GoogleCredentialSource } from "./google-source.js";
import { googleRegistrySet } from "../google-auth/index.js";
import { runCredentialHelper } from "./helper.js";
import type { Credential, CredentialSource } from "./types.js";

type Env = Readonly<Record<string, string | undefined>>;

export interface FileSourceOptions {
  /** `docker`: keys are hosts; `containers`: keys may be `host/namespace/...` prefixes. */
  /** `legacy`: Docker's old `~/.dockercfg` (no `auths` wrapper, no helpers). */
  readonly format: "docker" | "containers" | "legacy";
  /** The promoter's environment; helper programs get only the part they need (helper.ts). */
  readonly helperEnv: Env;
  readonly helperTimeoutMs?: number;
}

/**
 * A credential file: Docker's config.json or a containers auth.json. Per-registry `credHelpers`
 * come first, then `credsStore`, then the inline `auths` entry (Docker's order; an inline entry
 * is also used when the store has nothing).
 */
export class FileCredentialSource implements CredentialSource {
  private document: Promise<AuthDocument | undefined> | undefined;

  constructor(
    readonly file: string,
    private readonly options: FileSourceOptions,
  ) {}

  private load(): Promise<AuthDocument | undefined> {
    this.document ??= readAuthFile(this.file, this.options.format === "legacy");
    return this.document;
  }

  async lookup(
    registry: RegistryHost,
    repository: RepositoryPath | undefined,
    options: { readonly signal?: AbortSignal } = {},
  ): Promise<Credential | undefined> {
    const document = await this.load();
    if (!document) return undefined;
    const key = registryAuthKey(registry);
    const serverUrl = key === "docker.io" ? DOCKER_HUB_AUTH_KEY : key;
    const helperOptions = {
      env: this.options.helperEnv,
      ...(this.options.helperTimeoutMs === undefined ? {} : { timeoutMs: this.options.helperTimeoutMs }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    };
    const helper = document.credHelpers.get(key);
    if (helper !== undefined) {
      return runCredentialHelper(helper, serverUrl, registry, `${this.file} credHelpers`, helperOptions);
    }
    const found = findAuthEntry(document, registry, repository, this.options.format === "containers");
    if (document.credsStore !== undefined) {
      const stored = await runCredentialHelper(
        document.credsStore,
        serverUrl,
        registry,
        `${this.file} credsStore`,
        helperOptions,
      );
      if (stored) return stored;
    }
    return found ? credentialFromEntry(found.entry, this.file) : undefined;
  }

  describe(): string[] {
    return [this.file];
  }
}

const AUTH_VARIABLE_PREFIX = "PROMOTER_AUTH_";

/**
 * A registry key (`registryAuthKey`: lower case, Docker Hub as `docker.io`) that has a
 * `PROMOTER_AUTH_` variable: host-name labels of letters and digits joined by a dot or by dashes
 * (never starting or ending with a dash, as the reference grammar requires), then an optional
 * `:port`. IPv6 literals have none.
 */
const VARIABLE_HOST = /^[a-z0-9]+(?:(?:\.|-+)[a-z0-9]+)*(?::[0-9]+)?$/;

/**
 * The spelling of a registry in its `PROMOTER_AUTH_` variable, or undefined for an IPv6
 * literal: upper case, each `.` as `_`, each `-` as `__`, the `:` before the port as `___`.
 * Between two letters or digits of such a host there is exactly one dot, one colon or a run of
 * dashes, so a run of underscores reads back one way only (1: dot, 3: colon, even: dashes): no
 * two hosts share a variable (`registry.k8s.io` -> `REGISTRY_K8S_IO`, `registry-k8s.io` ->
 * `REGISTRY__K8S_IO`, `registry.k8s.io:443` -> `REGISTRY_K8S_IO___443`).
 */
function authVariableOf(registry: RegistryHost | string): string | undefined {
  const key = registryAuthKey(registry as RegistryHost);
  if (!VARIABLE_HOST.test(key)) return undefined;
  const spelled = key.replace(/[.:-]/g, (separator) =>
    separator === "." ? "_" : separator === "-" ? "__" : "___",
  );
  return `${AUTH_VARIABLE_PREFIX}${spelled.toUpperCase()}`;
}

/**
 * The host a `PROMOTER_AUTH_` variable is for, or undefined when its name is no host's (the
 * inverse of `authVariableOf`).
 */
function hostOfAuthVariable(variable: string): string | undefined {
  if (!variable.startsWith(AUTH_VARIABLE_PREFIX)) return undefined;
  const spelled = variable.slice(AUTH_VARIABLE_PREFIX.length);
  if (!/^[A-Z0-9]+(?:_+[A-Z0-9]+)*$/.test(spelled)) return undefined;
  const host = spelled
    .toLowerCase()
    .replace(/_+/g, (run) =>
      run.length === 1
        ? "."
        : run.length === 3
          ? ":"
          : run.length % 2 === 0
            ? "-".repeat(run.length / 2)
            : "?",
    );
  return VARIABLE_HOST.test(host) ? host : undefined;
}

/**
 * The name the variable had before look-alike hosts were told apart, when every character
 * other than a letter or digit became `_` (`registry.k8s.io`, `registry-k8s.io` and
 * `registry.k8s-io` all read `PROMOTER_AUTH_REGISTRY_K8S_IO`). Only to tell its users the new
 * name.
 */
function ambiguousAuthVariableOf(registry: RegistryHost): string {
  return `${AUTH_VARIABLE_PREFIX}${registryAuthKey(registry)
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, "_")}`;
}

/**
 * The environment variable that holds `username:password` for one registry (see
 * `authVariableOf`). An IPv6 literal has none: its credential goes in `PROMOTER_REGISTRY_AUTH`.
 */
export function registryAuthVariable(registry: RegistryHost | string): string {
  const variable = authVariableOf(registry);
  if (variable === undefined) {
    throw new RegistryError(
      "registry-auth",
      `${registry} has no ${AUTH_VARIABLE_PREFIX}<HOST> variable; put its credential in $${REGISTRY_AUTH_VARIABLE}`,
      { operation: "look up credentials", registry },
    );
  }
  return variable;
}

/** The environment variable that holds a whole docker-config-style `{"auths": {...}}` document. */
export const REGISTRY_AUTH_VARIABLE = "PROMOTER_REGISTRY_AUTH";

/**
 * Credentials from environment variables, for CI systems that hand out secrets that way:
 * - `PROMOTER_AUTH_<HOST>=username:password` for one registry, `<HOST>` spelled so that no two
 *   hosts share a variable (see `authVariableOf`);
 * - `PROMOTER_REGISTRY_AUTH` with a JSON document like Docker's config.json `auths` (keys may be
 *   `host/namespace` prefixes, as in containers auth.json). Helper programs are not run from it.
 * A variable under the old, ambiguous spelling of the registry (`ambiguousAuthVariableOf`) is
 * refused with a line naming the new one: it may have been meant for a look-alike host.
 */
export class EnvCredentialSource implements CredentialSource {
  private document: AuthDocument | undefined;

  constructor(private readonly env: Env) {}

  lookup(registry: RegistryHost, repository: RepositoryPath | undefined): Promise<Credential | undefined> {
    const variable = authVariableOf(registry);
    const single = variable === undefined ? undefined : this.env[variable];
    if (variable !== undefined && single !== undefined && single.length > 0) {
      const colon = single.indexOf(":");
      if (colon <= 0 || colon === single.length - 1) {
        return Promise.reject(
          new RegistryError("registry-auth", `$${variable} must be username:password`, {
            operation: "look up credentials",
            registry,
          }),
        );
      }
      return Promise.resolve({
        kind: "basic",
        username: single.slice(0, colon),
        password: single.slice(colon + 1),
        source: `$${variable}`,
      });
    }
    const ambiguous = ambiguousAuthVariableOf(registry);
    if (ambiguous !== variable && (this.env[ambiguous] ?? "").length > 0) {
      return Promise.reject(ambiguousVariableError(registry, ambiguous, variable));
    }
    const text = this.env[REGISTRY_AUTH_VARIABLE];
    if (text === undefined || text.trim().length === 0) return Promise.resolve(undefined);
    try {
      this.document ??= parseAuthDocument(text, `$${REGISTRY_AUTH_VARIABLE}`);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    const found = findAuthEntry(this.document, registry, repository, true);
    return Promise.resolve(
      found ? credentialFromEntry(found.entry, `$${REGISTRY_AUTH_VARIABLE}`) : undefined,
    );
  }

  describe(registry: RegistryHost): string[] {
    const variable = authVariableOf(registry);
    return [...(variable === undefined ? [] : [`$${variable}`]), `$${REGISTRY_AUTH_VARIABLE}`];
  }
}

/** One line for a variable under the old spelling: whose it is now, and which one to set. */
function ambiguousVariableError(
  registry: RegistryHost,
  ambiguous: string,
  variable: string | undefined,
): RegistryError {
  const owner = hostOfAuthVariable(ambiguous);
  const now = owner === undefined ? "is no registry's" : `is ${owner}'s`;
  const instead =
    variable === undefined
      ? `an IPv6 registry's credential goes in $${REGISTRY_AUTH_VARIABLE}`
      : `${registry}'s is $${variable}`;
  return new RegistryError(
    "registry-auth",
    `not using $${ambiguous} for ${registry}: that variable ${now} (dots, dashes and a port's colon are spelled apart so that look-alike hosts never share one); ${instead}`,
    { operation: "look up credentials", registry },
  );
}

export interface DefaultSourcesOptions {
  readonly env: Env;
  /** The user's home directory (for ~/.docker and ~/.config/containers). */
  readonly homeDirectory: string;
  /** The user id for `/run/containers/<uid>/auth.json` (default: the process's). */
  readonly userId?: number;
  readonly helperTimeoutMs?: number;
  /**
   * Hosts to treat as Google's (besides gcr.io, *.gcr.io, *-docker.pkg.dev): they get
   * Application Default Credentials when no explicit source has a credential for them.
   */
  readonly googleRegistries?: readonly string[];
}

/**
 * The credential sources in the order they are asked (the first with a credential wins): the
 * environment variables (`PROMOTER_AUTH_<HOST>`, `PROMOTER_REGISTRY_AUTH`), then the files
 * skopeo and podman read, in their order (containers-auth.json(5), as containers/image
 * implements it):
 * - `$REGISTRY_AUTH_FILE` when set, and then no other file (an explicit choice);
 * - otherwise `$XDG_RUNTIME_DIR/containers/auth.json` (`/run/containers/<uid>/auth.json` when
 *   XDG_RUNTIME_DIR is unset: where `skopeo login` as root writes without a session), then
 *   `$XDG_CONFIG_HOME/containers/auth.json` (`~/.config/...`), then `$DOCKER_CONFIG/config.json`
 *   or `~/.docker/config.json`, then Docker's old `~/.dockercfg`.
 * https://github.com/containers/image/blob/main/docs/containers-auth.json.5.md
 * Last, for Google's registries only, Google's Application Default Credentials
 * (google-source.ts): any explicit credential above wins over them.
 */
export function defaultCredentialSources(options: DefaultSourcesOptions): CredentialSource[] {
  const { env, homeDirectory } = options;
  const file = (location: string, format: FileSourceOptions["format"]) =>
    new FileCredentialSource(location, {
      format,
      helperEnv: env,
      ...(options.helperTimeoutMs === undefined ? {} : { helperTimeoutMs: options.helperTimeoutMs }),
    });
  const sources: CredentialSource[] = [new EnvCredentialSource(env)];
  const google = new GoogleCredentialSource({
    env,
    homeDirectory,
    googleRegistries: googleRegistrySet(options.googleRegistries ?? []),
  });
  if (env.REGISTRY_AUTH_FILE) return [...sources, file(env.REGISTRY_AUTH_FILE, "containers"), google];
  // An empty variable is an unset one, as containers/image reads them.
  const variable = (name: string) => (env[name] === "" ? undefined : env[name]);
  const userId = options.userId ?? process.getuid?.() ?? 0;
  const runtimeDirectory = variable("XDG_RUNTIME_DIR");
  const primary =
    runtimeDirectory === undefined
      ? path.join("/run", "containers", String(userId), "auth.json")
      : path.join(runtimeDirectory, "containers", "auth.json");
  const configHome = variable("XDG_CONFIG_HOME") ?? path.join(homeDirectory, ".config");
  return [
    ...sources,
    file(primary, "containers"),
    file(path.join(configHome, "containers", "auth.json"), "containers"),
    env.DOCKER_CONFIG
      ? file(path.join(env.DOCKER_CONFIG, "config.json"), "docker")
      : file(path.join(homeDirectory, ".docker", "config.json"), "docker"),
    file(path.join(homeDirectory, ".dockercfg"), "legacy"),
    google,
  ];
}
