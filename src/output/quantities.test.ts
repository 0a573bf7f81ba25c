import { describe, expect, it } from "vitest";
import { formatBytes, plural } from "./quantities.js";

describe("plural", () => {
  it("writes the count and its noun, grouped unless asked plain", () => {
    expect(plural(1, "image")).toBe("1 image");
    expect(plural(0, "image")).toBe("0 images");
    expect(plural(1234, "promotion edge")).toBe("1,234 promotion edges");
    expect(plural(2, "child", "children")).toBe("2 children");
    expect(plural(20016, "digest", "digests", "plain")).toBe("20016 digests");
  });
});

describe("formatBytes", () => {
  it("uses binary units, one decimal below 100", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KiB");
    expect(formatBytes(100 * 1024)).toBe("100 KiB");
    expect(formatBytes(150 * 1024 * 1024)).toBe("150 MiB");
    expect(formatBytes(2 * 1024 ** 4 * 1024)).toBe("2048 TiB");
  });
});
