import type { Command } from "../command.js";
import { auditFindingsCommand } from "./audit-findings.js";
import { auditReconcileCommand } from "./audit-reconcile.js";
import { auditServeCommand } from "./audit-serve.js";
import { promoteCommand } from "./promote.js";
import { validateCommand } from "./validate.js";
import { verifyCommand } from "./verify.js";

/** Every command of the CLI; `promoter --help` lists them in this order. */
export const commands: readonly Command[] = [
  validateCommand,
  promoteCommand,
  verifyCommand,
  auditServeCommand,
  auditReconcileCommand,
  auditFindingsCommand,
];
