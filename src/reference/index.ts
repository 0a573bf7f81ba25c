export * from "./digest.js";
export * from "./tag.js";
export * from "./name.js";
export * from "./reference.js";
export * from "./ip-address.js";
export * from "./registry-host.js";
export * from "./location-key.js";
export * from "./digest-tag.js";
