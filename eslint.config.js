// ESLint flat config: type-aware rules from typescript-eslint on all TypeScript; plain JS rules on
// the few JavaScript launchers and set-up scripts.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

export default tseslint.config(
  { ignores: ["dist/", ".build/", "node_modules/", "coverage/"] },
  { languageOptions: { globals: { ...globals.node } } },
  js.configs.recommended,
  {
    files: ["**/*.ts"],
    extends: [...tseslint.configs.strictTypeChecked, ...tseslint.configs.stylisticTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/restrict-template-expressions": [
        "error",
        { allowNumber: true, allowBoolean: true },
      ],
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/prefer-readonly": "error",
      "@typescript-eslint/switch-exhaustiveness-check": [
        "error",
        { considerDefaultExhaustiveForUnions: true },
      ],
      eqeqeq: ["error", "always"],
      "no-console": "error",
    },
  },
  {
    // Only the CLI prints; tests, benchmarks and scripts may.
    files: ["src/cli/**", "**/*.test.ts", "test/**", "scripts/**", "bench/**"],
    rules: { "no-console": "off" },
  },
  {
    files: ["**/*.test.ts", "test/**"],
    rules: { "@typescript-eslint/no-non-null-assertion": "off" },
  },
);
