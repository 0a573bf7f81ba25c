import { describe, expect, it } from "vitest";
import { openSqlite, sqliteDriver, sqliteDriverPath, SQLITE_PACKAGE } from "./sqlite.js";

function notFound(id: string): never {
  const error = new Error(`Cannot find module '${id}'\nRequire stack:\n- /somewhere/sqlite.js`);
  Object.assign(error, { code: "MODULE_NOT_FOUND" });
  throw error;
}

describe("the SQLite driver", () => {
  it("is named in one line when it is not installed", () => {
    expect(() => sqliteDriver(notFound)).toThrow(
      expect.objectContaining({
        code: "audit-store",
        message: `the auditor needs the optional package ${SQLITE_PACKAGE}, which is not installed: npm install ${SQLITE_PACKAGE}`,
      }),
    );
  });

  it("is named in one line when the findings reader's worker cannot find it", () => {
    expect(() => sqliteDriverPath(notFound)).toThrow(
      expect.objectContaining({
        code: "audit-store",
        message: `the auditor needs the optional package ${SQLITE_PACKAGE}, which is not installed: npm install ${SQLITE_PACKAGE}`,
      }),
    );
  });

  it("says why it cannot be loaded, in one line", () => {
    const broken = () => {
      throw new Error("was compiled against a different Node.js version\nusing NODE_MODULE_VERSION 115");
    };
    expect(() => sqliteDriver(broken)).toThrow(
      /^the auditor's optional package better-sqlite3 cannot be loaded \(was compiled against a different Node\.js version\): reinstall it/,
    );
  });

  it("opens a database when installed", () => {
    const db = openSqlite(":memory:");
    expect(db.prepare("SELECT 1 AS one").get()).toEqual({ one: 1 });
    db.close();
  });
});
