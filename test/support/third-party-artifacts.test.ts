import { readdir } from "node:fs/promises";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { readThirdPartyText, THIRD_PARTY_ROOT } from "./third-party-artifacts.js";

/**
 * Apache-2.0 redistribution needs each copied file's origin and its upstream's license beside it:
 * SOURCES.md must name every file in the folder (and no file that is not there), and every
 * license it points to must be there.
 */

/** The backquoted names in one Markdown table cell. */
function quotedNames(cell: string): string[] {
  return [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1] ?? "");
}

async function sourceTableRows(): Promise<string[][]> {
  const text = await readThirdPartyText("SOURCES.md");
  return text
    .split("\n")
    .filter((row) => row.startsWith("| `"))
    .map((row) =>
      row
        .slice(1, -1)
        .split(" | ")
        .map((cell) => cell.trim()),
    );
}

describe("third-party artifacts: SOURCES.md", () => {
  it("names every file in the folder, and only files that are there", async () => {
    const onDisk = (await readdir(THIRD_PARTY_ROOT, { recursive: true, withFileTypes: true }))
      .filter((entry) => entry.isFile())
      .map((entry) => path.relative(THIRD_PARTY_ROOT, path.join(entry.parentPath, entry.name)))
      .filter((file) => file !== "SOURCES.md")
      .sort();
    const named = (await sourceTableRows()).flatMap((cells) => quotedNames(cells[0] ?? "")).sort();
    expect(named).toEqual(onDisk);
  });

  it("gives each artifact a repository, a commit, an upstream path and a license file that is there", async () => {
    const artifacts = (await sourceTableRows()).filter((cells) => cells.length === 5);
    expect(artifacts.length).toBeGreaterThan(0);
    for (const [file, repository, commit, upstreamPath, license] of artifacts) {
      expect(repository, file).toMatch(/^[\w.-]+\/[\w.-]+$/);
      expect(commit, file).toMatch(/^`[0-9a-f]{40}`$/);
      expect(upstreamPath, file).toMatch(/^`[^`]+`$/);
      expect(license, file).toMatch(/^Apache-2\.0 /);
      const licenseFiles = quotedNames(license ?? "");
      expect(licenseFiles.length, file).toBeGreaterThan(0);
      for (const licenseFile of licenseFiles) {
        await expect(readThirdPartyText(licenseFile), `${file}: ${licenseFile}`).resolves.toMatch(
          /Apache|Copyright/,
        );
      }
    }
  });
});
