import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import * as path from "node:path";
import { loadManifests } from "../../src/manifest-files/index.js";
import { promotionEdges } from "../../src/plan/index.js";
import { selfSignedCertificate } from "./scripted-registry.js";
import { SimulatedRegistry, sha256Digest, type SimulatedManifest } from "./simulated-registry.js";

/**
 * The real registry.k8s.io promotion tree (../shared/k8sio), already promoted, against simulated
 * registries on 127.0.0.1 (simulated-registry.ts): one per registry host of the tree (gcr.io for
 * staging and the 22 Artifact Registry regions), each holding exactly what the tree's edges put
 * there. The tree is copied with every host replaced by its simulated registry's address and
 * every digest by the digest of a small OCI manifest standing for it, so the registries can
 * serve real bytes that hash to what the manifests name, and a copy really copies.
 */

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_BYTES = Buffer.from("{}");
const CONFIG_DIGEST = sha256Digest(CONFIG_BYTES);

export interface SimulationOptions {
  /** Milliseconds every registry waits before each answer. */
  readonly latencyMs: number;
  /** Registries answer tag listings with Google's `manifest` map. */
  readonly manifestMap: boolean;
  /** Of the destination (repository, digest) pairs, the share left out (0 to 1). */
  readonly missing?: number;
  /** Only these projects (folder names under manifests/ and images/); default all. */
  readonly projects?: readonly string[];
  /**
   * Serve HTTPS, with HTTP/2 to clients that offer it, as Google's registries do (default
   * false: plain HTTP/1.1, where every HEAD costs the client a new connection).
   */
  readonly tls?: boolean;
}

export interface Simulation {
  /** The rewritten thin tree. */
  readonly tree: string;
  /** Real host -> its simulated registry. */
  readonly registries: ReadonlyMap<string, SimulatedRegistry>;
  readonly edges: number;
  readonly digests: number;
  /** Destination (repository, digest) pairs left out. */
  readonly missingPairs: number;
  /** The promoter's flags to reach the registries (`--google-registry`, and for TLS the CA). */
  readonly flags: readonly string[];
  readonly stop: () => Promise<void>;
}

/** The stand-in manifest of a real digest: tiny, valid, and its own digest. */
export function standInManifest(original: string): SimulatedManifest & { digest: string } {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: CONFIG_DIGEST, size: 2 },
      layers: [],
      annotations: { "dev.image-promoter.bench.original": original },
    }),
  );
  return { mediaType: OCI_MANIFEST, bytes, digest: sha256Digest(bytes) };
}

function hostOf(registryName: string): string {
  return registryName.split("/")[0] ?? registryName;
}

/** A stable number in [0, 1) for a text: which pairs are left out does not change between runs. */
function fraction(text: string): number {
  return createHash("sha256").update(text).digest().readUInt32BE(0) / 2 ** 32;
}

export async function startSimulation(
  source: string,
  into: string,
  options: SimulationOptions,
): Promise<Simulation> {
  const projects =
    options.projects ?? (await readdir(path.join(source, "manifests"))).filter((name) => !name.includes("."));
  // Hosts, and the manifests' text, first.
  const registryTexts = new Map<string, string>();
  const imageTexts = new Map<string, string>();
  const hosts = new Set<string>();
  for (const project of projects) {
    const text = await readFile(path.join(source, "manifests", project, "promoter-manifest.yaml"), "utf8");
    registryTexts.set(project, text);
    for (const match of text.matchAll(/name:\s*(\S+)/g)) hosts.add(hostOf(match[1] ?? ""));
    try {
      imageTexts.set(project, await readFile(path.join(source, "images", project, "images.yaml"), "utf8"));
    } catch {
      // A project with no images yet.
    }
  }
  const tls = options.tls === true ? await selfSignedCertificate([], ["127.0.0.1"]) : undefined;
  const registries = new Map<string, SimulatedRegistry>();
  for (const host of [...hosts].sort()) {
    registries.set(
      host,
      await SimulatedRegistry.start({
        latencyMs: options.latencyMs,
        manifestMap: options.manifestMap,
        ...(tls ? { tls } : {}),
      }),
    );
  }
  const flags: string[] = [];
  for (const registry of registries.values()) {
    flags.push("--google-registry", registry.host);
    if (tls) flags.push("--https-registry", registry.host);
  }
  if (tls) {
    const caFile = path.join(into, "simulated-registries-ca.pem");
    await writeFile(caFile, tls.cert);
    flags.push("--registry-ca", caFile);
  }
  const byDigest = new Map<string, SimulatedManifest>();
  const standIn = (original: string): string => {
    const made = standInManifest(original);
    byDigest.set(made.digest, made);
    return made.digest;
  };
  const replaced = new Map<string, string>();
  for (const project of projects) {
    let registriesText = registryTexts.get(project) ?? "";
    for (const [host, registry] of registries)
      registriesText = registriesText.split(`${host}/`).join(`${registry.host}/`);
    await mkdir(path.join(into, "manifests", project), { recursive: true });
    await writeFile(path.join(into, "manifests", project, "promoter-manifest.yaml"), registriesText);
    const images = imageTexts.get(project);
    if (images === undefined) continue;
    const rewritten = images.replace(/sha256:[0-9a-f]{64}/g, (original) => {
      let digest = replaced.get(original);
      if (digest === undefined) replaced.set(original, (digest = standIn(original)));
      return digest;
    });
    await mkdir(path.join(into, "images", project), { recursive: true });
    await writeFile(path.join(into, "images", project, "images.yaml"), rewritten);
  }

  // What the tree's edges put where: staging holds every digest with its tags, each destination
  // what it should (less the pairs left out).
  const set = await loadManifests({ thinManifestDir: into });
  let edges = 0;
  let missingPairs = 0;
  const left = new Set<string>();
  const byHost = new Map<string, SimulatedRegistry>();
  for (const registry of registries.values()) byHost.set(registry.host, registry);
  for (const edge of promotionEdges(set)) {
    edges++;
    const manifest = byDigest.get(edge.digest);
    const staging = edge.source.kind === "remote" ? byHost.get(edge.source.host) : undefined;
    const destination = edge.destination.kind === "remote" ? byHost.get(edge.destination.host) : undefined;
    if (
      !manifest ||
      !staging ||
      !destination ||
      edge.source.kind !== "remote" ||
      edge.destination.kind !== "remote"
    ) {
      throw new Error(`simulation: an edge outside the simulated registries (${edge.digest})`);
    }
    const from = staging.repository(edge.source.repository);
    from.manifests.set(edge.digest, manifest);
    from.blobs.set(CONFIG_DIGEST, CONFIG_BYTES);
    if (edge.tag !== undefined) from.tags.set(edge.tag, edge.digest);
    const pair = `${edge.destination.host}/${edge.destination.repository}@${edge.digest}`;
    if (left.has(pair)) continue;
    if (options.missing !== undefined && fraction(pair) < options.missing) {
      left.add(pair);
      missingPairs++;
      continue;
    }
    const to = destination.repository(edge.destination.repository);
    to.manifests.set(edge.digest, manifest);
    to.blobs.set(CONFIG_DIGEST, CONFIG_BYTES);
    if (edge.tag !== undefined) to.tags.set(edge.tag, edge.digest);
  }
  for (const registry of registries.values()) registry.resetCounts();
  return {
    tree: into,
    registries,
    edges,
    digests: byDigest.size,
    missingPairs,
    flags,
    stop: async () => {
      await Promise.all([...registries.values()].map((registry) => registry.stop()));
    },
  };
}

/**
 * A change adding one image to `project`'s images.yaml: the image is pushed to staging (the
 * project's source registry), and the file gets its entry. Returns the digest.
 */
export async function addImageToStaging(
  simulation: Simulation,
  project: string,
  name: string,
  tag: string,
): Promise<string> {
  const registriesText = await readFile(
    path.join(simulation.tree, "manifests", project, "promoter-manifest.yaml"),
    "utf8",
  );
  const sourceLine = /-\s*name:\s*(\S+)\s*\n\s*src:\s*true/.exec(registriesText);
  const sourceName = sourceLine?.[1];
  if (sourceName === undefined) throw new Error(`simulation: no source registry in ${project}`);
  const host = hostOf(sourceName);
  const staging = [...simulation.registries.values()].find((registry) => registry.host === host);
  if (!staging) throw new Error(`simulation: ${host} is not simulated`);
  const made = standInManifest(`new:${project}/${name}:${tag}`);
  const repository = staging.repository(`${sourceName.slice(host.length + 1)}/${name}`);
  repository.manifests.set(made.digest, made);
  repository.blobs.set(CONFIG_DIGEST, CONFIG_BYTES);
  repository.tags.set(tag, made.digest);
  const file = path.join(simulation.tree, "images", project, "images.yaml");
  const text = await readFile(file, "utf8");
  await writeFile(
    file,
    `${text.endsWith("\n") ? text : `${text}\n`}- name: ${name}\n  dmap:\n    "${made.digest}": ["${tag}"]\n`,
  );
  return made.digest;
}

/** Requests all simulated registries answered since their counts were reset. */
export function simulatedRequests(simulation: Simulation): number {
  let total = 0;
  for (const registry of simulation.registries.values()) total += registry.total;
  return total;
}

export function resetSimulatedRequests(simulation: Simulation): void {
  for (const registry of simulation.registries.values()) registry.resetCounts();
}
