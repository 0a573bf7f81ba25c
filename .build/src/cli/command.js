import { parseArgs } from "node:util";
import { UsageError } from "../errors.js";
export function parseCommandArgs(command, argv) {
    const options = {};
    for (const [name, spec] of Object.entries(command.options)) {
        const { description: _description, valueName: _valueName, ...rest } = spec;
        options[name] = rest;
    }
    let parsed;
    try {
        parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true });
    }
    catch (error) {
        // node:util parseArgs messages are clear; drop its hint about "--" which confuses more than it helps.
        const message = error.message.replace(/\s*To specify a positional argument.*$/s, "");
        throw new UsageError(`${message}\nRun 'promoter ${command.words.join(" ")} --help' for usage.`);
    }
    const positionals = parsed.positionals;
    const range = command.positionals ?? { min: 0, max: 0, names: "" };
    if (positionals.length < range.min) {
        throw new UsageError(`missing ${range.names}. Usage: promoter ${command.usage}`);
    }
    if (positionals.length > range.max) {
        throw new UsageError(`unexpected argument ${JSON.stringify(positionals[range.max])}. Usage: promoter ${command.usage}`);
    }
    return { values: parsed.values, positionals };
}
export function formatCommandHelp(command) {
    const lines = [`Usage: promoter ${command.usage}`, "", command.summary];
    if (command.description)
        lines.push("", command.description.trim());
    const entries = Object.entries(command.options);
    if (entries.length > 0) {
        lines.push("", "Options:");
        const rendered = entries.map(([name, spec]) => {
            const short = spec.short ? `-${spec.short}, ` : "    ";
            const value = spec.type === "string" ? ` ${spec.valueName ?? "VALUE"}` : "";
            return { left: `  ${short}--${name}${value}`, right: spec.description };
        });
        const width = Math.min(40, Math.max(...rendered.map((entry) => entry.left.length)) + 2);
        for (const { left, right } of rendered) {
            lines.push(left.length >= width ? `${left}\n${" ".repeat(width)}${right}` : `${left.padEnd(width)}${right}`);
        }
    }
    return `${lines.join("\n")}\n`;
}
/** Reads a string option, checking it is one of `allowed` when given. */
export function stringOption(values, name, allowed) {
    const value = values[name];
    if (value === undefined)
        return undefined;
    if (typeof value !== "string")
        throw new UsageError(`--${name} needs a value`);
    if (allowed && !allowed.includes(value)) {
        throw new UsageError(`--${name} must be one of ${allowed.join(", ")}, not ${JSON.stringify(value)}`);
    }
    return value;
}
export function stringListOption(values, name) {
    const value = values[name];
    if (value === undefined)
        return [];
    const list = Array.isArray(value) ? value : [value];
    return list.filter((entry) => typeof entry === "string");
}
export function booleanOption(values, name) {
    return values[name] === true;
}
export function integerOption(values, name, min, max = Number.MAX_SAFE_INTEGER) {
    const text = stringOption(values, name);
    if (text === undefined)
        return undefined;
    if (!/^\d+$/.test(text))
        throw new UsageError(`--${name} must be a whole number, not ${JSON.stringify(text)}`);
    const value = Number(text);
    if (value < min || value > max)
        throw new UsageError(`--${name} must be between ${min} and ${max}`);
    return value;
}
//# sourceMappingURL=command.js.map