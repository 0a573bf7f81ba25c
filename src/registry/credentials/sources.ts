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
import { runCredentialHelper } from "./helper.js";
import type { Credential, CredentialSource } from "./types.js";

type Env = Readonly<Record<string, string | undefined>>;

export interface FileSourceOptions {
  /** `docker`: keys are hosts; `containers`: keys may be `host/namespace/...` prefixes. */
  readonly format: "docker" | "containers";
  /** Environment for credential helper programs (PATH finds them). */
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
    this.document ??= readAuthFile(this.file);
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

/** The environment variable that holds `username:password` for one registry. */
export function registryAuthVariable(registry: RegistryHost | string): string {
  return `PROMOTER_AUTH_${registryAuthKey(registry as RegistryHost)
    .toUpperCase()
    .replace(/[^A-Z0-9]/g, "_")}`;
}

/** The environment variable that holds a whole docker-config-style `{"auths": {...}}` document. */
export const REGISTRY_AUTH_VARIABLE = "PROMOTER_REGISTRY_AUTH";

/**
 * Credentials from environment variables, for CI systems that hand out secrets that way:
 * - `PROMOTER_AUTH_<HOST>=username:password` for one registry, where `<HOST>` is the registry
 *   host in upper case with every other character than a letter or digit replaced by `_`
 *   (`ghcr.io` -> `PROMOTER_AUTH_GHCR_IO`, `127.0.0.1:5000` -> `PROMOTER_AUTH_127_0_0_1_5000`);
 * - `PROMOTER_REGISTRY_AUTH` with a JSON document like Docker's config.json `auths` (keys may be
 *   `host/namespace` prefixes, as in containers auth.json). Helper programs are not run from it.
 */
export class EnvCredentialSource implements CredentialSource {
  private document: AuthDocument | undefined;

  constructor(private readonly env: Env) {}

  lookup(registry: RegistryHost, repository: RepositoryPath | undefined): Promise<Credential | undefined> {
    const variable = registryAuthVariable(registry);
    const single = this.env[variable];
    if (single !== undefined && single.length > 0) {
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
    return [`$${registryAuthVariable(registry)}`, `$${REGISTRY_AUTH_VARIABLE}`];
  }
}

export interface DefaultSourcesOptions {
  readonly env: Env;
  /** The user's home directory (for ~/.docker and ~/.config/containers). */
  readonly homeDirectory: string;
  readonly helperTimeoutMs?: number;
}

/**
 * The credential sources in the order they are asked (the first with a credential wins):
 * 1. environment variables (`PROMOTER_AUTH_<HOST>`, `PROMOTER_REGISTRY_AUTH`);
 * 2. `$REGISTRY_AUTH_FILE`, when set;
 * 3. `$DOCKER_CONFIG/config.json`, when DOCKER_CONFIG is set;
 * 4. `$XDG_RUNTIME_DIR/containers/auth.json`, then `~/.config/containers/auth.json`
 *    (skopeo's and podman's defaults);
 * 5. `~/.docker/config.json`, when DOCKER_CONFIG is not set.
 * Explicit settings come first; then the containers defaults before Docker's, as skopeo does.
 */
export function defaultCredentialSources(options: DefaultSourcesOptions): CredentialSource[] {
  const { env, homeDirectory } = options;
  const fileOptions = (format: "docker" | "containers"): FileSourceOptions => ({
    format,
    helperEnv: env,
    ...(options.helperTimeoutMs === undefined ? {} : { helperTimeoutMs: options.helperTimeoutMs }),
  });
  const sources: CredentialSource[] = [new EnvCredentialSource(env)];
  const authFile = env.REGISTRY_AUTH_FILE;
  if (authFile) sources.push(new FileCredentialSource(authFile, fileOptions("containers")));
  const dockerConfig = env.DOCKER_CONFIG;
  if (dockerConfig)
    sources.push(new FileCredentialSource(path.join(dockerConfig, "config.json"), fileOptions("docker")));
  if (!authFile) {
    if (env.XDG_RUNTIME_DIR) {
      sources.push(
        new FileCredentialSource(
          path.join(env.XDG_RUNTIME_DIR, "containers", "auth.json"),
          fileOptions("containers"),
        ),
      );
    }
    sources.push(
      new FileCredentialSource(
        path.join(homeDirectory, ".config", "containers", "auth.json"),
        fileOptions("containers"),
      ),
    );
  }
  if (!dockerConfig) {
    sources.push(
      new FileCredentialSource(path.join(homeDirectory, ".docker", "config.json"), fileOptions("docker")),
    );
  }
  return sources;
}
