/**
 * The shape of a parsed JSON or YAML document, which comes from outside (a registry, a plan
 * file, a credential file, a registry event, a policy file): the one guard every parser checks
 * an object with before it reads a field, so that `null`, a list or a scalar where an object
 * belongs is refused the same way everywhere. Pure.
 */

/** A JSON object (a YAML mapping): not `null`, not a list, not a scalar. */
export function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
