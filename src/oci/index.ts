export * from "./media-type.js";
export * from "./descriptor.js";
export * from "./manifest.js";
export * from "./referrers.js";
