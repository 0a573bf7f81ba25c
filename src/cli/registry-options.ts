import { homedir } from "node:os";
import * as path from "node:path";
import { PromoterError, UsageError } from "../errors.js";
import type { Logger } from "../log.js";
import { foldHostCase, registryHostProblem, type RegistryHost } from "../reference/index.js";
import {
  createStoreProvider,
  DEFAULT_MAX_CONCURRENT_PER_HOST,
  DEFAULT_MIN_BYTES_PER_SECOND,
  googleRegistrySet,
  isGoogleRegistry,
  type RegistryStoreProvider,
  type StoreProviderOptions,
} from "../registry/index.js";
import {
  booleanOption,
  stringListOption,
  stringOption,
  type OptionSpecs,
  type ParsedValues,
} from "./command.js";
import type { CliIO } from "./io.js";
import { internalAddressPolicyFromOptions } from "./registry-policy-options.js";

/**
 * The options every command that talks to registries shares. Spread them into a command's
 * `options` and build the store provider with `storeProviderFromOptions`.
 *
 * Registries on loopback addresses (127.0.0.0/8, ::1, localhost) are reached over plain HTTP, as
 * Docker does for local registries, unless named with `--https-registry`; any other registry over
 * HTTPS unless named with `--insecure-registry`. Credentials come from the environment (`PROMOTER_AUTH_<HOST>`,
 * `PROMOTER_REGISTRY_AUTH`), `REGISTRY_AUTH_FILE`, `DOCKER_CONFIG`, the containers auth.json and
 * `~/.docker/config.json`, and for Google's registries (and `--google-registry` hosts) last from
 * Google's Application Default Credentials (see docs/registries.md).
 */
export const registryOptionSpecs = {
  "insecure-registry": {
    type: "string",
    multiple: true,
    valueName: "HOST[:PORT]",
    description: "Reach this registry over plain HTTP (repeatable; loopback registries always are)",
  },
  "google-registry": {
    type: "string",
    multiple: true,
    valueName: "HOST[:PORT]",
    description:
      "Treat this registry as Google's: Application Default Credentials when no explicit credential names it, and repositories listed with their manifest map (repeatable; gcr.io, *.gcr.io and *-docker.pkg.dev always are)",
  },
  "https-registry": {
    type: "string",
    multiple: true,
    valueName: "HOST[:PORT]",
    description:
      "Reach this registry over HTTPS only, even on a loopback address (repeatable; with --registry-ca for a private CA)",
  },
  "registry-ca": {
    type: "string",
    valueName: "FILE",
    description: "Also trust the CA certificates in this PEM file for registry TLS",
  },
  "max-requests-per-host": {
    type: "string",
    valueName: "N",
    description: `Requests in flight at once per registry host (default ${DEFAULT_MAX_CONCURRENT_PER_HOST})`,
  },
  "requests-per-second": {
    type: "string",
    valueName: "N",
    description: "Requests started per second per registry host, e.g. 10 or 0.5 (default: no limit)",
  },
  "registry-timeout": {
    type: "string",
    valueName: "SECONDS",
    description:
      "Give up on a registry silent this long; also the time a request has before --registry-min-rate applies (default 60)",
  },
  "registry-min-rate": {
    type: "string",
    valueName: "KIB/S",
    description: `Give up on a request slower than this many KiB/s on average after --registry-timeout (default ${DEFAULT_MIN_BYTES_PER_SECOND / 1024})`,
  },
  http2: {
    type: "boolean",
    description:
      "Offer HTTP/2 to TLS registries for requests without blob bytes (default: HTTP/1.1 with kept-alive connections)",
  },
  "disable-http2": {
    type: "boolean",
    description: "Speak only HTTP/1.1 (the default; accepted for scripts written when HTTP/2 was)",
  },
} as const satisfies OptionSpecs;

/** The hosts `--google-registry` names, checked. */
function googleRegistryList(values: ParsedValues): string[] {
  const hosts = stringListOption(values, "google-registry");
  for (const host of hosts) {
    const problem = registryHostProblem(host);
    if (problem) throw new UsageError(`--google-registry ${JSON.stringify(host)}: ${problem}`);
  }
  return hosts;
}

/** Which hosts are Google's registries: the known names, and those `--google-registry` names. */
export function googleRegistryHostsOption(values: ParsedValues): (host: string) => boolean {
  const marked = googleRegistrySet(googleRegistryList(values));
  return (host) => isGoogleRegistry(host as RegistryHost, marked);
}

function positiveNumber(
  values: ParsedValues,
  name: string,
  integer: boolean,
  max: number,
): number | undefined {
  const text = stringOption(values, name);
  if (text === undefined) return undefined;
  const pattern = integer ? /^\d+$/ : /^(?:\d+(?:\.\d*)?|\.\d+)$/;
  const value = Number(text);
  if (!pattern.test(text) || !Number.isFinite(value) || value <= 0 || value > max) {
    throw new UsageError(
      `--${name} must be a ${integer ? "whole" : "positive"} number between ${integer ? 1 : "0"} and ${max}, not ${JSON.stringify(text)}`,
    );
  }
  return value;
}

/** Store provider options from the shared flags (no I/O besides what the provider does). */
export function registryProviderOptions(
  values: ParsedValues,
  io: CliIO,
  logger: Logger,
): StoreProviderOptions {
  const insecure = stringListOption(values, "insecure-registry");
  for (const host of insecure) {
    const problem = registryHostProblem(host);
    if (problem) throw new UsageError(`--insecure-registry ${JSON.stringify(host)}: ${problem}`);
  }
  const googleRegistries = googleRegistryList(values);
  const https = stringListOption(values, "https-registry");
  for (const host of https) {
    const problem = registryHostProblem(host);
    if (problem) throw new UsageError(`--https-registry ${JSON.stringify(host)}: ${problem}`);
    if (insecure.some((entry) => foldHostCase(entry) === foldHostCase(host)))
      throw new UsageError(`${host} is named with both --insecure-registry and --https-registry`);
  }
  const caFile = stringOption(values, "registry-ca");
  const wantsHttp2 = booleanOption(values, "http2");
  const refusesHttp2 = booleanOption(values, "disable-http2");
  if (wantsHttp2 && refusesHttp2) throw new UsageError("--http2 and --disable-http2 contradict each other");
  const http2 = wantsHttp2 ? true : refusesHttp2 ? false : undefined;
  const maxConcurrent = positiveNumber(values, "max-requests-per-host", true, 10_000);
  const requestsPerSecond = positiveNumber(values, "requests-per-second", false, 100_000);
  const timeoutSeconds = positiveNumber(values, "registry-timeout", false, 86_400);
  const timeoutMs = timeoutSeconds === undefined ? undefined : Math.ceil(timeoutSeconds * 1000);
  const minRateKib = positiveNumber(values, "registry-min-rate", false, 10_000_000);
  const timeouts = {
    ...(timeoutMs === undefined ? {} : { headersMs: timeoutMs, bodyIdleMs: timeoutMs }),
    ...(minRateKib === undefined ? {} : { minBytesPerSecond: minRateKib * 1024 }),
  };
  return {
    insecureRegistries: insecure,
    ...(googleRegistries.length === 0 ? {} : { googleRegistries }),
    ...(https.length === 0 ? {} : { httpsRegistries: https }),
    ...(caFile === undefined ? {} : { caBundleFile: path.resolve(io.cwd, caFile) }),
    env: io.env,
    homeDirectory: io.env.HOME ?? homedir(),
    limits: {
      defaults: {
        maxConcurrent: maxConcurrent ?? DEFAULT_MAX_CONCURRENT_PER_HOST,
        ...(requestsPerSecond === undefined ? {} : { requestsPerSecond }),
      },
    },
    ...(Object.keys(timeouts).length === 0 ? {} : { timeouts }),
    ...(http2 === undefined ? {} : { http2 }),
    // The run's secrets learn what the client handles, so every output sink removes it.
    ...(io.secrets ? { redactor: io.secrets } : {}),
    logger,
  };
}

/**
 * The store provider a registry-talking command uses, configured from the shared flags. Every
 * provider carries the connect-time guard (no connection to an internal address except on the
 * hosts of `--allow-registry`), here rather than in each command, so no command can forget it.
 */
export function storeProviderFromOptions(
  values: ParsedValues,
  io: CliIO,
  logger: Logger,
): RegistryStoreProvider {
  const options = {
    ...registryProviderOptions(values, io, logger),
    internalAddresses: internalAddressPolicyFromOptions(values, io),
  };
  try {
    return createStoreProvider(options);
  } catch (error) {
    // An unreadable or empty --registry-ca file is the user's input: a usage error.
    if (error instanceof PromoterError && error.code === "registry-ca")
      throw new UsageError(`--registry-ca: ${error.message}`);
    throw error;
  }
}
