// Copies the API reference's browser bundle (@scalar/api-reference, pinned in package.json) next to
// the dashboard's assets, so /api/schema runs it from our own origin: no third-party script there.
// The file name carries the package version (assets are cached for a year).
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const pkgPath = join(here, "node_modules", "@scalar", "api-reference", "package.json");
const { version } = JSON.parse(readFileSync(pkgPath, "utf8"));
const out = resolve(process.env.DASHBOARD_OUT_DIR || "../src/datafast/static/app", "assets");
mkdirSync(out, { recursive: true });
const target = join(out, `scalar-api-reference-${version}.js`);
copyFileSync(join(dirname(pkgPath), "dist", "browser", "standalone.js"), target);
console.log(`api docs: ${target}`);
