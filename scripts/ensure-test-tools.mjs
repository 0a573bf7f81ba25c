#!/usr/bin/env node
// Makes sure the programs the test suite drives are installed: Debian's docker-registry (the CNCF
// distribution registry), skopeo (the independent judge of what we write), podman, umoci and
// oci-image-tool (the other readers of the OCI layouts we write), openssl (certificates
// for the token-auth registry), git (the pre-merge check tests) and htpasswd from apache2-utils
// (bcrypt password files: distribution's htpasswd auth accepts only bcrypt) and chromium (the
// browser the status page's tests drive with playwright-core, which downloads none). Installs them with
// apt-get when missing and running as root; otherwise stops with a message naming the packages.
import { execFileSync, spawnSync } from "node:child_process";

const needed = [
  { program: "docker-registry", pkg: "docker-registry" },
  { program: "skopeo", pkg: "skopeo" },
  { program: "podman", pkg: "podman" },
  { program: "umoci", pkg: "umoci" },
  { program: "oci-image-tool", pkg: "oci-image-tool" },
  { program: "openssl", pkg: "openssl" },
  { program: "git", pkg: "git" },
  { program: "htpasswd", pkg: "apache2-utils" },
  { program: "chromium", pkg: "chromium" },
];

function onPath(program) {
  return spawnSync("sh", ["-c", `command -v ${program}`], { stdio: "ignore" }).status === 0;
}

const missing = needed.filter(({ program }) => !onPath(program));
if (missing.length === 0) process.exit(0);

const packages = [...new Set(missing.map(({ pkg }) => pkg))];
const isRoot = typeof process.getuid === "function" && process.getuid() === 0;
if (!isRoot || !onPath("apt-get")) {
  console.error(
    `The tests need these Debian packages: ${packages.join(" ")}.\n` +
      `Install them with: sudo apt-get install -y ${packages.join(" ")}`,
  );
  process.exit(1);
}
console.error(`Installing test tools with apt-get: ${packages.join(" ")}`);
const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
execFileSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
execFileSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...packages], {
  stdio: "inherit",
  env,
});
// Debian starts the packaged registry as a service on :5000; the tests start their own instances.
spawnSync("sh", ["-c", "command -v service >/dev/null && service docker-registry stop"], { stdio: "ignore" });

const stillMissing = needed.filter(({ program }) => !onPath(program));
if (stillMissing.length > 0) {
  console.error(`Still missing after apt-get: ${stillMissing.map(({ program }) => program).join(", ")}`);
  process.exit(1);
}
