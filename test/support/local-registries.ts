/**
 * The test registries, their proxies and token servers listen on 127.0.0.1. The commands that
 * apply the registry policy (every command that reads registries; docs/manifest-format.md,
 * "Registry policy")
 * refuse such registries unless the operator allows them: honest tests allow loopback explicitly,
 * as a user running local registries would.
 */
export const ALLOW_LOOPBACK_REGISTRIES: readonly string[] = [
  "--allow-registry",
  "127.0.0.1",
  "--allow-registry",
  "localhost",
];

/** Every command that reads registries a manifest or argument names (`--allow-registry`). */
const POLICY_COMMANDS: ReadonlySet<string> = new Set([
  "validate",
  "check",
  "promote",
  "verify",
  "explain",
  "snapshot",
  "manifest add",
  "pr",
  "audit serve",
  "audit reconcile",
]);

/** Whether `args` starts with a command that applies the registry policy. */
export function appliesRegistryPolicy(args: readonly string[]): boolean {
  return POLICY_COMMANDS.has(args[0] ?? "") || POLICY_COMMANDS.has(`${args[0] ?? ""} ${args[1] ?? ""}`);
}

/** `args` with ALLOW_LOOPBACK_REGISTRIES added when its command applies the registry policy. */
export function allowingLoopbackRegistries(args: readonly string[]): string[] {
  return appliesRegistryPolicy(args) ? [...args, ...ALLOW_LOOPBACK_REGISTRIES] : [...args];
}
