import { Readable } from "node:stream";
import { describe, expect, expectTypeOf, it } from "vitest";
import { AbortedError } from "../errors.js";
import { type RegistryHost, type RepositoryLocation, type RepositoryPath } from "../reference/index.js";
import { RegistryError } from "./errors.js";
import { onSide, openOnSide } from "./side.js";
import type { BlobReader, ContentDeleter, ManifestResolver, RepositoryStore } from "./store.js";

const location: RepositoryLocation = {
  kind: "remote",
  host: "registry.example" as RegistryHost,
  repository: "team/app" as RepositoryPath,
};

function failure(operation: string, details: Partial<RegistryError["details"]> = {}): RegistryError {
  return new RegistryError(
    "registry-http",
    "unexpected response",
    { operation, registry: "registry.example", repository: "team/app", status: 500, ...details },
    { cause: new Error("underneath") },
  );
}

/** A store of two roles whose calls fail the way the test says. */
class ScriptedStore implements ManifestResolver, BlobReader {
  readonly location = location;
  readonly name = "registry.example/team/app";
  destroyed = false;

  constructor(private readonly fail: Error) {}

  resolve(): Promise<undefined> {
    return Promise.reject(this.fail);
  }

  openBlob(): Promise<Readable> {
    const fail = this.fail;
    const stream = new Readable({
      read() {
        this.push(Buffer.from("some bytes"));
        this.destroy(fail);
      },
    });
    stream.on("close", () => (this.destroyed = true));
    return Promise.resolve(stream);
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

describe("onSide", () => {
  it("names the side in the errors of every call, keeping code, summary, details and cause", async () => {
    const original = failure("resolve manifest");
    const store = onSide(new ScriptedStore(original), "destination");
    const error = (await store.resolve().catch((caught: unknown) => caught)) as RegistryError;
    expect(error).toBeInstanceOf(RegistryError);
    expect(error.message).toBe(
      "resolve manifest destination registry.example/team/app: unexpected response; HTTP 500",
    );
    expect(error).toMatchObject({ code: original.code, summary: original.summary });
    expect(error.details).toEqual({ ...original.details, side: "destination" });
    expect(error.cause).toBe(original.cause);
  });

  it("names the side when a blob stream it returned fails while it flows", async () => {
    const store = onSide(new ScriptedStore(failure("get blob")), "source");
    const stream = await store.openBlob();
    await expect(readAll(stream)).rejects.toThrow(
      "get blob source registry.example/team/app: unexpected response; HTTP 500",
    );
  });

  it("destroys the store's stream when the caller stops reading", async () => {
    const inner = new ScriptedStore(failure("get blob"));
    const stream = await onSide(inner, "source").openBlob();
    stream.destroy();
    await new Promise((resolve) => stream.once("close", resolve));
    await expect.poll(() => inner.destroyed).toBe(true);
  });

  it("leaves other errors, and errors that already name a side, as they are", async () => {
    const aborted = new AbortedError();
    expect(
      await onSide(new ScriptedStore(aborted), "source")
        .resolve()
        .catch((caught: unknown) => caught),
    ).toBe(aborted);
    const named = failure("resolve manifest", { side: "destination" });
    expect(
      await onSide(new ScriptedStore(named), "source")
        .resolve()
        .catch((caught: unknown) => caught),
    ).toBe(named);
  });

  it("passes identity, class and roles through: the result offers exactly the roles given", () => {
    const inner = new ScriptedStore(new Error("unused"));
    const store = onSide(inner, "source");
    expect(store.name).toBe(inner.name);
    expect(store.location).toBe(location);
    expect(store).toBeInstanceOf(ScriptedStore);
    expectTypeOf(store).toEqualTypeOf<ScriptedStore>();
  });

  it("opens a location for a side: a refusal at opening names the side too", () => {
    const opener = {
      repository(): RepositoryStore {
        throw failure("open");
      },
    };
    expect(() => openOnSide(opener, location, "source")).toThrow(
      "open source registry.example/team/app: unexpected response",
    );
  });
});

describe("the roles of a repository store", () => {
  it("do not carry the side of a promotion, nor deleting", () => {
    expectTypeOf<RepositoryStore>().not.toHaveProperty("side");
    expectTypeOf<RepositoryStore>().not.toHaveProperty("deleteManifest");
    expectTypeOf<RepositoryStore>().not.toHaveProperty("deleteBlob");
    expectTypeOf<ContentDeleter>().toHaveProperty("deleteManifest");
  });
});
