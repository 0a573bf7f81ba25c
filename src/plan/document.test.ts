import { RepositoryKeyCache } from "../reference/index.js";
import { describe, expect, it } from "vitest";
import { createManifestSet, parseThinManifest, type ManifestSet } from "../manifest/index.js";
import { type EdgeDecision, type PlannedEdge } from "./decide.js";
import {
  edgesFromDocument,
  jsonEdge,
  PLAN_DOCUMENT_SCHEMA,
  PLAN_DOCUMENT_VERSION,
  PlanBinding,
  PlanDocumentError,
  type JsonEdge,
} from "./document.js";
import { promotionEdges, type PromotionEdge } from "./edge.js";

const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;

function setOf(images: string): ManifestSet {
  const parsed = parseThinManifest(
    "foo",
    {
      file: "/t/manifests/foo/promoter-manifest.yaml",
      text: `registries:
- name: gcr.io/staging
  src: true
- name: us.gcr.io/prod
- name: oci:/srv/mirror
`,
    },
    { file: "/t/images/foo/images.yaml", text: images },
  );
  return createManifestSet(parsed.manifest ? [parsed.manifest] : [], parsed.findings);
}

const SET = setOf(`- name: app
  dmap:
    "${D1}": ["v1", "v2"]
    "${D2}": []
`);

const COPY: EdgeDecision = { kind: "copy" };

function planOf(edges: Iterable<PromotionEdge>, decision: EdgeDecision = COPY): JsonEdge[] {
  const keys = new RepositoryKeyCache();
  return [...edges].map((edge) => jsonEdge({ edge, decision }, keys, (position) => position));
}

function documentOf(edges: readonly unknown[]): unknown {
  return JSON.parse(
    JSON.stringify({ schema: PLAN_DOCUMENT_SCHEMA, version: PLAN_DOCUMENT_VERSION, kind: "plan", edges }),
  ) as unknown;
}

/** Binds a plan document to SET, as `promote --from-plan` does; returns what was selected. */
function bind(edges: readonly unknown[]): { binding: PlanBinding; selected: PromotionEdge[] } {
  const binding = new PlanBinding(edgesFromDocument(documentOf(edges)));
  const selected = [...promotionEdges(SET)].filter(binding.includes);
  return { binding, selected };
}

describe("PlanBinding", () => {
  it("selects exactly the manifests' edges an honest plan names, in any order, and nothing is undeclared", () => {
    const plan = planOf(promotionEdges(SET));
    expect(plan).toHaveLength(6);
    const { binding, selected } = bind([...plan].reverse());
    expect(selected).toHaveLength(6);
    expect(binding.undeclared()).toEqual([]);
  });

  it("selects a subset (a shard) without complaint", () => {
    const plan = planOf(promotionEdges(SET)).filter((edge) => edge.destination.startsWith("oci:"));
    const { binding, selected } = bind(plan);
    expect(selected.map((edge) => edge.destination.kind)).toEqual(["oci-layout", "oci-layout", "oci-layout"]);
    expect(binding.undeclared()).toEqual([]);
  });

  const tamperings: [string, (edge: Record<string, unknown>) => void][] = [
    ["project", (edge) => (edge.project = "bar")],
    ["image", (edge) => (edge.image = "other")],
    ["digest", (edge) => (edge.digest = D2)],
    ["tag", (edge) => (edge.tag = "v9")],
    ["a tag removed", (edge) => (edge.tag = null)],
    ["source display name", (edge) => (edge.source = "gcr.io/staging/other")],
    ["destination display name", (edge) => (edge.destination = "us.gcr.io/prod/other")],
    ["source registry name", (edge) => (edge.sourceRegistry = "gcr.io/other")],
    ["destination registry name", (edge) => (edge.destinationRegistry = "registry.k8s.io")],
    [
      "source location",
      (edge) => (edge.sourceLocation = { kind: "remote", host: "gcr.io", repository: "staging/other" }),
    ],
    [
      "destination host",
      (edge) => (edge.destinationLocation = { kind: "remote", host: "evil.example", repository: "prod/app" }),
    ],
    [
      "destination layout directory",
      (edge) => (edge.destinationLocation = { kind: "oci-layout", directory: "/etc", repository: "app" }),
    ],
  ];
  for (const [field, tamper] of tamperings) {
    it(`refuses an edge whose ${field} the manifests do not produce, naming it`, () => {
      const plan: Record<string, unknown>[] = planOf(promotionEdges(SET)).map((edge) => ({ ...edge }));
      tamper(plan[0]!);
      const { binding, selected } = bind(plan);
      expect(selected).toHaveLength(5);
      const undeclared = binding.undeclared();
      expect(undeclared).toHaveLength(1);
      expect(undeclared[0]).toMatch(
        /^edges\[0\]: .+ -> .+@sha256:[0-9a-f]{64}: not declared by the manifests$/,
      );
    });
  }

  it("keeps duplicate edges of the plan as one", () => {
    const plan = planOf(promotionEdges(SET));
    const { binding, selected } = bind([...plan, plan[0]]);
    expect(selected).toHaveLength(6);
    expect(binding.undeclared()).toEqual([]);
  });

  it("reports drift by edge, not by position, and never prints a planned decision it does not know", () => {
    const plan: Record<string, unknown>[] = planOf(promotionEdges(SET)).map((edge) => ({ ...edge }));
    plan[1]!.decision = "\u001b[2Jcopy";
    const { binding, selected } = bind([...plan].reverse());
    const fresh: PlannedEdge[] = selected.map((edge) => ({ edge, decision: COPY }));
    const drift = binding.drift(fresh);
    expect(drift).toEqual([`oci:/srv/mirror/app:v1@${D1}: planned something else, now copy`]);
  });
});

describe("edgesFromDocument", () => {
  it("refuses a layout directory with control characters (it would rewrite the lines that name it)", () => {
    const [edge] = planOf(promotionEdges(SET));
    const tampered = {
      ...edge,
      destinationLocation: { kind: "oci-layout", directory: "/srv/x\n  ok", repository: "app" },
    };
    expect(() => edgesFromDocument(documentOf([tampered]))).toThrow(PlanDocumentError);
  });

  it("refuses an edge without the names it is shown with", () => {
    const [edge] = planOf(promotionEdges(SET));
    expect(() => edgesFromDocument(documentOf([{ ...edge, destinationRegistry: 7 }]))).toThrow(
      /edges\[0\]: invalid destinationRegistry/,
    );
  });
});
