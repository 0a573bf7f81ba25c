export * from "./digest.js";
export * from "./tag.js";
export * from "./name.js";
export * from "./reference.js";
//# sourceMappingURL=index.js.map