/**
 * An independent judge of what a registry holds, on plain `fetch` (none of the project's client
 * code): seeding a registry with test content, checking an expected end state (every tag points
 * at the expected digest, every manifest and blob of the image is there and has the right
 * bytes), and scanning for tags that point at something incomplete. For tests against
 * registries without auth on 127.0.0.1.
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md
 */
import { createHash } from "node:crypto";
import { allBlobs, allManifests, TestMediaType, type TestContent } from "./test-images.js";

const ACCEPT = [
  TestMediaType.ociManifest,
  TestMediaType.ociIndex,
  TestMediaType.dockerManifest,
  TestMediaType.dockerManifestList,
].join(", ");

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

/**
 * Pushes content to `registryUrl` (http://host:port) under `repository`, tagging it with `tags`.
 * `authorization` is sent with every request (HTTP Basic for an htpasswd registry).
 */
export async function seedRegistry(
  registryUrl: string,
  repository: string,
  entries: readonly { content: TestContent; tags: readonly string[] }[],
  authorization?: string,
): Promise<void> {
  const fetch = (url: string | URL, init: RequestInit = {}) =>
    globalThis.fetch(url, {
      ...init,
      headers: { ...(init.headers as Record<string, string>), ...(authorization ? { authorization } : {}) },
    });
  for (const { content, tags } of entries) {
    for (const blob of allBlobs(content)) {
      const head = await fetch(`${registryUrl}/v2/${repository}/blobs/${blob.descriptor.digest}`, {
        method: "HEAD",
      });
      if (head.status === 200) continue;
      // distribution 2.8 ignores a monolithic POST with a body: POST for a session, then PUT.
      const session = await fetch(`${registryUrl}/v2/${repository}/blobs/uploads/`, { method: "POST" });
      await session.arrayBuffer();
      if (session.status !== 202) throw new Error(`upload session: HTTP ${session.status}`);
      const location = new URL(session.headers.get("location") ?? "", registryUrl);
      location.searchParams.set("digest", blob.descriptor.digest);
      const put = await fetch(location, {
        method: "PUT",
        body: blob.bytes,
        headers: { "content-type": "application/octet-stream" },
      });
      await put.arrayBuffer();
      if (put.status !== 201) throw new Error(`blob PUT: HTTP ${put.status}`);
    }
    for (const manifest of allManifests(content)) {
      for (const reference of manifest === content ? [manifest.digest, ...tags] : [manifest.digest]) {
        const put = await fetch(`${registryUrl}/v2/${repository}/manifests/${reference}`, {
          method: "PUT",
          body: manifest.bytes,
          headers: { "content-type": manifest.mediaType },
        });
        await put.arrayBuffer();
        if (put.status !== 201) throw new Error(`manifest PUT ${reference}: HTTP ${put.status}`);
      }
    }
  }
}

export async function listTags(registryUrl: string, repository: string): Promise<string[]> {
  const response = await fetch(`${registryUrl}/v2/${repository}/tags/list`);
  if (response.status === 404) {
    await response.arrayBuffer();
    return [];
  }
  if (response.status !== 200) throw new Error(`tags/list ${repository}: HTTP ${response.status}`);
  const body = (await response.json()) as { tags?: string[] | null };
  return body.tags ?? [];
}

async function getManifest(
  registryUrl: string,
  repository: string,
  reference: string,
): Promise<{ status: number; bytes: Buffer; mediaType: string }> {
  const response = await fetch(`${registryUrl}/v2/${repository}/manifests/${reference}`, {
    headers: { accept: ACCEPT },
  });
  const bytes = Buffer.from(await response.arrayBuffer());
  return { status: response.status, bytes, mediaType: response.headers.get("content-type") ?? "" };
}

async function blobProblem(
  registryUrl: string,
  repository: string,
  digest: string,
): Promise<string | undefined> {
  const response = await fetch(`${registryUrl}/v2/${repository}/blobs/${digest}`);
  if (response.status !== 200) {
    await response.arrayBuffer();
    return `blob ${digest}: HTTP ${response.status}`;
  }
  const bytes = Buffer.from(await response.arrayBuffer());
  return sha256(bytes) === digest ? undefined : `blob ${digest}: wrong bytes`;
}

/**
 * What is wrong with the manifest `reference` and everything below it: missing or wrong
 * manifests, missing or wrong blobs. Empty when the image is complete.
 */
export async function incompleteness(
  registryUrl: string,
  repository: string,
  reference: string,
  expectedDigest?: string,
): Promise<string[]> {
  const manifest = await getManifest(registryUrl, repository, reference);
  if (manifest.status !== 200) return [`${repository}:${reference}: manifest HTTP ${manifest.status}`];
  const digest = sha256(manifest.bytes);
  if (expectedDigest !== undefined && digest !== expectedDigest) {
    return [`${repository}:${reference}: points at ${digest}, expected ${expectedDigest}`];
  }
  if (!reference.startsWith("sha256:") || reference === digest) {
    // fine: a tag, or a digest whose bytes match
  } else {
    return [`${repository}@${reference}: bytes have digest ${digest}`];
  }
  const document = JSON.parse(manifest.bytes.toString("utf8")) as {
    manifests?: { digest: string }[];
    config?: { digest: string };
    layers?: { digest: string }[];
  };
  const problems: string[] = [];
  for (const child of document.manifests ?? []) {
    problems.push(...(await incompleteness(registryUrl, repository, child.digest, child.digest)));
  }
  for (const blob of [...(document.config ? [document.config] : []), ...(document.layers ?? [])]) {
    const problem = await blobProblem(registryUrl, repository, blob.digest);
    if (problem !== undefined) problems.push(`${repository}:${reference}: ${problem}`);
  }
  return problems;
}

/**
 * One pass over `repositories`: every tag must point at a complete image. `complete` remembers
 * the (repository, digest) pairs already found complete, which stay complete while nothing is
 * deleted (promotion never deletes), so a pass only reads each tag's manifest and the images it
 * has not seen before.
 */
export async function scanForIncompleteTags(
  registryUrl: string,
  repositories: readonly string[],
  complete = new Set<string>(),
): Promise<{ problems: string[]; tags: number }> {
  const problems: string[] = [];
  let tags = 0;
  for (const repository of repositories) {
    for (const tag of await listTags(registryUrl, repository)) {
      tags += 1;
      const manifest = await resolveListedTag(registryUrl, repository, tag);
      // Not pullable (yet): nobody can be served an incomplete image through it. The end-state
      // check catches a tag that never resolves.
      if (!manifest) continue;
      if ("problem" in manifest) {
        problems.push(manifest.problem);
        continue;
      }
      const digest = sha256(manifest.bytes);
      const key = `${repository}@${digest}`;
      if (complete.has(key)) continue;
      // Judged by the digest the tag resolved to: reading the tag again could land in the
      // registry's own rewrite of its link file (a 500, see resolveListedTag), which says
      // nothing about the image the tag serves.
      const found = (await incompleteness(registryUrl, repository, digest, digest)).map(
        (problem) => `${repository}:${tag} -> ${problem}`,
      );
      problems.push(...found);
      if (found.length === 0) complete.add(key);
    }
  }
  return { problems, tags };
}

/**
 * The manifest a listed tag resolves to, or undefined while it does not resolve. distribution
 * 2.8 lists a tag as soon as its folder exists, a moment before the link file that makes it
 * resolve is written (404), and its filesystem driver truncates then writes that file in place,
 * so a read in between finds it empty (500: an invalid digest). Both are the registry's own tag
 * write in progress, so the tag is read again a few times; any other answer is a problem.
 */
async function resolveListedTag(
  registryUrl: string,
  repository: string,
  tag: string,
): Promise<{ bytes: Buffer } | { problem: string } | undefined> {
  for (let attempt = 1; ; attempt++) {
    const manifest = await getManifest(registryUrl, repository, tag);
    if (manifest.status === 200) return manifest;
    if (manifest.status !== 404 && manifest.status !== 500) {
      return {
        problem: `${repository}:${tag}: manifest HTTP ${manifest.status}: ${manifest.bytes.toString()}`,
      };
    }
    if (attempt === 5) return undefined;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Checks the end state of one repository: exactly `tags` (tag -> content) are there, each points
 * at its content's digest and the content is complete; `tagless` content is present by digest.
 */
export async function endStateProblems(
  registryUrl: string,
  repository: string,
  tags: Readonly<Record<string, TestContent>>,
  tagless: readonly TestContent[] = [],
): Promise<string[]> {
  const problems: string[] = [];
  const present = (await listTags(registryUrl, repository)).sort();
  const expected = Object.keys(tags).sort();
  if (JSON.stringify(present) !== JSON.stringify(expected)) {
    problems.push(`${repository}: tags ${JSON.stringify(present)}, expected ${JSON.stringify(expected)}`);
  }
  for (const [tag, content] of Object.entries(tags)) {
    problems.push(...(await incompleteness(registryUrl, repository, tag, content.digest)));
  }
  for (const content of tagless) {
    problems.push(...(await incompleteness(registryUrl, repository, content.digest, content.digest)));
  }
  return problems;
}
