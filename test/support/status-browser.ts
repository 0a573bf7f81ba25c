import { mkdir } from "node:fs/promises";
import * as path from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { REPOSITORY_ROOT } from "./promoter-process.js";

/**
 * Debian's chromium, driven by playwright-core (no browser download: scripts/ensure-test-tools.mjs
 * installs the `chromium` package), for the tests of the auditor's status page.
 */

export const CHROMIUM = "/usr/bin/chromium";

/** Where the tests put their screenshots: an artifact of the run, git-ignored. */
export const SCREENSHOT_DIRECTORY = path.join(REPOSITORY_ROOT, "test-artifacts", "status-page");

/** Phone and desktop viewports the screenshots are made at. */
export const VIEWPORTS = {
  phone: { width: 390, height: 844 },
  desktop: { width: 1440, height: 900 },
} as const;

export function launchChromium(): Promise<Browser> {
  // As root (CI, these machines) chromium refuses to start with its sandbox.
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  return chromium.launch({ executablePath: CHROMIUM, args: root ? ["--no-sandbox"] : [] });
}

/**
 * Screenshots `page` at phone and desktop width as `<name>-phone.png` and `<name>-desktop.png`,
 * in the light theme, and with `dark` also in the dark one (`<name>-phone-dark.png`, ...).
 */
export async function screenshotBothWidths(
  page: Page,
  name: string,
  options: { dark?: boolean } = {},
): Promise<void> {
  await mkdir(SCREENSHOT_DIRECTORY, { recursive: true });
  const original = page.viewportSize();
  for (const scheme of options.dark === true ? (["light", "dark"] as const) : (["light"] as const)) {
    await page.emulateMedia({ colorScheme: scheme });
    for (const [label, size] of Object.entries(VIEWPORTS)) {
      await page.setViewportSize(size);
      const file = `${name}-${label}${scheme === "dark" ? "-dark" : ""}.png`;
      await page.screenshot({ path: path.join(SCREENSHOT_DIRECTORY, file), fullPage: true });
    }
  }
  await page.emulateMedia({ colorScheme: "light" });
  if (original) await page.setViewportSize(original);
}
