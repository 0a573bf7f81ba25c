export * from "./media-type.js";
export * from "./descriptor.js";
export * from "./manifest.js";
//# sourceMappingURL=index.js.map