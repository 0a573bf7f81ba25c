// ESLint flat config: type-aware rules from typescript-eslint on all TypeScript; plain JS rules on
// the few JavaScript launchers and set-up scripts; and the layering of src/ (pure core, folders used
// through their index.ts), docs/decisions/0005-pure-core-and-enforced-boundaries.md.
import { readdirSync, statSync } from "node:fs";
import * as path from "node:path";
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

const SRC = path.join(import.meta.dirname, "src");

/** The pure core: folders that take data and return data (README.md, "Folder map"). */
const PURE_CORE_FOLDERS = ["reference", "oci", "manifest", "plan", "concurrency", "output"];
/** Modules directly in src/, all pure: errors, excerpts, JSON shapes, the logger interface, child environments. */
const PURE_TOP_MODULES = ["errors", "excerpt", "json-shape", "log", "child-environment"].map(
  (name) => `src/${name}.ts`,
);
/**
 * Pure modules of shell folders: pure themselves, held by these rules like the core, but their
 * folder's index.ts (which they may import, as audit/decide.ts imports sign/) also loads I/O.
 */
const PURE_SHELL_MODULES = [
  "src/audit/decide.ts",
  "src/audit/desired-state.ts",
  "src/audit/event.ts",
  "src/audit/revision-history.ts",
  "src/audit/status-model.ts",
  "src/gitops/edge-diff.ts",
  "src/gitops/images-file.ts",
  "src/gitops/manifest-snapshot.ts",
  "src/gitops/snapshot-format.ts",
  "src/gitops/tag-series.ts",
  "src/gitops/vulnerability-report.ts",
  "src/github/repo-name.ts",
  "src/github/text-diff.ts",
  "src/provenance/promotion-record.ts",
  "src/provenance/verification-summary.ts",
  "src/sign/attachment-recognition.ts",
  "src/sign/cosign-format.ts",
  "src/sign/decide-attachments.ts",
  "src/sign/targets.ts",
  "src/sign/verify-layer.ts",
];

/** Node modules that reach outside the process (disk, network, other programs, the host, timers). */
const IO_MODULES = [
  "fs",
  "fs/promises",
  "net",
  "http",
  "https",
  "http2",
  "dns",
  "dns/promises",
  "tls",
  "dgram",
  "child_process",
  "cluster",
  "worker_threads",
  "os",
  "readline",
  "timers",
  "timers/promises",
  "perf_hooks",
  "inspector",
  "vm",
];
const PURE_IMPORT_PATTERNS = [
  {
    regex: `^(node:)?(${IO_MODULES.join("|")})$`,
    message: "The pure core does no I/O: take the data as an argument (ADR 0005).",
  },
  {
    regex: "^(undici|better-sqlite3|sigstore|@sigstore/.*)(/.*)?$",
    message:
      "The pure core reaches no network, database or signing service: take the data as an argument (ADR 0005).",
  },
];
const PURE_IMPORT_PATHS = ["crypto", "node:crypto"].map((name) => ({
  name,
  importNames: ["randomBytes", "randomUUID", "randomInt", "randomFill", "randomFillSync", "getRandomValues"],
  message: "The pure core is deterministic: hashing is fine, randomness comes from the caller (ADR 0005).",
}));
const PURE_GLOBALS = ["process", "setTimeout", "setInterval", "setImmediate", "performance", "fetch"].map(
  (name) => ({
    name,
    message: "The pure core reads no environment, clock or network: take it as an argument (ADR 0005).",
  }),
);
const PURE_PROPERTIES = [
  { object: "Date", property: "now" },
  { object: "Math", property: "random" },
  { object: "globalThis", property: "process" },
  { object: "crypto", property: "getRandomValues" },
  { object: "crypto", property: "randomUUID" },
].map((restricted) => ({
  ...restricted,
  message: "The pure core is deterministic: the time or randomness comes from the caller (ADR 0005).",
}));
const PURE_SYNTAX = [
  {
    selector: "NewExpression[callee.name='Date'][arguments.length=0]",
    message: "The pure core reads no clock: take the time as an argument (ADR 0005).",
  },
  {
    selector: "ImportExpression",
    message: "The pure core imports statically, so the import rules see every dependency (ADR 0005).",
  },
];

/**
 * The pure core decides synchronously, as plan/ and audit/decide.ts do: what it needs is observed
 * first, by the shell. Two kinds of module coordinate asynchronous work they are handed and are
 * exempt: concurrency/ (bounds on work in flight) and the auditor's revision history (loads a
 * past revision once through the loader it is given).
 */
const ASYNC_PURE_MODULES = ["src/concurrency/**", "src/audit/revision-history.ts"];
const SYNC_SYNTAX = [
  {
    selector: ":function[async=true]",
    message: "The pure core decides synchronously: the shell observes first (ADR 0005).",
  },
  {
    selector: "AwaitExpression, ForOfStatement[await=true]",
    message: "The pure core decides synchronously: the shell observes first (ADR 0005).",
  },
];

const FOLDERS = readdirSync(SRC).filter((name) => statSync(path.join(SRC, name)).isDirectory());
/** Folders of src/ with an index.ts: other folders use them only through it. */
const INDEXED_FOLDERS = FOLDERS.filter((name) => {
  try {
    return statSync(path.join(SRC, name, "index.ts")).isFile();
  } catch {
    return false;
  }
});
const SHELL_FOLDERS = FOLDERS.filter((name) => !PURE_CORE_FOLDERS.includes(name));

/** How a module `depth` folders below src/ names a top-level folder of src/ in an import. */
const upTo = (depth) => (depth === 0 ? "\\./" : `(\\.\\./){${depth}}`);

function pastIndexPattern(depth) {
  return {
    regex: `^${upTo(depth)}(${INDEXED_FOLDERS.join("|")})/(?!index\\.js$)`,
    message: "Another folder of src/ is used through its index.ts (ADR 0003, ADR 0005).",
  };
}

function shellFolderPattern(depth) {
  return {
    regex: `^${upTo(depth)}(${SHELL_FOLDERS.join("|")})(/|\\.js$)`,
    message:
      "The pure core imports only the pure core: the shell may import it, not the other way (ADR 0005).",
  };
}

/** Modules `depth` folders below src/ matching `patterns` (a `*` for each folder level). */
const atDepth = (depth, patterns) => patterns.filter((pattern) => pattern.split("/").length === depth + 2);

/**
 * The layering rules for the modules `depth` folders below src/: the shell, the pure modules of
 * shell folders, and the pure core. Later blocks replace the rule options of earlier ones, so
 * each repeats the patterns that still apply. Tests are exempt: they may reach into what they
 * test and read their fixtures from disk.
 */
function layeringBlocks(depth) {
  const level = "*/".repeat(depth);
  const pureRules = (patterns) => ({
    "no-restricted-imports": [
      "error",
      { paths: PURE_IMPORT_PATHS, patterns: [pastIndexPattern(depth), ...patterns, ...PURE_IMPORT_PATTERNS] },
    ],
    "no-restricted-globals": ["error", ...PURE_GLOBALS],
    "no-restricted-properties": ["error", ...PURE_PROPERTIES],
    "no-restricted-syntax": ["error", ...PURE_SYNTAX],
  });
  const blocks = [
    {
      files: [`src/${level}*.ts`],
      ignores: ["**/*.test.ts"],
      rules: { "no-restricted-imports": ["error", { patterns: [pastIndexPattern(depth)] }] },
    },
    {
      files: atDepth(depth, PURE_SHELL_MODULES),
      ignores: ["**/*.test.ts"],
      rules: pureRules([]),
    },
    {
      files: atDepth(depth, [
        ...PURE_TOP_MODULES,
        ...PURE_CORE_FOLDERS.map((folder) => `src/${folder}/${"*/".repeat(Math.max(0, depth - 1))}*.ts`),
      ]),
      ignores: ["**/*.test.ts"],
      rules: pureRules([shellFolderPattern(depth)]),
    },
  ];
  return blocks.filter((block) => block.files.length > 0);
}

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
    // The auditor's status page runs in the browser (docs/auditor.md, "Status page").
    files: ["src/audit/status-page/**/*.js"],
    languageOptions: { globals: { ...globals.browser }, sourceType: "module" },
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
  ...[0, 1, 2, 3].flatMap(layeringBlocks),
  {
    files: [
      ...PURE_TOP_MODULES,
      ...PURE_SHELL_MODULES,
      ...PURE_CORE_FOLDERS.map((folder) => `src/${folder}/**/*.ts`),
    ],
    ignores: ["**/*.test.ts", ...ASYNC_PURE_MODULES],
    rules: { "no-restricted-syntax": ["error", ...PURE_SYNTAX, ...SYNC_SYNTAX] },
  },
);
