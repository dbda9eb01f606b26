// Builds src/index.js into the script DataFast serves at /js/script.js, with its .gz and .br
// beside it, prints the gzipped size and fails past the budget (2 KB gzipped).
import { build } from "esbuild";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { brotliCompressSync, constants, gzipSync } from "node:zlib";
import { minify } from "terser";

const here = dirname(fileURLToPath(import.meta.url));
const out = process.env.TRACKER_OUT_DIR || join(here, "..", "src", "datafast", "static", "js");
const BUDGET = Number(process.env.TRACKER_BUDGET || 2048); // overridable so a test can see it fail

const bundled = await build({
  entryPoints: [join(here, "src", "index.js")],
  bundle: true,
  format: "iife",
  target: "es2020",
  write: false,
  legalComments: "none",
});
const { code } = await minify(bundled.outputFiles[0].text, {
  ecma: 2020,
  compress: { passes: 3, unsafe: true, unsafe_arrows: true, pure_getters: true, booleans_as_integers: true },
  mangle: { toplevel: true },
  format: { comments: false },
});
const gzip = gzipSync(code, { level: 9 });
const brotli = brotliCompressSync(code, {
  params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: code.length },
});
mkdirSync(out, { recursive: true });
writeFileSync(join(out, "script.js"), code);
writeFileSync(join(out, "script.js.gz"), gzip);
writeFileSync(join(out, "script.js.br"), brotli);
console.log(
  `tracker: script.js ${code.length} B, ${gzip.length} B gzipped (budget ${BUDGET} B), ${brotli.length} B brotli -> ${out}`,
);
if (gzip.length > BUDGET) {
  console.error(`tracker: script.js is ${gzip.length} B gzipped, over the ${BUDGET} B budget`);
  process.exit(1);
}
