import { createRequire } from "node:module";
import type Database from "better-sqlite3";
import { errnoCode, PromoterError } from "../errors.js";

/**
 * better-sqlite3, the findings database's driver, is a native addon only the auditor needs: it is
 * an optional dependency (package.json `optionalDependencies`), loaded the first time a database
 * is opened, never when the library (`image-promoter`) or a command that does not audit is
 * loaded. Where it is not installed (`npm install --omit=optional`, a platform where the addon
 * does not build), opening the database says so in one line.
 */
export const SQLITE_PACKAGE = "better-sqlite3";

type Driver = typeof Database;

const requireHere = createRequire(import.meta.url);

/**
 * The driver, loaded on first use (`require` keeps it loaded); `load` is the module loader (a
 * test gives one that fails).
 */
export function sqliteDriver(load: (id: string) => unknown = requireHere): Driver {
  try {
    return load(SQLITE_PACKAGE) as Driver;
  } catch (error) {
    throw driverUnavailable(error);
  }
}

/** Opens a database with the driver (loading it on first use). */
export function openSqlite(file: string, options?: Database.Options): Database.Database {
  const Driver = sqliteDriver();
  return new Driver(file, options);
}

/**
 * The driver's entry file, for a worker thread that loads it itself (finding-reader.ts);
 * `resolve` is the module resolver (a test gives one that fails).
 */
export function sqliteDriverPath(resolve: (id: string) => string = requireHere.resolve): string {
  try {
    return resolve(SQLITE_PACKAGE);
  } catch (error) {
    throw driverUnavailable(error);
  }
}

function driverUnavailable(error: unknown): PromoterError {
  // Node's own message spans lines (its require stack): one line, naming the package.
  const missing = errnoCode(error) === "MODULE_NOT_FOUND";
  return new PromoterError(
    "audit-store",
    missing
      ? `the auditor needs the optional package ${SQLITE_PACKAGE}, which is not installed: npm install ${SQLITE_PACKAGE}`
      : `the auditor's optional package ${SQLITE_PACKAGE} cannot be loaded (${firstLine(error)}): reinstall it with npm install ${SQLITE_PACKAGE}`,
    { cause: error },
  );
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n", 1)[0] ?? text;
}
