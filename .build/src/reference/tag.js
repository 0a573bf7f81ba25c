import { InvalidNameError } from "../errors.js";
const TAG_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
export function isTag(input) {
    return TAG_PATTERN.test(input);
}
export function tagProblem(input) {
    if (input.length === 0)
        return "a tag cannot be empty";
    if (input.length > 128)
        return `a tag has at most 128 characters, found ${input.length}`;
    if (!/^[A-Za-z0-9_]/.test(input))
        return "a tag must start with a letter, digit or underscore";
    const bad = /[^A-Za-z0-9_.-]/.exec(input);
    if (bad)
        return `character ${JSON.stringify(bad[0])} is not allowed (only letters, digits, _ . -)`;
    return undefined;
}
export function parseTag(input) {
    if (isTag(input))
        return input;
    throw new InvalidNameError("tag", input, tagProblem(input) ?? "not a tag");
}
//# sourceMappingURL=tag.js.map