import type { Command } from "../command.js";
import { auditFindingsCommand } from "./audit-findings.js";
import { auditReconcileCommand } from "./audit-reconcile.js";
import { auditServeCommand } from "./audit-serve.js";
import { checkCommand } from "./check.js";
import { manifestAddCommand } from "./manifest-add.js";
import { promoteCommand } from "./promote.js";
import { snapshotCommand } from "./snapshot.js";
import { validateCommand } from "./validate.js";
import { verifyCommand } from "./verify.js";

/** Every command of the CLI; `promoter --help` lists them in this order. */
export const commands: readonly Command[] = [
  validateCommand,
  promoteCommand,
  checkCommand,
  manifestAddCommand,
  snapshotCommand,
  verifyCommand,
  auditServeCommand,
  auditReconcileCommand,
  auditFindingsCommand,
];
