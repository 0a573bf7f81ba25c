import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { CopyError } from "./copy/index.js";
import { ERROR_CODES, PROBLEM_CODES, PromoterError, RefusedError, type ErrorCode } from "./errors.js";
import { RegistryError } from "./registry/index.js";
import { SignError } from "./sign/index.js";

describe("error codes", () => {
  it("accept only members of ErrorCode, at compile time", () => {
    // Each marked line must fail to compile: the typecheck reports an unused directive when a
    // code outside the union is accepted.
    // @ts-expect-error -- not an error code
    expect(new PromoterError("no-such-code", "x").code).toBe("no-such-code");
    // @ts-expect-error -- a registry code is not a signing code
    expect(new SignError("registry-http", "x").code).toBe("registry-http");
    // @ts-expect-error -- refusals have their own codes
    expect(new RefusedError("usage", "x").code).toBe("usage");
    // @ts-expect-error -- a copy code is not a registry code
    expect(new RegistryError("copy-source-failed", "x", { operation: "get", registry: "r" }).code).toBe(
      "copy-source-failed",
    );
    expect(
      new CopyError("copy-source-failed", "x", {
        side: "source",
        digest: `sha256:${"a".repeat(64)}` as never,
      }).code,
    ).toBe("copy-source-failed");
    const known: ErrorCode = "registry-http";
    expect(ERROR_CODES).toContain(known);
  });

  it("lists every code once", () => {
    expect(new Set(ERROR_CODES).size).toBe(ERROR_CODES.length);
    expect(new Set(PROBLEM_CODES).size).toBe(PROBLEM_CODES.length);
    for (const code of ERROR_CODES) expect(PROBLEM_CODES).toContain(code);
  });

  it("are the codes docs/errors.md documents", () => {
    const markdown = readFileSync(new URL("../docs/errors.md", import.meta.url), "utf8");
    const documented = [...markdown.matchAll(/^\| `([a-z0-9-]+)` \|/gm)].map((match) => match[1]);
    expect([...documented].sort()).toEqual([...PROBLEM_CODES].sort());
  });
});
