export * from "./edge.js";
export * from "./inventory.js";
export * from "./decide.js";
export * from "./outcome.js";
export * from "./totals.js";
export * from "./display.js";
export * from "./document.js";
export * from "./shard.js";
