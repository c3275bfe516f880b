// ESLint: typescript-eslint's recommended rules over the project's TypeScript and JavaScript.
import js from "@eslint/js";
import tseslint from "typescript-eslint";
import globals from "globals";

export default tseslint.config(
  { ignores: ["node_modules/", "dist/", "test/bench/haraka/", "test/lifecycle-projects/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2023, sourceType: "module", globals: globals.node },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" }],
    },
  },
  {
    // Tests build ill-typed input on purpose (a config bent into every wrong shape).
    files: ["test/**/*.ts"],
    rules: { "@typescript-eslint/no-explicit-any": "off" },
  },
  {
    // Plugins loaded by Haraka (CommonJS; Haraka defines OK, DENY, DENYSOFT as globals).
    files: ["test/bench/**/*.js", "**/*.cjs"],
    languageOptions: {
      sourceType: "commonjs",
      globals: { ...globals.node, OK: "readonly", DENY: "readonly", DENYSOFT: "readonly", CONT: "readonly" },
    },
    rules: { "@typescript-eslint/no-require-imports": "off" },
  },
);
