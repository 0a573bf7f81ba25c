import { IMAGE_MANIFEST_MEDIA_TYPES, type Descriptor, type ImageIndex } from "../oci/index.js";
import type { Digest } from "../reference/index.js";

/**
 * What gets signed for a promoted digest: the digest itself and, for an index, each child that
 * is a runnable image. Children that are artifacts (build attestations, SBOMs stored as index
 * entries) are skipped with a note: signing them as images would claim something untrue, and
 * failing the promotion for them after the copy would help no one.
 */

/** BuildKit marks attestation manifests in an index with this annotation. */
const DOCKER_REFERENCE_TYPE = "vnd.docker.reference.type";

export interface SignatureSubject {
  readonly digest: Digest;
  readonly role: "root" | "child";
  /**
   * What the index says about it (media type, size, platform); for the root, what the registry
   * said, when it was read (the bundle layout needs it for `subject`).
   */
  readonly descriptor?: Descriptor;
  /** Whether it is signed (images, and the root whatever it is). */
  readonly sign: boolean;
  /** Why a child is not signed. */
  readonly note?: string;
}

export function platformText(descriptor: Descriptor): string | undefined {
  const platform = descriptor.platform;
  if (!platform) return undefined;
  return [platform.os, platform.architecture, platform.variant].filter((part) => part).join("/");
}

/** Why an index entry is not an image, or undefined when it is one. */
export function notAnImageReason(descriptor: Descriptor): string | undefined {
  if (!IMAGE_MANIFEST_MEDIA_TYPES.has(descriptor.mediaType)) {
    return `${descriptor.mediaType} is not an image manifest`;
  }
  if (descriptor.artifactType !== undefined) return `an artifact (${descriptor.artifactType})`;
  const referenceType = descriptor.annotations?.[DOCKER_REFERENCE_TYPE];
  if (referenceType !== undefined) return `a ${referenceType}, not an image`;
  if (descriptor.platform?.os === "unknown" || descriptor.platform?.architecture === "unknown") {
    return "platform unknown/unknown: an artifact, not an image";
  }
  return undefined;
}

/**
 * The subjects of a promoted digest: the root, then (when `index` is given and `signChildren`)
 * its children in index order, each once.
 */
export function signatureSubjects(
  root: Digest,
  rootDescriptor: Descriptor | undefined,
  index: ImageIndex | undefined,
  signChildren: boolean,
): SignatureSubject[] {
  const subjects: SignatureSubject[] = [
    { digest: root, role: "root", ...(rootDescriptor ? { descriptor: rootDescriptor } : {}), sign: true },
  ];
  if (!index) return subjects;
  const seen = new Set<Digest>([root]);
  for (const child of index.manifests) {
    if (seen.has(child.digest)) continue;
    seen.add(child.digest);
    const reason = notAnImageReason(child);
    if (reason !== undefined) {
      const platform = platformText(child);
      subjects.push({
        digest: child.digest,
        role: "child",
        descriptor: child,
        sign: false,
        note: `child ${child.digest}${platform ? ` (${platform})` : ""} is ${reason}; not signed`,
      });
    } else {
      subjects.push({ digest: child.digest, role: "child", descriptor: child, sign: signChildren });
    }
  }
  return subjects;
}
