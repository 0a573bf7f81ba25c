import { generateKeyPairSync, sign as cryptoSign } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { captureIO } from "../../../test/support/cli.js";
import { verifyCosignSignature, type VerifierLocation } from "../../../test/support/cosign-verifier.js";
import {
  makeImage,
  makeIndex,
  sha256Digest,
  writeOciLayoutDirectly,
} from "../../../test/support/test-images.js";
import { runCli } from "../main.js";

/** `promoter verify` (and `--repair`) over OCI layouts, judged by the independent verifier. */

let dir: string;
const amd64 = makeImage({
  layers: 1,
  layerSize: 128,
  mediaTypes: "oci",
  seed: "v-amd64",
  platform: { architecture: "amd64", os: "linux" },
});
const arm64 = makeImage({
  layers: 1,
  layerSize: 128,
  mediaTypes: "oci",
  seed: "v-arm64",
  platform: { architecture: "arm64", os: "linux" },
});
const multi = makeIndex([amd64, arm64], { mediaType: "oci" });
const MIRRORS = ["mirror-a", "mirror-b", "mirror-c"];
const IDENTITY = "oci:mirror-a/app";
const key = generateKeyPairSync("ec", { namedCurve: "P-256" });
const publicPem = key.publicKey.export({ type: "spki", format: "pem" }).toString();
const other = generateKeyPairSync("ec", { namedCurve: "P-256" });

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "verify-"));
  await writeFile(
    path.join(dir, "release.key"),
    key.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  );
  await writeFile(path.join(dir, "release.pub"), publicPem);
  await writeOciLayoutDirectly(path.join(dir, "staging", "app"), [{ content: multi, tag: "v1" }]);
  await writeFile(
    path.join(dir, "promoter.yaml"),
    `registries:\n- name: oci:staging\n  src: true\n${MIRRORS.map((m) => `- name: oci:${m}\n`).join("")}images:\n- name: app\n  dmap:\n    "${multi.digest}": ["v1"]\n`,
  );
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(...args: string[]) {
  const capture = captureIO({ cwd: dir });
  const status = await runCli(args, capture.io);
  return { status, out: capture.out(), err: capture.err() };
}

/** `promoter promote --manifest promoter.yaml ...args`. */
function promote(...args: string[]) {
  return run("promote", "--manifest", "promoter.yaml", ...args);
}

/** `promoter verify --manifest promoter.yaml --public-key release.pub ...args`. */
function verify(...args: string[]) {
  return run("verify", "--manifest", "promoter.yaml", "--public-key", "release.pub", ...args);
}

function at(mirror: string): VerifierLocation {
  return { kind: "layout", directory: path.join(dir, mirror, "app") };
}

/** Removes a tag from a layout's index.json (a signature lost at one mirror). */
async function dropTag(mirror: string, tag: string): Promise<void> {
  const file = path.join(dir, mirror, "app", "index.json");
  const index = JSON.parse(await readFile(file, "utf8")) as {
    manifests: { annotations?: Record<string, string> }[];
  };
  index.manifests = index.manifests.filter(
    (entry) => entry.annotations?.["org.opencontainers.image.ref.name"] !== tag,
  );
  await writeFile(file, JSON.stringify(index));
}

/** Replaces a mirror's `.sig` with one signed by another key (written with plain fs). */
async function foreignSignature(mirror: string, digest: string): Promise<void> {
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": IDENTITY },
        image: { "docker-manifest-digest": digest },
        type: "cosign container image signature",
      },
      optional: null,
    }),
  );
  const config = Buffer.from("{}");
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        size: 2,
        digest: sha256Digest(config),
      },
      layers: [
        {
          mediaType: "application/vnd.dev.cosign.simplesigning.v1+json",
          size: payload.length,
          digest: sha256Digest(payload),
          annotations: {
            "dev.cosignproject.cosign/signature": cryptoSign("sha256", payload, other.privateKey).toString(
              "base64",
            ),
          },
        },
      ],
    }),
  );
  const layout = path.join(dir, mirror, "app");
  for (const bytes of [payload, config, manifest]) {
    await writeFile(path.join(layout, "blobs", "sha256", sha256Digest(bytes).slice(7)), bytes);
  }
  const tag = `${digest.replace(":", "-")}.sig`;
  await dropTag(mirror, tag);
  const file = path.join(layout, "index.json");
  const index = JSON.parse(await readFile(file, "utf8")) as { manifests: unknown[] };
  index.manifests.push({
    mediaType: "application/vnd.oci.image.manifest.v1+json",
    digest: sha256Digest(manifest),
    size: manifest.length,
    annotations: { "org.opencontainers.image.ref.name": tag },
  });
  await writeFile(file, JSON.stringify(index));
}

describe("promoter verify", () => {
  it("passes when every mirror is signed, lists missing and invalid ones, and repairs them", async () => {
    expect((await promote("--confirm", "--quiet", "--sign-key", "release.key")).status).toBe(0);
    const ok = await verify();
    expect(ok.status, ok.err + ok.out).toBe(0);
    expect(ok.out).toMatch(/9 signatures checked: 9 valid, 0 missing, 0 invalid/);

    await dropTag("mirror-b", `${multi.digest.replace(":", "-")}.sig`);
    await foreignSignature("mirror-c", amd64.digest);
    const broken = await verify();
    expect(broken.status).toBe(1);
    expect(broken.out).toMatch(/7 valid, 1 missing, 1 invalid/);
    expect(broken.out).toMatch(
      /missing +oci:.*mirror-b\/app +app +sha256:.{12}… +no signature \(sha256-.*\.sig is absent\)/,
    );
    expect(broken.out).toMatch(
      /invalid +oci:.*mirror-c\/app +app \(image of index\) +sha256:.* +layer sha256:.*: the signature does not verify with the public key/,
    );

    const json = await verify("--output", "json");
    const document = JSON.parse(json.out) as {
      schema: string;
      summary: Record<string, number>;
      results: { status: string }[];
    };
    expect(document.schema).toBe("image-promoter/verify");
    expect(document.summary).toMatchObject({ valid: 7, missing: 1, invalid: 1 });

    const dry = await verify("--repair");
    expect(dry.status).toBe(1);
    expect(dry.out).toMatch(/Repair plan \(dry run/);
    // Issue 17 item 8: no empty parentheses without a key; sections after a blank line.
    expect(dry.out).toMatch(
      /\n\nRepair plan \(dry run: add --confirm to write\)\n\nSignatures and attachments\n\n/,
    );
    expect(dry.out).not.toContain("()");
    expect(dry.err).not.toMatch(/needs a key/);
    expect((await verify("--repair", "--dry-run")).out).toBe(dry.out);
    expect(dry.out).toMatch(/copy signature \(\.sig\) -> 1 destination: oci:mirror-b/);
    expect(
      (
        await verifyCosignSignature(at("mirror-b"), multi.digest, {
          publicKeyPem: publicPem,
          identity: IDENTITY,
        })
      ).ok,
    ).toBe(false);

    const fixed = await verify("--repair", "--confirm");
    expect(fixed.status, fixed.out + fixed.err).toBe(0);
    expect(fixed.out).toMatch(/9 valid, 0 missing, 0 invalid/);
    for (const digest of [multi.digest, amd64.digest, arm64.digest]) {
      const manifests = new Set<string | undefined>();
      for (const mirror of MIRRORS) {
        const check = await verifyCosignSignature(at(mirror), digest, {
          publicKeyPem: publicPem,
          identity: IDENTITY,
        });
        expect(check.ok, `${mirror} ${digest}: ${check.reason ?? ""}`).toBe(true);
        manifests.add(check.manifestDigest);
      }
      expect(manifests.size, digest).toBe(1);
    }
    // The other key's signature was kept next to ours (merged, not dropped).
    const merged = await verifyCosignSignature(at("mirror-a"), amd64.digest, {
      publicKeyPem: publicPem,
      identity: IDENTITY,
    });
    expect(merged.layers).toHaveLength(2);
  });

  it("signs with --repair --sign-key where no signature exists", async () => {
    expect((await promote("--confirm", "--quiet")).status).toBe(0);
    const missing = await verify();
    expect(missing.status).toBe(1);
    expect(missing.out).toMatch(/0 valid, 9 missing/);
    const copyOnly = await verify("--repair", "--confirm");
    expect(copyOnly.status).toBe(1);
    // Issue 17 item 8: not only a table; it says what is needed.
    const needsKey =
      /promoter verify: 3 digests \(sha256:\S+…, sha256:\S+…, sha256:\S+…\) have no valid signature at any destination to copy: --repair needs a key to sign them \(--sign-key FILE, or --keyless/;
    expect(copyOnly.err).toMatch(needsKey);
    expect((await verify("--repair")).err).toMatch(needsKey);
    expect(missing.err).not.toMatch(needsKey);
    const signed = await verify("--repair", "--confirm", "--sign-key", "release.key");
    expect(signed.status, signed.out + signed.err).toBe(0);
    expect(signed.out).toMatch(/signed signature \(3 manifests\) -> 3 destinations/);
    expect((await verify()).status).toBe(0);
  });

  it("checks the configured identity and refuses bad usage", async () => {
    expect(
      (
        await promote(
          "--confirm",
          "--quiet",
          "--sign-key",
          "release.key",
          "--sign-identity",
          "registry.example.io",
        )
      ).status,
    ).toBe(0);
    expect((await verify("--sign-identity", "registry.example.io")).status).toBe(0);
    const wrong = await verify();
    expect(wrong.status).toBe(1);
    expect(wrong.out).toMatch(/names "registry\.example\.io\/app", not "oci:mirror-a\/app"/);
    expect((await run("verify", "--manifest", "promoter.yaml")).status).toBe(2);
    expect((await verify("--confirm")).status).toBe(2);
    expect((await run("verify", "--manifest", "promoter.yaml", "--public-key", "release.key")).err).toMatch(
      /holds a private key/,
    );
  });
});
