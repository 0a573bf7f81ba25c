/**
 * Vitest global setup. Checks that the programs the registry-backed tests drive are installed
 * (quickly: a PATH look-up, no process start), and gives the run a folder where the registry
 * harness records the registries it starts, so the teardown can kill any that a crashed worker
 * left behind (only those: it checks each process's command line names the recorded config).
 */
import { accessSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { RUN_DIRECTORY_ENV, type RegistryRecord } from "./registry-harness.js";

/** Program -> Debian package that ships it. */
export const REQUIRED_TEST_TOOLS: Readonly<Record<string, string>> = {
  "docker-registry": "docker-registry",
  skopeo: "skopeo",
  podman: "podman",
  umoci: "umoci",
  "oci-image-tool": "oci-image-tool",
  openssl: "openssl",
  git: "git",
  htpasswd: "apache2-utils",
};

function onPath(program: string): boolean {
  for (const directory of (process.env.PATH ?? "/usr/bin:/bin").split(path.delimiter)) {
    try {
      accessSync(path.join(directory, program), constants.X_OK);
      return true;
    } catch {
      // Not here.
    }
  }
  return false;
}

export function missingTestTools(): string[] {
  return Object.keys(REQUIRED_TEST_TOOLS).filter((program) => !onPath(program));
}

export default function setup(): () => void {
  const missing = missingTestTools();
  if (missing.length > 0) {
    const packages = missing.map((program) => REQUIRED_TEST_TOOLS[program] ?? program);
    throw new Error(
      `The tests need programs that are not installed: ${missing.join(", ")}.\n` +
        `Run \`node scripts/ensure-test-tools.mjs\` (as root it installs them), or ` +
        `\`sudo apt-get install -y ${[...new Set(packages)].join(" ")}\`.`,
    );
  }
  const runDirectory = mkdtempSync(path.join(os.tmpdir(), "image-promoter-test-run-"));
  process.env[RUN_DIRECTORY_ENV] = runDirectory;
  return () => {
    killLeftoverRegistries(runDirectory);
    rmSync(runDirectory, { recursive: true, force: true });
  };
}

function killLeftoverRegistries(runDirectory: string): void {
  for (const name of readdirSync(runDirectory)) {
    if (!name.startsWith("registry-") || !name.endsWith(".json")) continue;
    let record: RegistryRecord;
    try {
      record = JSON.parse(readFileSync(path.join(runDirectory, name), "utf8")) as RegistryRecord;
    } catch {
      continue;
    }
    let commandLine = "";
    try {
      commandLine = readFileSync(`/proc/${record.pid}/cmdline`, "utf8");
    } catch {
      // The process is gone.
    }
    if (commandLine.includes(record.configPath)) {
      try {
        process.kill(record.pid, "SIGKILL");
      } catch {
        // Gone meanwhile.
      }
    }
    rmSync(record.tempDir, { recursive: true, force: true });
  }
}
