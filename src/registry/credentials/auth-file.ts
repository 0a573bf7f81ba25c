import { isJsonObject } from "../../json-shape.js";
import { readFile, stat } from "node:fs/promises";
import { describeError } from "../../errors.js";
import {
  DOCKER_HUB,
  foldHostCase,
  isDockerHubName,
  type RegistryHost,
  type RepositoryPath,
} from "../../reference/index.js";
import { RegistryError } from "../errors.js";
import { MAX_CREDENTIAL_FILE_BYTES } from "../limits.js";
import type { Credential } from "./types.js";

/**
 * The `auths` / `credHelpers` / `credsStore` document shared by Docker's `config.json` and the
 * containers `auth.json`:
 *   {"auths": {"ghcr.io": {"auth": "<base64 user:password>"}},
 *    "credHelpers": {"123.dkr.ecr.us-east-1.amazonaws.com": "ecr-login"},
 *    "credsStore": "desktop"}
 * https://docs.docker.com/reference/cli/docker/login/#credential-stores
 * https://github.com/containers/image/blob/main/docs/containers-auth.json.5.md
 */
export interface AuthDocument {
  /** Entries by normalised key: `host` or, in auth.json, `host/namespace/...`. */
  readonly auths: ReadonlyMap<string, AuthEntry>;
  readonly credHelpers: ReadonlyMap<string, string>;
  readonly credsStore?: string;
}

export interface AuthEntry {
  readonly auth?: string;
  readonly username?: string;
  readonly password?: string;
  readonly identitytoken?: string;
  readonly registrytoken?: string;
}

/** Docker's historical key for Docker Hub, which helpers and `auths` use. */
export const DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/";

/**
 * A credential file key as a comparable name: no scheme, no `/v1/` or `/v2/` API suffix, no
 * trailing slash, Docker Hub aliases as `docker.io`. `https://index.docker.io/v1/` -> `docker.io`.
 */
export function normalizeAuthKey(key: string): string {
  let name = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, "");
  name = name.replace(/\/+$/, "").replace(/\/v[12]$/, "");
  const slash = name.indexOf("/");
  const host = foldHostCase(slash < 0 ? name : name.slice(0, slash));
  const rest = slash < 0 ? "" : name.slice(slash);
  return `${isDockerHubName(host) ? DOCKER_HUB : host}${rest}`;
}

/** The name a registry is looked up under in credential files. */
export function registryAuthKey(registry: RegistryHost): string {
  return normalizeAuthKey(registry);
}

function stringField(record: Record<string, unknown>, name: string): string | undefined {
  const value = record[name];
  return typeof value === "string" && value.length > 0 ? value : undefined;
}

/**
 * Parses the document; `where` names it in errors (never its content). `legacy`: Docker's old
 * `~/.dockercfg`, whose top level is the `auths` map itself.
 */
export function parseAuthDocument(text: string, where: string, legacy = false): AuthDocument {
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    throw new RegistryError("registry-auth", `${where} is not valid JSON`, {
      operation: "read credentials",
      registry: where,
    });
  }
  if (!isJsonObject(document)) {
    throw new RegistryError("registry-auth", `${where} must hold a JSON object`, {
      operation: "read credentials",
      registry: where,
    });
  }
  const auths = new Map<string, AuthEntry>();
  const entries = legacy ? document : document.auths;
  if (isJsonObject(entries)) {
    for (const [key, value] of Object.entries(entries)) {
      if (!isJsonObject(value)) continue;
      const entry: AuthEntry = {
        ...optional("auth", stringField(value, "auth")),
        ...optional("username", stringField(value, "username")),
        ...optional("password", stringField(value, "password")),
        ...optional("identitytoken", stringField(value, "identitytoken")),
        ...optional("registrytoken", stringField(value, "registrytoken")),
      };
      const normalized = normalizeAuthKey(key);
      // An exact key wins over one that only matches after normalising (Docker does the same).
      if (!auths.has(normalized) || key === normalized) auths.set(normalized, entry);
    }
  }
  const credHelpers = new Map<string, string>();
  if (!legacy && isJsonObject(document.credHelpers)) {
    for (const [key, value] of Object.entries(document.credHelpers)) {
      if (typeof value === "string" && value.length > 0) credHelpers.set(normalizeAuthKey(key), value);
    }
  }
  const credsStore = legacy ? undefined : stringField(document, "credsStore");
  return { auths, credHelpers, ...(credsStore === undefined ? {} : { credsStore }) };
}

function optional<K extends string>(key: K, value: string | undefined): Partial<Record<K, string>> {
  return value === undefined ? {} : ({ [key]: value } as Record<K, string>);
}

/** The credential an `auths` entry holds, or undefined for an empty placeholder entry. */
export function credentialFromEntry(entry: AuthEntry, source: string): Credential | undefined {
  let username = entry.username;
  let password = entry.password;
  if (entry.auth !== undefined) {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon > 0) {
      username = decoded.slice(0, colon);
      password = decoded.slice(colon + 1);
    }
  }
  if (entry.identitytoken !== undefined) {
    return {
      kind: "identity-token",
      username: username ?? "<token>",
      identityToken: entry.identitytoken,
      source,
    };
  }
  if (entry.registrytoken !== undefined)
    return { kind: "registry-token", token: entry.registrytoken, source };
  if (username !== undefined && password !== undefined && password.length > 0) {
    return { kind: "basic", username, password, source };
  }
  return undefined;
}

/**
 * The entry for a registry and repository: with `pathKeys` (containers auth.json) the most
 * specific `host/namespace/...` key that is a prefix of `host/repository` by whole components,
 * else the host's own key.
 */
export function findAuthEntry(
  document: AuthDocument,
  registry: RegistryHost,
  repository: RepositoryPath | undefined,
  pathKeys: boolean,
): { key: string; entry: AuthEntry } | undefined {
  const host = registryAuthKey(registry);
  if (pathKeys && repository !== undefined) {
    const components = repository.split("/");
    for (let length = components.length; length > 0; length--) {
      const key = `${host}/${components.slice(0, length).join("/")}`;
      const entry = document.auths.get(key);
      if (entry) return { key, entry };
    }
  }
  const entry = document.auths.get(host);
  return entry ? { key: host, entry } : undefined;
}

/** Reads a credential file; undefined when it does not exist. */
export async function readAuthFile(path: string, legacy = false): Promise<AuthDocument | undefined> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    if (
      (error as NodeJS.ErrnoException).code === "ENOENT" ||
      (error as NodeJS.ErrnoException).code === "ENOTDIR"
    ) {
      return undefined;
    }
    throw new RegistryError("registry-auth", `cannot read ${path}: ${describeError(error)}`, {
      operation: "read credentials",
      registry: path,
    });
  }
  if (size > MAX_CREDENTIAL_FILE_BYTES) {
    throw new RegistryError("registry-auth", `${path} is larger than ${MAX_CREDENTIAL_FILE_BYTES} bytes`, {
      operation: "read credentials",
      registry: path,
    });
  }
  const text = await readFile(path, "utf8");
  return parseAuthDocument(text, path, legacy);
}
