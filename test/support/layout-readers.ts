/**
 * The other readers of OCI image layouts, as the real Debian programs: podman (containers/image,
 * like skopeo), umoci and oci-image-tool. Each runs with its state in a folder of the test (no
 * user configuration, no network: every reference here is an `oci:` path on this machine).
 * skopeo itself is in skopeo.ts.
 */
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";

const DEFAULT_TIMEOUT_MS = 120_000;
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

export class ToolError extends Error {
  readonly stderr: string;
  constructor(program: string, args: readonly string[], exitCode: number | null, stderr: string) {
    super(`${program} ${args.join(" ")} failed (exit ${exitCode ?? "killed"}):\n${stderr.trim()}`);
    this.stderr = stderr;
  }
}

export interface ToolRun {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `program` with a minimal environment whose HOME is `home`; rejects with its stderr. */
export function runTool(
  program: string,
  args: readonly string[],
  home: string,
  options: { readonly cwd?: string } = {},
): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    execFile(
      program,
      args,
      {
        encoding: "utf8",
        timeout: DEFAULT_TIMEOUT_MS,
        maxBuffer: MAX_OUTPUT_BYTES,
        ...(options.cwd ? { cwd: options.cwd } : {}),
        env: {
          PATH: process.env.PATH ?? "/usr/bin:/bin",
          HOME: home,
          XDG_CONFIG_HOME: path.join(home, "config"),
          XDG_DATA_HOME: path.join(home, "data"),
          XDG_RUNTIME_DIR: path.join(home, "run"),
        },
      },
      (error, stdout, stderr) => {
        if (error) {
          reject(new ToolError(program, args, typeof error.code === "number" ? error.code : null, stderr));
          return;
        }
        resolve({ stdout, stderr });
      },
    );
  });
}

/**
 * podman with its own image store in `home` (vfs: no kernel overlay support needed, rootful or
 * not) and the file events backend (no journald).
 */
export class Podman {
  private readonly home: string;
  private readonly runRoot: string;
  private constructor(home: string, runRoot: string) {
    this.home = home;
    this.runRoot = runRoot;
  }

  /** podman refuses a run root longer than 50 characters: it gets a short folder of its own. */
  static async create(home: string): Promise<Podman> {
    await mkdir(path.join(home, "run"), { recursive: true, mode: 0o700 });
    return new Podman(home, await mkdtemp(path.join(os.tmpdir(), "podman-")));
  }

  /** Removes the run root (the store is in `home`, which the test removes). */
  async close(): Promise<void> {
    await rm(this.runRoot, { recursive: true, force: true });
  }

  private async run(...args: string[]): Promise<ToolRun> {
    return runTool(
      "podman",
      [
        "--root",
        path.join(this.home, "storage"),
        "--runroot",
        this.runRoot,
        "--storage-driver",
        "vfs",
        "--events-backend",
        "file",
        "--cgroup-manager",
        "cgroupfs",
        ...args,
      ],
      this.home,
    );
  }

  /** `podman pull REF`; resolves with the image ID podman printed. */
  async pull(ref: string): Promise<string> {
    return (await this.run("pull", "--quiet", ref)).stdout.trim();
  }

  /** `podman push IMAGE REF` (REF e.g. `oci:DIR:TAG`: podman writes the layout). */
  async push(imageId: string, ref: string): Promise<void> {
    await this.run("push", "--quiet", imageId, ref);
  }

  /** The manifest digest podman recorded for an image. */
  async digestOf(imageId: string): Promise<string> {
    return (await this.run("image", "inspect", "--format", "{{.Digest}}", imageId)).stdout.trim();
  }
}

/** `umoci unpack --rootless --image LAYOUT:TAG BUNDLE` (`umoci` resolves `LAYOUT:TAG` by ref.name). */
export async function umociUnpack(layout: string, tag: string, bundle: string, home: string): Promise<void> {
  await runTool("umoci", ["unpack", "--rootless", "--image", `${layout}:${tag}`, bundle], home);
}

/** `umoci ls --layout LAYOUT`: the names (ref.names) umoci sees, sorted. */
export async function umociList(layout: string, home: string): Promise<string[]> {
  const { stdout } = await runTool("umoci", ["ls", "--layout", layout], home);
  return stdout
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "")
    .sort();
}

/**
 * `oci-image-tool validate --type image LAYOUT [--ref name=NAME]`: every named manifest, or the
 * one NAME names, checked against the OCI schemas with its config and layers.
 */
export async function ociImageToolValidate(layout: string, home: string, refName?: string): Promise<string> {
  const { stdout, stderr } = await runTool(
    "oci-image-tool",
    ["validate", "--type", "image", ...(refName !== undefined ? ["--ref", `name=${refName}`] : []), layout],
    home,
  );
  return stdout + stderr;
}
