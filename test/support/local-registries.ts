/**
 * The test registries, their proxies and token servers listen on 127.0.0.1. The commands that
 * apply the registry policy (validate, check, promote; docs/manifest-format.md, "Registry policy")
 * refuse such registries unless the operator allows them: honest tests allow loopback explicitly,
 * as a user running local registries would.
 */
export const ALLOW_LOOPBACK_REGISTRIES: readonly string[] = [
  "--allow-registry",
  "127.0.0.1",
  "--allow-registry",
  "localhost",
];

const POLICY_COMMANDS: ReadonlySet<string> = new Set(["validate", "check", "promote"]);

/** `args` with ALLOW_LOOPBACK_REGISTRIES added when its command applies the registry policy. */
export function allowingLoopbackRegistries(args: readonly string[]): string[] {
  return POLICY_COMMANDS.has(args[0] ?? "") ? [...args, ...ALLOW_LOOPBACK_REGISTRIES] : [...args];
}
