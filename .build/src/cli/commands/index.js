/** Every command of the CLI; `promoter --help` lists them in this order. */
export const commands = [];
//# sourceMappingURL=index.js.map