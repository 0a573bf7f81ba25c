import type { Command } from "../command.js";

/**
 * Every command of the CLI, by the words that name it; `promoter --help` lists them in this
 * order. A command's module is loaded only when it runs: each pulls in its own part of the
 * library (the registry client, sigstore, SQLite), and a `validate` should not pay for an auditor.
 */
export interface CommandEntry {
  readonly words: readonly string[];
  readonly load: () => Promise<Command>;
}

export const commands: readonly CommandEntry[] = [
  { words: ["validate"], load: async () => (await import("./validate.js")).validateCommand },
  { words: ["promote"], load: async () => (await import("./promote.js")).promoteCommand },
  { words: ["check"], load: async () => (await import("./check.js")).checkCommand },
  { words: ["manifest", "add"], load: async () => (await import("./manifest-add.js")).manifestAddCommand },
  { words: ["pr"], load: async () => (await import("./pr.js")).prCommand },
  { words: ["snapshot"], load: async () => (await import("./snapshot.js")).snapshotCommand },
  { words: ["verify"], load: async () => (await import("./verify.js")).verifyCommand },
  { words: ["explain"], load: async () => (await import("./explain.js")).explainCommand },
  { words: ["cip"], load: async () => (await import("./cip.js")).cipCommand },
  { words: ["audit", "serve"], load: async () => (await import("./audit-serve.js")).auditServeCommand },
  {
    words: ["audit", "reconcile"],
    load: async () => (await import("./audit-reconcile.js")).auditReconcileCommand,
  },
  {
    words: ["audit", "findings"],
    load: async () => (await import("./audit-findings.js")).auditFindingsCommand,
  },
];
