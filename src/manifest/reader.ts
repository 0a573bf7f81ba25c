import { isAlias, isMap, isScalar, isSeq, Scalar, type ParsedNode, type YAMLMap, type YAMLSeq } from "yaml";
import { escapeExcerpt, MAX_EXCERPT_CHARS, quoteExcerpt } from "../excerpt.js";
import { makeFinding, type FindingDetails, type ManifestRuleId } from "./finding.js";
import type { Finding, SourcePosition } from "./model.js";
import type { YamlSource } from "./yaml-source.js";

/** A key of a mapping with its value (aliases already resolved; undefined for an empty value). */
export interface Field {
  readonly name: string;
  readonly keyPosition: SourcePosition;
  readonly value: ParsedNode | undefined;
}

/** A string scalar with where it was written. */
export interface Located {
  readonly value: string;
  readonly position: SourcePosition;
}

// YAML 1.2 core-schema spellings of null: an empty value, ~ and null.
const NULL_SPELLINGS = new Set(["", "~", "null", "Null", "NULL"]);

/**
 * Schema-directed reading of a YAML tree into manifest values: every type mismatch, unknown or
 * duplicate key becomes a finding with a position, and the caller gets `undefined` for the
 * part that cannot be used, so one bad entry never hides the others.
 */
export class ManifestReader {
  readonly source: YamlSource;
  readonly findings: Finding[];

  constructor(source: YamlSource, findings: Finding[]) {
    this.source = source;
    this.findings = findings;
  }

  report(
    rule: ManifestRuleId,
    at: ParsedNode | SourcePosition,
    message: string,
    details?: FindingDetails,
  ): void {
    const position = "range" in at ? this.source.positionOf(at) : at;
    this.findings.push(makeFinding(rule, position, message, details));
  }

  positionOf(node: ParsedNode): SourcePosition {
    return this.source.positionOf(node);
  }

  /** Resolves an alias; a dangling alias is reported and reads as nothing. */
  resolve(node: ParsedNode | null | undefined): ParsedNode | undefined {
    if (node === null || node === undefined) return undefined;
    if (!isAlias(node)) return node;
    const target = this.source.dereference(node);
    if (target === undefined) {
      const name = escapeExcerpt(node.source, MAX_EXCERPT_CHARS);
      this.report("yaml-syntax", node, `alias *${name} has no anchor &${name} before it`);
    }
    return target === undefined ? undefined : this.resolve(target);
  }

  /** An empty value, `~` or `null` written without quotes. */
  isNull(node: ParsedNode | undefined): boolean {
    return (
      node === undefined ||
      (isScalar(node) &&
        node.type === Scalar.PLAIN &&
        typeof node.value === "string" &&
        NULL_SPELLINGS.has(node.value)) ||
      (isScalar(node) && node.value === null)
    );
  }

  describe(node: ParsedNode | undefined): string {
    if (this.isNull(node)) return "nothing";
    if (isMap(node)) return "a mapping";
    if (isSeq(node)) return "a list";
    if (isScalar(node)) return `the string ${quoteExcerpt(String(node.value))}`;
    return "an alias";
  }

  /**
   * Whether a scalar is still the text that was written. The YAML library resolves a few explicit
   * tags even in the failsafe schema (`!!binary` decodes base64, `!!timestamp` makes a date): a
   * reviewer would read `!!binary djE=` while `v1` is promoted. Such values are refused.
   */
  private isText(node: Scalar.Parsed, what: string): boolean {
    if (typeof node.value === "string") return true;
    this.report(
      "invalid-type",
      node,
      `${what} must be plain text, but the YAML tag ${escapeExcerpt((node.tag ?? "").replace("tag:yaml.org,2002:", "!!"), MAX_EXCERPT_CHARS)} turns ${quoteExcerpt(node.source)} into something else; write the value itself`,
    );
    return false;
  }

  mapping(node: ParsedNode, what: string): YAMLMap.Parsed | undefined {
    if (isMap(node)) return node;
    this.report("invalid-type", node, `${what} must be a mapping, found ${this.describe(node)}`);
    return undefined;
  }

  sequence(node: ParsedNode, what: string): YAMLSeq.Parsed | undefined {
    if (isSeq(node)) return node;
    this.report("invalid-type", node, `${what} must be a list, found ${this.describe(node)}`);
    return undefined;
  }

  /** A scalar read as the exact string written (the failsafe schema never converts it). */
  string(node: ParsedNode | undefined, what: string, at: SourcePosition): Located | undefined {
    if (node !== undefined && isScalar(node) && !this.isNull(node)) {
      if (!this.isText(node, what)) return undefined;
      return { value: String(node.value), position: this.positionOf(node) };
    }
    this.report("invalid-type", node ?? at, `${what} must be a string, found ${this.describe(node)}`);
    return undefined;
  }

  /**
   * The keys of a mapping in order. A key written twice is reported and dropped with all its
   * values: which one was meant cannot be known (kpromo refused such files as a whole).
   */
  pairs(map: YAMLMap.Parsed, what: string): Field[] {
    const fields: Field[] = [];
    const firstPosition = new Map<string, SourcePosition>();
    const duplicated = new Set<string>();
    for (const pair of map.items) {
      const key = this.resolve(pair.key);
      if (key === undefined || !isScalar(key) || this.isNull(key)) {
        this.report(
          "invalid-type",
          key ?? map,
          `keys of ${what} must be strings, found ${this.describe(key)}`,
        );
        continue;
      }
      if (!this.isText(key, `a key of ${what}`)) continue;
      const name = String(key.value);
      const keyPosition = this.positionOf(key);
      const first = firstPosition.get(name);
      if (first !== undefined) {
        this.report("duplicate-key", keyPosition, `${quoteExcerpt(name)} appears more than once in ${what}`, {
          related: [first],
        });
        duplicated.add(name);
        continue;
      }
      firstPosition.set(name, keyPosition);
      fields.push({ name, keyPosition, value: this.resolve(pair.value) });
    }
    return duplicated.size === 0 ? fields : fields.filter((field) => !duplicated.has(field.name));
  }

  /** The known fields of a mapping; unknown keys are reported. */
  fields(map: YAMLMap.Parsed, allowed: readonly string[], what: string): Map<string, Field> {
    const result = new Map<string, Field>();
    for (const field of this.pairs(map, what)) {
      if (!allowed.includes(field.name)) {
        this.report(
          "unknown-key",
          field.keyPosition,
          `unknown key ${quoteExcerpt(field.name)} in ${what} (expected ${allowed.join(", ")})`,
        );
        continue;
      }
      result.set(field.name, field);
    }
    return result;
  }
}
