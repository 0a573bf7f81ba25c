/**
 * Thin helpers over the real skopeo binary, the independent judge of what the project writes.
 * Registries in tests are on loopback over plain HTTP, so TLS verification is off; credentials are
 * passed explicitly and skopeo is kept away from the user's own auth files.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import type { Digest } from "../../src/reference/index.js";
import { RUN_DIRECTORY_ENV } from "./registry-harness.js";

export const SKOPEO_PROGRAM = "/usr/bin/skopeo";

/**
 * `skopeo sync` of a YAML source list into `destination` (host/prefix) over plain HTTP, every
 * platform, digests kept, no retries: how the benchmarks run skopeo against the promoter.
 */
export function skopeoSyncArguments(syncFile: string, destination: string): string[] {
  return [
    "--insecure-policy",
    "sync",
    "--src",
    "yaml",
    "--dest",
    "docker",
    "--dest-tls-verify=false",
    "--all",
    "--preserve-digests",
    "--retry-times",
    "0",
    syncFile,
    destination,
  ];
}
const DEFAULT_TIMEOUT_MS = 60_000;
/** Largest output kept from one skopeo run (manifests, tag lists). */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

export interface SkopeoCredentials {
  readonly username: string;
  readonly password: string;
}

export interface SkopeoOptions {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

export class SkopeoError extends Error {
  readonly stderr: string;
  readonly exitCode: number | null;

  constructor(args: readonly string[], exitCode: number | null, stderr: string, cause?: unknown) {
    super(
      `skopeo ${args.map(redactArgument).join(" ")} failed (exit ${exitCode ?? "killed"}):\n${stderr.trim()}`,
      { cause },
    );
    this.stderr = stderr;
    this.exitCode = exitCode;
  }
}

/** Hide the password of `--creds user:pass` style arguments in error messages. */
function redactArgument(argument: string, index: number, all: readonly string[]): string {
  const previous = index > 0 ? all[index - 1] : undefined;
  if (previous !== undefined && /^--(src-|dest-)?creds$/.test(previous)) {
    return argument.replace(/:.*$/, ":***");
  }
  return argument;
}

let emptyAuthFile: string | undefined;
/**
 * An empty auth file so skopeo never reads the user's `auth.json` or Docker config. It lives in
 * the test run's folder (removed by the global teardown); outside Vitest, in a temp folder
 * removed on exit.
 */
function isolatedAuthFile(): string {
  if (emptyAuthFile === undefined) {
    const runDirectory = process.env[RUN_DIRECTORY_ENV];
    let directory: string;
    if (runDirectory) {
      directory = runDirectory;
    } else {
      const temporary = mkdtempSync(path.join(os.tmpdir(), "image-promoter-skopeo-"));
      process.once("exit", () => {
        rmSync(temporary, { recursive: true, force: true });
      });
      directory = temporary;
    }
    const file = path.join(directory, `skopeo-auth-${process.pid}.json`);
    writeFileSync(file, '{"auths":{}}\n');
    emptyAuthFile = file;
  }
  return emptyAuthFile;
}

/** Runs skopeo with the given arguments; resolves with stdout bytes or fails with stderr. */
export function runSkopeo(args: readonly string[], options: SkopeoOptions = {}): Promise<Buffer> {
  const fullArgs = ["--insecure-policy", ...args];
  return new Promise((resolve, reject) => {
    execFile(
      SKOPEO_PROGRAM,
      fullArgs,
      {
        encoding: "buffer",
        timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        maxBuffer: MAX_OUTPUT_BYTES,
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          REGISTRY_AUTH_FILE: isolatedAuthFile(),
          HOME: os.tmpdir(),
        },
        ...(options.signal ? { signal: options.signal } : {}),
      },
      (error, stdout, stderr) => {
        if (error) {
          const code = typeof error.code === "number" ? error.code : null;
          const text = stderr.toString("utf8") || error.message;
          reject(new SkopeoError(fullArgs, code, text, error));
          return;
        }
        resolve(stdout);
      },
    );
  });
}

function credsArguments(flag: string, creds: SkopeoCredentials | undefined): string[] {
  return creds ? [flag, `${creds.username}:${creds.password}`] : [];
}

/**
 * `skopeo inspect --raw`: the manifest bytes exactly as served or stored, and their sha256.
 * `ref` is a skopeo transport reference (`docker://127.0.0.1:PORT/repo:tag`, `oci:DIR:tag`).
 */
export async function skopeoInspectRaw(
  ref: string,
  options: SkopeoOptions & { creds?: SkopeoCredentials } = {},
): Promise<{ bytes: Buffer; digest: Digest }> {
  const tls = ref.startsWith("docker://") ? ["--tls-verify=false"] : [];
  const bytes = await runSkopeo(
    ["inspect", "--raw", ...tls, ...credsArguments("--creds", options.creds), ref],
    options,
  );
  return { bytes, digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}` as Digest };
}

export interface SkopeoCopyOptions extends SkopeoOptions {
  readonly srcCreds?: SkopeoCredentials;
  readonly destCreds?: SkopeoCredentials;
  /** Copy every image of an index (`--all`); default true. */
  readonly all?: boolean;
  /** Refuse to change digests (`--preserve-digests`); default true. */
  readonly preserveDigests?: boolean;
  /** `--format oci|v2s2`: convert manifests (changes digests; then set preserveDigests false). */
  readonly format?: "oci" | "v2s2";
}

/** The folder of an `oci:PATH[:tag]` reference, or undefined for other transports. */
function ociLayoutPath(ref: string): string | undefined {
  if (!ref.startsWith("oci:")) return undefined;
  const rest = ref.slice("oci:".length);
  const colon = rest.lastIndexOf(":");
  return colon > rest.lastIndexOf("/") ? rest.slice(0, colon) : rest;
}

/** `skopeo copy` between any two transports (`docker://`, `oci:`), TLS verification off. */
export async function skopeoCopy(src: string, dst: string, options: SkopeoCopyOptions = {}): Promise<void> {
  // skopeo creates the layout folder but not its parents ("lstat PARENT: no such file").
  const layout = ociLayoutPath(dst);
  if (layout !== undefined) await mkdir(path.dirname(layout), { recursive: true });
  const args = [
    "copy",
    "--quiet",
    "--src-tls-verify=false",
    "--dest-tls-verify=false",
    ...credsArguments("--src-creds", options.srcCreds),
    ...credsArguments("--dest-creds", options.destCreds),
    ...((options.all ?? true) ? ["--all"] : []),
    ...((options.preserveDigests ?? true) ? ["--preserve-digests"] : []),
    ...(options.format ? ["--format", options.format] : []),
    src,
    dst,
  ];
  await runSkopeo(args, options);
}

/**
 * `skopeo list-tags docker://host/repo`: the tags of a registry repository. (skopeo 1.9.3 lists
 * tags only for `docker://` and archives, not for `oci:` layouts.)
 */
export async function skopeoListTags(
  ref: string,
  options: SkopeoOptions & { creds?: SkopeoCredentials } = {},
): Promise<string[]> {
  if (!ref.startsWith("docker://")) throw new Error(`skopeoListTags needs a docker:// reference, got ${ref}`);
  const tls = ["--tls-verify=false"];
  const stdout = await runSkopeo(
    ["list-tags", ...tls, ...credsArguments("--creds", options.creds), ref],
    options,
  );
  const parsed = JSON.parse(stdout.toString("utf8")) as { Tags?: string[] | null };
  return parsed.Tags ?? [];
}
