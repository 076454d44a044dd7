// Copies the browser builds of the pinned front-end libraries from node_modules into
// static/vendor/, where the Rust binary embeds them. The copies are committed, so building or
// running Tally never needs Node.js; CI runs this again and fails if the result differs.
import { copyFileSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const web = join(dirname(fileURLToPath(import.meta.url)), "..");
const vendor = join(web, "static", "vendor");

// [file in node_modules, name in static/vendor]
const files = [
  ["htm/preact/standalone.module.js", "htm-preact.module.js"],
  ["chart.js/dist/chart.umd.js", "chart.umd.js"],
  ["react/umd/react.production.min.js", "react.production.min.js"],
  ["react-dom/umd/react-dom.production.min.js", "react-dom.production.min.js"],
  ["graphiql/graphiql.min.js", "graphiql.min.js"],
  ["graphiql/graphiql.min.css", "graphiql.min.css"],
];

// Start from an empty folder so that a file dropped from the list does not linger.
rmSync(vendor, { recursive: true, force: true });
mkdirSync(vendor, { recursive: true });
for (const [from, to] of files) {
  copyFileSync(join(web, "node_modules", from), join(vendor, to));
}
console.log(`vendored ${readdirSync(vendor).length} files into static/vendor/`);
