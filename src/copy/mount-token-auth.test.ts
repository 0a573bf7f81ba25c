/**
 * Mounts between destination repositories of one registry under token auth (distribution 2.8.2
 * and the test token server): the mount asks for push on the target and pull on the repository
 * it mounts from. With both granted, a blob this run already put in one repository costs the
 * next one a single POST. (A token without pull on the other repository gets a 401 for the mount:
 * registry/remote/distribution-auth.test.ts shows the client takes that as a refusal, and
 * mount-fallback.test.ts that the engine then checks and uploads.)
 * https://github.com/opencontainers/distribution-spec/blob/v1.1.0/spec.md#mounting-a-blob-from-another-repository
 */
import { mkdtemp, rm } from "node:fs/promises";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRegistry, type TestRegistry } from "../../test/support/registry-harness.js";
import { skopeoCopy } from "../../test/support/skopeo.js";
import {
  allBlobs,
  makeImage,
  writeOciLayoutDirectly,
  type TestImage,
} from "../../test/support/test-images.js";
import { parseTag, type RegistryHost, type RepositoryPath } from "../reference/index.js";
import { createStoreProvider, openOnSide } from "../registry/index.js";
import { registryAuthVariable } from "../registry/credentials/sources.js";
import { copyGraphs, type CopyEvent, type CopyOutcome, type CopyTask } from "./index.js";

const PROMOTER_PASSWORD = "promoter-Secret-2718";

let registry: TestRegistry;
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(os.tmpdir(), "mount-token-auth-"));
  registry = await startRegistry({
    auth: "token",
    users: [
      {
        username: "promoter",
        password: PROMOTER_PASSWORD,
        access: [{ name: "prod/*", actions: ["pull", "push"] }],
      },
    ],
  });
});

afterAll(async () => {
  await registry.stop();
  await rm(scratch, { recursive: true, force: true });
});

/** `store` whose manifest checks wait for `gate`: orders two tasks of one run. */
function waitingFor<T extends object>(store: T, gate: Promise<void>): T {
  return new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (property !== "resolve" || typeof value !== "function") return value;
      return async (...args: unknown[]) => {
        await gate;
        return (value as (...args: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

/**
 * Copies `image` from an OCI layout to `first` and, once that is complete, to `second` in the same
 * run; returns the outcomes and the requests each repository cost the registry.
 */
async function copyOneAfterTheOther(
  image: TestImage,
  user: { username: string; password: string },
  first: string,
  second: string,
): Promise<{
  outcomes: CopyOutcome[];
  firstRequests: Record<string, number>;
  secondRequests: Record<string, number>;
}> {
  const layout = path.join(scratch, user.username);
  await writeOciLayoutDirectly(path.join(layout, "staging"), [{ content: image, tag: "v1" }]);
  const provider = createStoreProvider({
    homeDirectory: path.join(scratch, "no-home"),
    env: { [registryAuthVariable(registry.host)]: `${user.username}:${user.password}` },
  });
  try {
    const source = openOnSide(
      provider,
      { kind: "oci-layout", directory: layout, repository: "staging" as RepositoryPath },
      "source",
    );
    const destination = (repository: string) =>
      openOnSide(
        provider,
        { kind: "remote", host: registry.host as RegistryHost, repository: repository as RepositoryPath },
        "destination",
      );
    let firstDone!: () => void;
    const firstComplete = new Promise<void>((resolve) => (firstDone = resolve));
    const task = (id: string, store: CopyTask["destinations"][number]["store"]): CopyTask => ({
      id,
      source,
      digest: image.digest,
      destinations: [{ store, tags: [parseTag("v1")] }],
    });
    const counts = () => ({ ...(provider.requestCounts().get(registry.host)?.byMethod ?? {}) });
    let afterFirst: Record<string, number> = {};
    const outcomes = await copyGraphs(
      [task("first", destination(first)), task("second", waitingFor(destination(second), firstComplete))],
      {
        onEvent: (event: CopyEvent) => {
          if (event.type === "destination-done" && event.taskId === "first") {
            afterFirst = counts();
            firstDone();
          }
        },
      },
    );
    const end = counts();
    const secondRequests = Object.fromEntries(
      Object.entries(end).map(([method, count]) => [method, count - (afterFirst[method] ?? 0)]),
    );
    return { outcomes, firstRequests: afterFirst, secondRequests };
  } finally {
    await provider.close();
  }
}

/** skopeo pulls `repository:v1` whole (checking every digest) with `user`'s credentials. */
async function expectPullable(
  repository: string,
  user: { username: string; password: string },
): Promise<void> {
  const pulled = path.join(scratch, `pulled-${repository.replace("/", "-")}`);
  await skopeoCopy(`docker://${registry.host}/${repository}:v1`, `oci:${pulled}:v1`, { srcCreds: user });
}

describe("mounts between destination repositories with token auth", () => {
  it("mounts with a token that grants pull on the other repository: one POST per blob", async () => {
    const image = makeImage({ seed: "token-sibling", layers: 2, layerSize: 4096, mediaTypes: "oci" });
    const user = { username: "promoter", password: PROMOTER_PASSWORD };
    const { outcomes, firstRequests, secondRequests } = await copyOneAfterTheOther(
      image,
      user,
      "prod/a",
      "prod/b",
    );
    expect(outcomes.map((outcome) => outcome.status)).toEqual(["copied", "copied"]);
    expect(outcomes[1]?.stats).toMatchObject({ blobsMounted: allBlobs(image).length, blobsUploaded: 0 });
    // Token requests go to the token server, not the registry: these are registry requests only.
    // The ping (GET /v2/) and the 401s that ask for tokens are counted too, so compare methods.
    // The first repository: a HEAD per blob and the root's, plus one repeated after the 401
    // that asked for the first token; POST and PUT per blob; the root's PUT, by its tag.
    expect(firstRequests).toMatchObject({ POST: allBlobs(image).length, PUT: allBlobs(image).length + 1 });
    expect(secondRequests).toMatchObject({ HEAD: 1, POST: allBlobs(image).length, PUT: 1 });
    expect(secondRequests.PATCH ?? 0).toBe(0);
    await expectPullable("prod/b", user);
  });
});
