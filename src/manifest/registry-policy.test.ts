import { describe, expect, it } from "vitest";
import { parseRegistryLocation, type RegistryLocation } from "../reference/index.js";
import { parseThinManifest } from "./parse.js";
import {
  applyRegistryPolicy,
  parseAllowedRegistry,
  parseRegistryPolicyFile,
  registryRefusal,
  type AllowedRegistry,
  type RegistryPolicy,
} from "./registry-policy.js";

function allowed(...names: string[]): AllowedRegistry[] {
  return names.map((name) => {
    const parsed = parseAllowedRegistry(name, "/work");
    if ("problem" in parsed) throw new Error(parsed.problem);
    return parsed.allowed;
  });
}

const policy = (extra: Partial<RegistryPolicy> = {}): RegistryPolicy => ({
  treeRoot: "/tree",
  operatorAllowed: [],
  ...extra,
});

const remote = (name: string): RegistryLocation => parseRegistryLocation(name);
const oci = (directory: string): RegistryLocation => ({
  kind: "oci-layout",
  directory,
  name: `oci:${directory}`,
});

describe("registryRefusal", () => {
  it("allows public registries and refuses internal ones unless the operator allows them", () => {
    expect(registryRefusal(remote("gcr.io/k8s-staging-foo"), policy())).toBeUndefined();
    expect(registryRefusal(remote("127.0.0.1:5000/prod"), policy())).toMatch(
      /^127\.0\.0\.1:5000 is a loopback address/,
    );
    expect(registryRefusal(remote("[::ffff:127.0.0.1]/prod"), policy())).toMatch(
      /IPv4-mapped form of 127\.0\.0\.1/,
    );
    expect(registryRefusal(remote("10.0.0.1/prod"), policy())).toMatch(/private address/);
    expect(registryRefusal(remote("metadata:80/x"), policy())).toMatch(/single-label name/);
    const operator = policy({ operatorAllowed: allowed("127.0.0.1:5000", "[::1]", "localhost/team") });
    expect(registryRefusal(remote("127.0.0.1:5000/prod"), operator)).toBeUndefined();
    expect(registryRefusal(remote("127.0.0.1:5001/prod"), operator)).toMatch(/loopback/);
    expect(registryRefusal(remote("[::1]:9/prod"), operator)).toBeUndefined();
    expect(registryRefusal(remote("localhost:5000/team/app"), operator)).toBeUndefined();
    expect(registryRefusal(remote("localhost:5000/other"), operator)).toMatch(/is localhost/);
  });

  it("with an allow-list, allows what it lists by path components and nothing else", () => {
    const listed = policy({
      treeAllowList: {
        file: "/tree/manifests/registry-policy.yaml",
        entries: allowed("gcr.io/k8s-staging-foo", "registry.example.com:5000"),
      },
    });
    expect(registryRefusal(remote("gcr.io/k8s-staging-foo"), listed)).toBeUndefined();
    expect(registryRefusal(remote("gcr.io/k8s-staging-foo/sub"), listed)).toBeUndefined();
    expect(registryRefusal(remote("gcr.io/k8s-staging-foobar"), listed)).toBe(
      "it is not in the registry policy manifests/registry-policy.yaml",
    );
    expect(registryRefusal(remote("gcr.io"), listed)).toMatch(/not in the registry policy/);
    expect(registryRefusal(remote("registry.example.com:5000/any/path"), listed)).toBeUndefined();
    expect(registryRefusal(remote("registry.example.com/any"), listed)).toMatch(/not in the registry policy/);
  });

  it("keeps oci: layouts inside the tree, after symbolic links, unless the operator allows a directory", () => {
    expect(registryRefusal(oci("/tree/prod"), policy())).toBeUndefined();
    expect(registryRefusal(oci("/tree"), policy())).toBeUndefined();
    expect(registryRefusal(oci("/etc"), policy())).toMatch(
      /^the OCI layout directory \/etc is outside the manifest tree \/tree/,
    );
    expect(registryRefusal(oci("/tree-other"), policy())).toMatch(/outside the manifest tree/);
    const linked = policy({ realDirectory: (directory) => directory.replace("/tree/escape", "/etc") });
    expect(registryRefusal(oci("/tree/escape/x"), linked)).toMatch(/\/tree\/escape\/x \(really \/etc\/x\)/);
    const operator = policy({ operatorAllowed: allowed("oci:/srv/layouts") });
    expect(registryRefusal(oci("/srv/layouts/prod"), operator)).toBeUndefined();
    expect(registryRefusal(oci("/srv/other"), operator)).toMatch(/outside/);
  });
});

describe("parseRegistryPolicyFile", () => {
  it("reads the listed registries and reports every bad entry at its position", () => {
    const { allowList, findings } = parseRegistryPolicyFile({
      file: "/tree/manifests/registry-policy.yaml",
      text: "registries:\n- gcr.io/k8s-staging-foo\n- 127.0.0.1:5000\n- oci:layouts\n- GCR.io\n- us-docker.pkg.dev/prod\n",
    });
    expect(allowList.entries.map((entry) => entry.name)).toEqual([
      "gcr.io/k8s-staging-foo",
      "us-docker.pkg.dev/prod",
    ]);
    expect(
      findings.map((finding) => `${finding.position.line}:${finding.position.column} ${finding.rule}`),
    ).toEqual(["3:3 invalid-registry-policy", "4:3 invalid-registry-policy", "5:3 invalid-registry-policy"]);
    expect(findings[0]?.message).toMatch(/only the operator can allow such a registry/);
  });

  it("refuses other shapes and keys", () => {
    const { allowList, findings } = parseRegistryPolicyFile({
      file: "/p.yaml",
      text: "registry:\n- gcr.io\n",
    });
    expect(allowList.entries).toEqual([]);
    expect(findings.map((finding) => finding.rule)).toEqual(["unknown-key"]);
    expect(parseRegistryPolicyFile({ file: "/p.yaml", text: "" }).findings).toEqual([]);
  });
});

describe("applyRegistryPolicy", () => {
  it("leaves refused registries without a location and reports each at its name", () => {
    const parsed = parseThinManifest(
      "p",
      {
        file: "/tree/manifests/p/promoter-manifest.yaml",
        text: "registries:\n- name: 127.0.0.1:5000/staging\n  src: true\n- name: gcr.io/prod\n",
      },
      { file: "/tree/images/p/images.yaml", text: "[]\n" },
    );
    const manifest = parsed.manifest!;
    const { manifests, findings } = applyRegistryPolicy([manifest], policy());
    expect(manifests[0]?.registries.map((registry) => registry.location?.name)).toEqual([
      undefined,
      "gcr.io/prod",
    ]);
    expect(findings).toMatchObject([
      { rule: "registry-not-allowed", position: { line: 2, column: 9 }, severity: "error" },
    ]);
    const untouched = applyRegistryPolicy([manifest], policy({ operatorAllowed: allowed("127.0.0.1") }));
    expect(untouched.manifests[0]).toBe(manifest);
    expect(untouched.findings).toEqual([]);
  });
});
